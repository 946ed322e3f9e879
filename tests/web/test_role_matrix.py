"""The API's role matrix, every endpoint x every role, over HTTP on a real stack.

For each cell the request is made valid first (a fresh case in the right state),
so an allowed role must succeed with the documented status, and a refused role
must get 403 with nothing changed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Awaitable, Callable
from uuid import uuid4

import pytest
from fastapi.routing import APIRoute

from api.app import create_app
from api.routes import router as api_router
from app.authorization import ROLE_MATRIX
from app import sweeps
from app.payments import PaymentService
from domain.policy import Role
from tests.conftest import ROOT
from tests.web.conftest import HEADER, ROLE_USERS, ROLES, Web


@dataclass
class Call:
    method: str
    path: str
    json: dict | None = None
    content: bytes | None = None
    headers: dict = field(default_factory=dict)
    expect: int = 200
    snapshot: Callable[[], object] | None = None  # must be equal before and after a refused call
    check: Callable[[dict], object] | None = None  # on success: what a user would verify


def case_snapshot(web: Web, invoice_id: str) -> Callable[[], object]:
    return lambda: (web.version(invoice_id), web.service.show(invoice_id)["status"]) if web.version(invoice_id) else 0


async def _me(web: Web, role: str) -> Call:
    return Call("GET", "/api/me", check=lambda r: r["role"] == role and r["name"] == ROLE_USERS[role])


async def _cases_list(web: Web, role: str) -> Call:
    invoice = await web.new_case()
    return Call("GET", "/api/cases?limit=10000", check=lambda r: invoice in [c["invoice_id"] for c in r])


async def _worklist(web: Web, role: str) -> Call:
    invoice = await web.new_case()
    return Call("GET", "/api/worklist?limit=5000", check=lambda r: invoice in [c["invoice_id"] for c in r["items"]])


async def _show(web: Web, role: str) -> Call:
    invoice = await web.new_case()
    return Call("GET", f"/api/cases/{invoice}", check=lambda r: r["invoice_id"] == invoice and r["events"])


async def _open(web: Web, role: str) -> Call:
    invoice = web.new_invoice()
    return Call("POST", "/api/cases", {"invoice_id": invoice}, expect=201, snapshot=case_snapshot(web, invoice),
                check=lambda r: r["opened"] and r["status"] == "open")


async def _assign(web: Web, role: str) -> Call:
    invoice = await web.new_case()
    return Call("POST", f"/api/cases/{invoice}/assign", {"assignee": "demo-collector"},
                snapshot=case_snapshot(web, invoice), check=lambda r: r["events"][0]["type"] == "CaseAssigned")


async def _cancel(web: Web, role: str) -> Call:
    invoice = await web.new_case()
    return Call("POST", f"/api/cases/{invoice}/cancel", {"reason": "invoice_voided"},
                snapshot=case_snapshot(web, invoice),  # 1,000 USD: above one person's threshold, so four eyes
                check=lambda r: r["status"] == "awaiting_approval" and r["events"][0]["type"] == "ReductionRequested")


async def _pay(web: Web, role: str) -> Call:
    invoice = await web.new_case()
    return Call("POST", f"/api/invoices/{invoice}/payments", {"amount": "10.00", "reference": "bank"},
                snapshot=case_snapshot(web, invoice), check=lambda r: r["balance"] == "990.00")


async def _dispute(web: Web, role: str) -> Call:
    invoice = await web.new_case()
    return Call("POST", f"/api/cases/{invoice}/dispute", {"reason": "pricing"},
                snapshot=case_snapshot(web, invoice), check=lambda r: r["status"] == "disputed")


async def _resolve(web: Web, role: str) -> Call:
    invoice = await web.new_case()
    await web.service.open_dispute(invoice, "quality", web.actor("collector"))
    return Call("POST", f"/api/cases/{invoice}/dispute/resolve", {"outcome": "rejected", "note": "goods as ordered"},
                snapshot=case_snapshot(web, invoice), check=lambda r: r["status"] == "open")


async def _promise(web: Web, role: str) -> Call:
    invoice = await web.new_case()
    day = (date.today() + timedelta(days=7)).isoformat()
    return Call("POST", f"/api/cases/{invoice}/promise", {"amount": "500.00", "date": day},
                snapshot=case_snapshot(web, invoice), check=lambda r: r["status"] == "promised")


async def _propose(web: Web, role: str) -> Call:
    invoice = await web.new_case()
    return Call("POST", f"/api/cases/{invoice}/plan", {"instalments": 2, "every": "P30D"},
                snapshot=case_snapshot(web, invoice), check=lambda r: r["events"][0]["type"] == "PaymentPlanProposed")


async def _accept(web: Web, role: str) -> Call:
    invoice = await web.new_case()
    await web.service.propose_plan(invoice, 2, "P30D", web.actor("collector"))
    return Call("POST", f"/api/cases/{invoice}/plan/accept", snapshot=case_snapshot(web, invoice),
                check=lambda r: r["status"] == "on_plan")


async def _escalation(web: Web, role: str) -> Call:
    invoice = await web.escalated_case()
    return Call("POST", f"/api/cases/{invoice}/escalation", {"decision": "legal", "note": "no answer"},
                snapshot=case_snapshot(web, invoice), check=lambda r: r["events"][0]["type"] == "EscalationDecided")


async def _write_off(web: Web, role: str) -> Call:
    invoice = await web.new_case()
    return Call("POST", f"/api/cases/{invoice}/write-off", {"amount": "100.00", "reason": "small_balance"},
                snapshot=case_snapshot(web, invoice), check=lambda r: r["status"] == "awaiting_approval")


async def _approvals(web: Web, role: str) -> Call:
    invoice = await web.new_case()
    await web.service.request_write_off(invoice, "5.00", "small_balance", web.actor("collector"))
    return Call("GET", "/api/approvals", check=lambda r: invoice in [a["invoice_id"] for a in r])


async def _pending_write_off(web: Web) -> tuple[str, str]:
    invoice = await web.new_case()
    reply = await web.service.request_write_off(invoice, "50.00", "small_balance", web.actor("collector"))
    approval = next(a for a in web.service.approvals() if a["case_id"] == reply["case_id"])
    return invoice, approval["approval_id"]


async def _approve(web: Web, role: str) -> Call:
    invoice, approval = await _pending_write_off(web)
    return Call("POST", f"/api/approvals/{approval}/approve", {"reason": "small balance"},
                snapshot=case_snapshot(web, invoice),
                check=lambda r: r["balance"] == "950.00" and r["status"] == "open")


async def _reject(web: Web, role: str) -> Call:
    invoice, approval = await _pending_write_off(web)
    return Call("POST", f"/api/approvals/{approval}/reject", {"reason": "customer is paying"},
                snapshot=case_snapshot(web, invoice),
                check=lambda r: r["events"][0]["type"] == "WriteOffRejected" and r["balance"] == "1000.00")


async def _import(web: Web, role: str) -> Call:
    number = len(web.service.list(limit=100000)) + 1
    invoice = f"IMP-{role}-{number}"
    body = f"{HEADER}\n{invoice},C-IMP,Importer Ltd,ap@imp.test,US,en,USD,10.00,2026-01-01,2026-01-31,B\n"

    def snapshot():
        try:
            return web.context.ledger.invoice(invoice).invoice_id
        except Exception:
            return None

    return Call("POST", "/api/invoices/import", content=body.encode(), headers={"Content-Type": "text/csv"},
                snapshot=snapshot, check=lambda r: r["invoices_added"] == 1)


async def _dashboard(web: Web, role: str) -> Call:
    return Call("GET", "/api/reports/dashboard", check=lambda r: set(r["aging"]) == {"current", "1-30", "31-60", "61-90", "90+"})


async def _policy(web: Web, role: str) -> Call:
    return Call("GET", "/api/policy", check=lambda r: r["version"] == "web-test-1")


async def _pin(web: Web, role: str) -> Call:
    text = (ROOT / "tests" / "data" / "policy-web.toml").read_text().replace(
        'version = "web-test-1"', f'version = "web-pinned-{role}"')
    return Call("POST", "/api/policies?reason=role+matrix", content=text.encode(), headers={"Content-Type": "text/plain"},
                snapshot=lambda: sorted(web.context.policies.versions()),
                check=lambda r: r["version"] == f"web-pinned-{role}")


async def _rebuild(web: Web, role: str) -> Call:
    await web.quiet()  # a rebuild must not race timers firing on other cases
    return Call("POST", "/api/projections/rebuild", check=lambda r: r["events_replayed"] > 0)


def case_count(web: Web) -> Callable[[], object]:
    return lambda: len(web.service.list(limit=100000))


async def _sweep(web: Web, role: str) -> Call:
    # as of a date when nothing was due: the call runs a whole sweep and opens nothing
    return Call("POST", "/api/sweeps", {"as_of": "2000-01-01"}, snapshot=case_count(web),
                check=lambda r: r["invoices_scanned"] > 0 and r["cases_opened"] == 0
                and r["skipped"]["not_yet_overdue"] == r["invoices_scanned"])


async def _schedule(web: Web, role: str) -> Call:
    return Call("POST", "/api/schedule", {"cron": "0 6 * * *", "timezone": "Asia/Shanghai"},
                check=lambda r: r["timezone"] == "Asia/Shanghai" and len(r["next_runs"]) == 3)


async def _schedule_show(web: Web, role: str) -> Call:
    await sweeps.create_schedule(web.context, "0 7 * * *", "Europe/Berlin", web.actor("supervisor"))
    return Call("GET", "/api/schedule", check=lambda r: r["exists"] and r["cron"] == "0 7 * * *"
                and r["timezone"] == "Europe/Berlin" and len(r["next_runs"]) == 3)


async def _schedule_delete(web: Web, role: str) -> Call:
    await sweeps.create_schedule(web.context, "0 7 * * *", "UTC", web.actor("supervisor"))
    return Call("POST", "/api/schedule/delete", {"reason": "sweeps run by hand this month"},
                check=lambda r: r["deleted"])


def _bank_file(payment_id: str, reference: str, payer: str = "Acme Test GmbH", amount: str = "25.00") -> bytes:
    return (f"payment_id,received_on,amount,currency,payer,reference\n"
            f"{payment_id},2026-03-01,{amount},USD,{payer},{reference}\n").encode()


async def _payments_import(web: Web, role: str) -> Call:
    invoice = await web.new_case()
    return Call("POST", "/api/payments/import", content=_bank_file(f"PI-{invoice}", invoice),
                headers={"Content-Type": "text/csv"}, snapshot=case_snapshot(web, invoice),
                check=lambda r: r["matched_by_reference"] == 1 and web.service.show(invoice)["balance"] == "975.00")


async def _unmatched_payment(web: Web) -> str:
    payment_id = f"PU-{web.new_invoice()}"
    await PaymentService(web.service).import_text(_bank_file(payment_id, "", payer="Nobody Ltd").decode(),
                                                  web.actor("collector"))
    return payment_id


async def _payments_unmatched(web: Web, role: str) -> Call:
    payment_id = await _unmatched_payment(web)
    return Call("GET", "/api/payments/unmatched", check=lambda r: payment_id in [p["payment_id"] for p in r])


async def _payments_assign(web: Web, role: str) -> Call:
    payment_id, invoice = await _unmatched_payment(web), await web.new_case()
    return Call("POST", f"/api/payments/{payment_id}/assign", {"invoice_id": invoice, "reason": "remittance"},
                snapshot=case_snapshot(web, invoice), check=lambda r: r["balance"] == "975.00")


async def _payments_reverse(web: Web, role: str) -> Call:
    invoice = await web.new_case()
    await web.service.pay(invoice, "100.00", "bank", web.actor("collector"), payment_id=f"PR-{invoice}")
    return Call("POST", f"/api/payments/PR-{invoice}/reverse", {"reason": "cheque bounced"},
                snapshot=case_snapshot(web, invoice), check=lambda r: r["balance"] == "1000.00" and r["reversed"])


async def _preview(web: Web, role: str) -> Call:
    invoice = await web.new_case()
    return Call("GET", f"/api/notices/preview?case={invoice}&level=1",
                check=lambda r: invoice in r["subject"] and r["to"] == "ap@acme.test")


async def _migrate(web: Web, role: str) -> Call:
    text = (ROOT / "tests" / "data" / "policy-web.toml").read_text().replace('"web-test-1"', '"web-test-2"')
    web.context.policies.pin(text, "web-test-2")
    invoice = await web.new_case()
    return Call("POST", f"/api/cases/{invoice}/policy", {"to": "web-test-2", "reason": "new terms"},
                snapshot=case_snapshot(web, invoice), check=lambda r: r["events"][0]["type"] == "PolicyMigrated")


async def _policies(web: Web, role: str) -> Call:
    return Call("GET", "/api/policies", check=lambda r: {"version": "web-test-1", "active": True} in r)


# -- credit risk, customer credit, credit insurance, KPIs ----------------------------------------------


def _customer_version(web: Web, customer_id: str) -> Callable[[], object]:
    from domain.customer import customer_stream_id

    return lambda: web.context.store.version(customer_stream_id(customer_id))


def _customers(web: Web):
    from app.customers import CustomerService

    return CustomerService(web.context)


async def _customer_show(web: Web, role: str) -> Call:
    invoice = await web.new_case()
    return Call("GET", f"/api/customers/C-{invoice}",
                check=lambda r: r["customer_id"] == f"C-{invoice}" and r["grade"] == "A" and "top_factors" in r)


async def _customer_limit(web: Web, role: str) -> Call:
    customer = f"C-{web.new_invoice()}"
    return Call("POST", f"/api/customers/{customer}/limit", {"amount": "5000.00", "currency": "USD", "reason": "review"},
                snapshot=_customer_version(web, customer), check=lambda r: r["credit_limit"] == "5000.00")


async def _watchlist(web: Web, role: str) -> Call:
    customer = f"C-{web.new_invoice()}"
    _customers(web).set_limit(customer, "10.00", "USD", web.actor("supervisor"), "low limit")  # exposure 1000.00 > 10.00
    return Call("GET", "/api/risk/watchlist", check=lambda r: customer in [w["customer_id"] for w in r])


async def _rescore(web: Web, role: str) -> Call:
    customer = f"C-{web.new_invoice()}"
    return Call("POST", "/api/risk/rescore", {"customer_id": customer},
                check=lambda r: r["customer_id"] == customer and r["grade"] == "A")


async def _hold_place(web: Web, role: str) -> Call:
    customer = f"C-{web.new_invoice()}"
    return Call("POST", f"/api/customers/{customer}/hold", {"reason": "no payments"},
                snapshot=_customer_version(web, customer), check=lambda r: r["on_hold"])


async def _held_customer(web: Web) -> str:
    customer = f"C-{web.new_invoice()}"
    _customers(web).place_hold(customer, "no payments", web.actor("supervisor"))
    return customer


async def _hold_release(web: Web, role: str) -> Call:
    customer = await _held_customer(web)
    return Call("POST", f"/api/customers/{customer}/hold/release", {"reason": "paid up"},
                snapshot=_customer_version(web, customer), check=lambda r: not r["on_hold"])


async def _outbox(web: Web, role: str) -> Call:
    customer = await _held_customer(web)
    return Call("GET", "/api/credit-holds/outbox", check=lambda r: customer in [e["customer_id"] for e in r])


async def _ack(web: Web, role: str) -> Call:
    customer = await _held_customer(web)
    entry = next(e for e in _customers(web).outbox() if e["customer_id"] == customer)
    return Call("POST", f"/api/credit-holds/outbox/{entry['outbox_id']}/ack", {"consumer": "erp"},
                snapshot=_customer_version(web, customer), check=lambda r: r["acked_by"] == "erp")


async def _prepaid_customer(web: Web, invoice: str) -> str:
    from app.credit import CreditService

    customer = f"C-{invoice}"
    await CreditService(web.service).prepay(customer, "25.00", "USD", web.actor("collector"))
    return customer


async def _unapplied(web: Web, role: str) -> Call:
    customer = await _prepaid_customer(web, web.new_invoice())
    return Call("GET", "/api/payments/unapplied",
                check=lambda r: {"customer_id": customer, "balance": "25.00"}.items() <= next(
                    x for x in r if x["customer_id"] == customer).items())


async def _apply_credit(web: Web, role: str) -> Call:
    invoice = await web.new_case()
    await _prepaid_customer(web, invoice)
    return Call("POST", "/api/payments/apply-credit", {"invoice_id": invoice}, snapshot=case_snapshot(web, invoice),
                check=lambda r: r["balance"] == "975.00" and r["applied"] == "25.00")


async def _prepay(web: Web, role: str) -> Call:
    customer = f"C-{web.new_invoice()}"
    return Call("POST", f"/api/customers/{customer}/prepayments", {"amount": "10.00"},
                snapshot=_customer_version(web, customer), check=lambda r: r["recorded"] and r["amount"] == "10.00")


async def _kpis(web: Web, role: str) -> Call:
    return Call("GET", "/api/reports/kpis?report=dso&from=2026-01-01&to=2026-03-31",
                check=lambda r: r["report"] == "dso" and r["rows"][0]["days"] == 90)


def _insurance(web: Web):
    from app.insurance import InsuranceService

    return InsuranceService(web.service)


def _web_policy(web: Web) -> str:
    _insurance(web).add_policy("WEB-POL", "ATR", "Insurer", "claims@insurer.test", "P60D", "P45D", "P90D", "90")
    return "WEB-POL"


async def _insurer_policies(web: Web, role: str) -> Call:
    policy = _web_policy(web)
    return Call("GET", "/api/insurance/policies", check=lambda r: policy in [p["policy_id"] for p in r])


async def _insurer_policy_add(web: Web, role: str) -> Call:
    policy = f"POL-{web.new_invoice()}"
    body = {"policy_id": policy, "insurer_id": "ATR", "insurer_name": "Insurer", "insurer_email": "claims@insurer.test",
            "notify_within": "P60D", "max_extension": "P45D", "claim_waiting": "P90D", "indemnity_percent": "90"}
    return Call("POST", "/api/insurance/policies", body,
                snapshot=lambda: policy in [p["policy_id"] for p in _insurance(web).policies()],
                check=lambda r: r["added"] and r["notify_within"] == "P60D")


async def _insurance_cover(web: Web, role: str) -> Call:
    policy, invoice = _web_policy(web), web.new_invoice()
    from store.schema import invoice_insurance
    from sqlalchemy import select

    def insured():
        with web.context.db.read() as session:
            return session.execute(select(invoice_insurance).where(invoice_insurance.c.invoice_id == invoice)).first()

    return Call("POST", f"/api/invoices/{invoice}/insurance", {"policy_id": policy}, snapshot=insured,
                check=lambda r: r["insured"] and r["invoice_id"] == invoice)


async def _indemnity(web: Web, role: str) -> Call:
    # A claim is filed after the insurer's waiting period (months; tested on the time-skipping server in
    # tests/workflows/test_risk_credit_insurance.py): here the allowed roles reach the domain, which refuses.
    invoice = await web.new_case()
    return Call("POST", f"/api/cases/{invoice}/indemnity", {"amount": "10.00"}, expect=409,
                snapshot=case_snapshot(web, invoice), check=lambda r: "no insurance claim" in r["error"])


async def _audit_verify(web: Web, role: str) -> Call:
    await web.new_case()
    count = web.context.store.count()
    return Call("GET", "/api/audit/verify", check=lambda r: r["intact"] and r["events"] >= count > 0
                and r["first_problem"] is None and len(r["head"]["hash"]) == 64 and "database" not in r)


def _last_position(web: Web) -> int:
    from sqlalchemy import func, select

    records = web.context.store.recorder.events_record_cls
    with web.context.db.read() as session:
        return session.execute(select(func.coalesce(func.max(records.id), 0))).scalar_one()


async def _audit_events(web: Web, role: str) -> Call:
    after = _last_position(web)
    invoice = await web.new_case()
    return Call("GET", f"/api/audit/events?after={after}&actor=demo-collector&from={date.today()}&limit=10000",
                check=lambda r: any(e["type"] == "CaseOpened" and e["subject"] == invoice
                                    and e["actor"] == "demo-collector" for e in r["events"])
                and all(e["position"] > after for e in r["events"]))


async def _events_read(web: Web, role: str) -> Call:
    after = _last_position(web)
    invoice = await web.new_case()
    return Call("GET", f"/api/events?after={after}&limit=1000",
                check=lambda r: any(e["type"] == "CaseOpened" and e["data"]["invoice_id"] == invoice
                                    and e["actor"] == "demo-collector" for e in r["events"])
                and all(e["position"] > after for e in r["events"]) and r["next_after"] <= r["head"])


PREPARE: dict[str, Callable[[Web, str], Awaitable[Call]]] = {
    "audit.verify": _audit_verify, "audit.events": _audit_events, "events.read": _events_read,
    "customers.show": _customer_show, "customers.limit": _customer_limit, "risk.watchlist": _watchlist,
    "risk.rescore": _rescore, "credit_hold.place": _hold_place, "credit_hold.release": _hold_release,
    "credit_hold.outbox": _outbox, "credit_hold.ack": _ack, "payments.unapplied": _unapplied,
    "payments.apply_credit": _apply_credit, "payments.prepay": _prepay, "reports.kpis": _kpis,
    "insurance.policies": _insurer_policies, "insurance.policy_add": _insurer_policy_add,
    "insurance.cover": _insurance_cover, "insurance.indemnity": _indemnity,
    "sweeps.run": _sweep, "schedule.create": _schedule, "schedule.show": _schedule_show,
    "schedule.delete": _schedule_delete, "payments.import": _payments_import,
    "payments.unmatched": _payments_unmatched, "payments.assign": _payments_assign,
    "payments.reverse": _payments_reverse, "notices.preview": _preview, "cases.migrate_policy": _migrate,
    "policy.list": _policies, "policy.pin": _pin,
    "me": _me, "cases.list": _cases_list, "cases.worklist": _worklist, "cases.show": _show, "cases.open": _open,
    "cases.assign": _assign, "cases.cancel": _cancel, "payments.record": _pay, "disputes.open": _dispute,
    "disputes.resolve": _resolve, "promises.make": _promise, "plans.propose": _propose, "plans.accept": _accept,
    "escalations.decide": _escalation, "write_offs.request": _write_off, "approvals.list": _approvals,
    "approvals.approve": _approve, "approvals.reject": _reject, "invoices.import": _import,
    "reports.dashboard": _dashboard, "policy.show": _policy, "projections.rebuild": _rebuild,
}

# -- no silent stall: plan withdraw, pauses, stuck report (docs/CONTROLS.md) ---------------------------------


def _in_ten_days() -> str:
    from datetime import datetime, timedelta, timezone

    return (datetime.now(timezone.utc) + timedelta(days=10)).date().isoformat()


async def _withdraw(web: Web, role: str) -> Call:
    invoice = await web.new_case()
    await web.service.propose_plan(invoice, 2, "P30D", web.actor("collector"))
    return Call("POST", f"/api/cases/{invoice}/plan/withdraw", {"reason": "customer declined"},
                snapshot=case_snapshot(web, invoice), check=lambda r: r["events"][0]["type"] == "PaymentPlanWithdrawn")


async def _pause(web: Web, role: str) -> Call:
    invoice = await web.new_case()
    return Call("POST", f"/api/cases/{invoice}/pause", {"until": _in_ten_days(), "reason": "customer_holiday"},
                snapshot=case_snapshot(web, invoice), check=lambda r: r["events"][0]["type"] == "DunningPaused")


async def _resume(web: Web, role: str) -> Call:
    invoice = await web.new_case()
    await web.service.pause(invoice, _in_ten_days(), "customer_holiday", web.actor("collector"))
    return Call("POST", f"/api/cases/{invoice}/resume", {"reason": "back early"},
                snapshot=case_snapshot(web, invoice), check=lambda r: r["events"][0]["type"] == "DunningResumed")


async def _customer_pause(web: Web, role: str) -> Call:
    invoice = await web.new_case()
    return Call("POST", f"/api/customers/C-{invoice}/pause", {"until": _in_ten_days(), "reason": "customer_holiday"},
                snapshot=case_snapshot(web, invoice),
                check=lambda r: [c["invoice_id"] for c in r["cases"] if c["paused"]] == [invoice])


async def _customer_resume(web: Web, role: str) -> Call:
    invoice = await web.new_case()
    await web.service.pause(invoice, _in_ten_days(), "customer_holiday", web.actor("collector"))
    return Call("POST", f"/api/customers/C-{invoice}/resume", {"reason": "back early"},
                snapshot=case_snapshot(web, invoice), check=lambda r: [c["invoice_id"] for c in r["cases"]] == [invoice])


async def _stuck(web: Web, role: str) -> Call:
    return Call("GET", "/api/reports/stuck", check=lambda r: r == [])


PREPARE.update({"plans.withdraw": _withdraw, "cases.pause": _pause, "cases.resume": _resume,
                "customers.pause": _customer_pause, "customers.resume": _customer_resume, "reports.stuck": _stuck})

# -- internal notifications (docs/CONTROLS.md) ---------------------------------------------------------


async def _notify_run(web: Web, role: str) -> Call:
    return Call("POST", "/api/notify/run", {}, check=lambda r: r["failed"] == 0 and r["as_of"])


async def _notify_log(web: Web, role: str) -> Call:
    return Call("GET", f"/api/notify/log?from={date.today()}", check=lambda r: isinstance(r, list))


PREPARE.update({"notify.run": _notify_run, "notify.log": _notify_log})


async def _waive_interest(web: Web, role: str) -> Call:
    # The web policy charges no interest (a waiver of what is charged is proven through the CLI in
    # tests/acceptance/test_interest.py and the decider in tests/domain/test_interest.py): here the
    # allowed roles reach the domain, which refuses.
    invoice = await web.new_case()
    return Call("POST", f"/api/cases/{invoice}/waive-interest", {"reason": "goodwill"}, expect=409,
                snapshot=case_snapshot(web, invoice), check=lambda r: "no interest or compensation" in r["error"])


PREPARE["interest.waive"] = _waive_interest

API_ROUTES = [r for r in api_router.routes if isinstance(r, APIRoute)]


def test_the_audit_trail_is_for_supervisors_and_finance_managers():
    assert ROLE_MATRIX["audit.verify"] == ROLE_MATRIX["audit.events"] == {Role.supervisor, Role.finance_manager}


def test_the_event_feed_is_not_a_collectors_and_all_an_integration_may_read():
    assert ROLE_MATRIX["events.read"] == {Role.supervisor, Role.finance_manager, Role.integration}
    assert {action for action, roles in ROLE_MATRIX.items() if Role.integration in roles} == {"events.read", "me"}


def test_every_endpoint_is_in_the_matrix_and_the_matrix_is_tested():
    documented = create_app().openapi()["paths"]
    assert sorted(p for p in documented if p.startswith("/api")) == sorted({r.path_format for r in API_ROUTES})
    assert sorted({r.name for r in API_ROUTES}) == sorted(ROLE_MATRIX)
    assert sorted(PREPARE) == sorted(ROLE_MATRIX)
    for route in API_ROUTES:  # each route is guarded by the check for its own action
        guards = {d.call.action for d in route.dependant.dependencies if getattr(d.call, "action", None)}
        assert guards == {route.name}, route.path


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", sorted(ROLE_MATRIX))
async def test_role_matrix(web: Web, action: str, role: str):
    call = await PREPARE[action](web, role)
    before = call.snapshot() if call.snapshot else None
    client = web.client(role)
    response = await client.request(call.method, call.path, json=call.json, content=call.content, headers=call.headers)
    if Role(role) in ROLE_MATRIX[action]:
        assert response.status_code == call.expect, response.text
        if call.check:
            assert call.check(response.json()), response.text
    else:
        assert response.status_code == 403, response.text
        body = response.json()
        assert body["status"] == 403 and action in body["error"] and ROLE_USERS[role] in body["error"]
        if call.snapshot:
            assert call.snapshot() == before


@pytest.mark.parametrize("route", API_ROUTES, ids=lambda r: r.name)
async def test_every_endpoint_needs_a_valid_token(web: Web, route: APIRoute):
    method = sorted(route.methods)[0]
    path = re.sub(r"\{[^}]+\}", "X", route.path_format)
    for client in (web.client(), web.client(token="ce_not-a-real-token")):
        response = await client.request(method, path, json={})
        assert response.status_code == 401, (path, response.text)
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["error"]

# -- the advances register (docs/ADVANCES.md) ----------------------------------------------------------


async def _advance(web: Web, amount: str) -> tuple[str, str]:
    from app.credit import CreditService

    invoice = web.new_invoice()
    customer = f"C-{invoice}"
    reply = await CreditService(web.service).prepay(customer, amount, "USD", web.actor("collector"))
    return invoice, reply["payment_id"]


async def _advance_apply(web: Web, role: str) -> Call:
    invoice, advance = await _advance(web, "25.00")  # the invoice has no case
    return Call("POST", f"/api/advances/{advance}/apply", {"invoice_id": invoice},
                snapshot=_customer_version(web, f"C-{invoice}"),
                check=lambda r: r["applied"] == "25.00" and r["case_id"] is None)


async def _advance_refund(web: Web, role: str) -> Call:
    invoice, advance = await _advance(web, "25.00")
    return Call("POST", f"/api/advances/{advance}/refunds", {"amount": "10.00", "reason": "order cancelled"},
                snapshot=_customer_version(web, f"C-{invoice}"),
                check=lambda r: r["status"] == "refunded" and r["amount"] == "10.00")


async def _advance_approve_refund(web: Web, role: str) -> Call:
    from app.advances import AdvanceService

    invoice, advance = await _advance(web, "500.00")
    asked = AdvanceService(web.service).refund(advance, "300.00", "order cancelled", web.actor("collector"))
    assert asked["status"] == "awaiting approval", asked
    return Call("POST", f"/api/advances/refunds/{asked['refund_id']}/approve",
                snapshot=_customer_version(web, f"C-{invoice}"), check=lambda r: r["status"] == "refunded")


async def _advances_report(web: Web, role: str) -> Call:
    _, advance = await _advance(web, "25.00")
    return Call("GET", "/api/reports/advances",
                check=lambda r: any(a["advance_id"] == advance and a["status"] == "held" for a in r["advances"]))


async def _advance_request(web: Web, role: str) -> Call:
    customer = f"C-{web.new_invoice()}"
    return Call("POST", f"/api/customers/{customer}/advance-requests",
                {"amount": "300.00", "due": _in_ten_days(), "reference": "30 % deposit", "order_id": "SO-1"},
                snapshot=_customer_version(web, customer), check=lambda r: r["recorded"] and r["order_id"] == "SO-1")


PREPARE.update({"advances.request": _advance_request, "reports.advances": _advances_report, "advances.apply": _advance_apply, "advances.refund": _advance_refund,
                "advances.approve_refund": _advance_approve_refund})

async def _revoke_links(web: Web, role: str) -> Call:
    invoice = web.new_invoice()
    return Call("POST", f"/api/customers/C-{invoice}/revoke-links", {"reason": "notice sent to the wrong address"},
                check=lambda r: r["events"] == ["CustomerLinksRevoked"] and r["customer_id"] == f"C-{invoice}")


PREPARE.update({"customers.revoke_links": _revoke_links})

# -- subscribers of the event feed (the general outbox, docs/EVENTS.md) --------------------------------

DEAD_WEBHOOK = "http://127.0.0.1:9/hooks"  # the discard port: nothing listens, every POST fails


def _subscriber(web: Web, paused: bool = False) -> str:
    from app.subscribers import SubscriberService

    name = f"sub-{uuid4().hex[:10]}"
    SubscriberService(web.context).add(name, DEAD_WEBHOOK, "CaseOpened", 0, web.actor("supervisor"), "test")
    if paused:
        SubscriberService(web.context).pause(name, web.actor("supervisor"), "test")
    return name


def _subscriber_row(web: Web, name: str) -> Callable[[], object]:
    from app.subscribers import SubscriberService

    def row():  # not the retry state: a worker's dispatcher may try the dead webhook meanwhile
        found = next((r for r in SubscriberService(web.context).list() if r["name"] == name), None)
        return found and (found["position"], found["paused"], found["types"], found["url"])

    return row


async def _subscribers_list(web: Web, role: str) -> Call:
    name = _subscriber(web)
    return Call("GET", "/api/subscribers", check=lambda r: any(s["name"] == name and s["types"] == ["CaseOpened"]
                                                              for s in r))


async def _subscribers_add(web: Web, role: str) -> Call:
    name = f"sub-{uuid4().hex[:10]}"
    return Call("POST", "/api/subscribers", {"name": name, "url": DEAD_WEBHOOK, "types": ["CaseOpened", "CaseClosed"],
                                             "from_position": 0, "reason": "warehouse"}, expect=201,
                snapshot=_subscriber_row(web, name),
                check=lambda r: r["name"] == name and r["types"] == ["CaseOpened", "CaseClosed"] and r["position"] == 0)


async def _subscribers_pause(web: Web, role: str) -> Call:
    name = _subscriber(web)
    return Call("POST", f"/api/subscribers/{name}/pause", {"reason": "ERP maintenance"},
                snapshot=_subscriber_row(web, name), check=lambda r: r["paused"] and r["changed"])


async def _subscribers_resume(web: Web, role: str) -> Call:
    name = _subscriber(web, paused=True)
    return Call("POST", f"/api/subscribers/{name}/resume", {"reason": "ERP back"},
                snapshot=_subscriber_row(web, name), check=lambda r: not r["paused"] and r["changed"])


async def _subscribers_remove(web: Web, role: str) -> Call:
    name = _subscriber(web)
    return Call("POST", f"/api/subscribers/{name}/remove", {"reason": "retired"},
                snapshot=_subscriber_row(web, name), check=lambda r: r["removed"] and r["name"] == name)


async def _subscribers_dispatch(web: Web, role: str) -> Call:
    name = _subscriber(web)
    await web.new_case()  # a CaseOpened for it to push
    return Call("POST", "/api/subscribers/dispatch", snapshot=_subscriber_row(web, name),
                check=lambda r: any(a["subscriber"] == name and a["outcome"] in ("failed", "waiting") for a in r))


PREPARE.update({
    "subscribers.list": _subscribers_list, "subscribers.add": _subscribers_add,
    "subscribers.pause": _subscribers_pause, "subscribers.resume": _subscribers_resume,
    "subscribers.remove": _subscribers_remove, "subscribers.dispatch": _subscribers_dispatch,
})


# -- early-cash instruments (docs/FINANCING.md) -------------------------------------------------------


async def _financing_assign(web: Web, role: str) -> Call:
    invoice = await web.new_case()
    return Call("POST", "/api/financing/assignments",
                {"invoice_ids": [invoice], "factor": "northbank", "recourse": "no", "advance_rate": "0.9",
                 "reason": "financing agreement 7"},
                snapshot=case_snapshot(web, invoice),
                check=lambda r: r["assigned"][0]["invoice_id"] == invoice and r["assigned"][0]["status"] == "with_factor")


async def _financing_outcome(web: Web, role: str) -> Call:
    from app.financing import FinancingService

    invoice = await web.new_case()
    await FinancingService(web.service).assign([invoice], "northbank", "no", "0.9", None, "agreement 7",
                                               web.actor("supervisor"))
    return Call("POST", f"/api/cases/{invoice}/factor-outcome", {"outcome": "collected", "reason": "statement 12"},
                snapshot=case_snapshot(web, invoice),
                check=lambda r: r["status"] == "paid" and r["events"][0]["type"] == "FactorCollected")


async def _financing_report(web: Web, role: str) -> Call:
    return Call("GET", "/api/reports/financing", check=lambda r: {"factors", "totals", "discounts"} <= set(r))


PREPARE.update({"financing.assign": _financing_assign, "financing.outcome": _financing_outcome,
                "reports.financing": _financing_report})
