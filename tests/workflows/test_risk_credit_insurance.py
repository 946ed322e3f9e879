"""Credit insurance, customer credit, risk grades and credit holds through the real
workflows on the time-skipping server, with a real SMTP sink and SQLite."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from app.credit import CreditService
from app.customers import CustomerService
from app.insurance import InsuranceService
from app.services import CaseService
from domain.customer import customer_stream_id
from domain.errors import DomainError
from tests.harness import advance, case_state, event_types, eventually, terminate_cases
from worker import build_worker

ANYTIME = Path(__file__).resolve().parents[1] / "data" / "default-anytime.toml"
HEADER = "invoice_id,customer_id,customer_name,customer_email,country,language,currency,amount,issue_date,due_date,risk_grade"


def ledger(tmp_path: Path, rows: list[tuple[str, str, str, int, str]]) -> Path:
    """rows: (invoice, customer, amount, days overdue today, grade)."""
    today = datetime.now(timezone.utc).date()
    lines = [HEADER]
    for invoice, customer, amount, overdue, grade in rows:
        due = today - timedelta(days=overdue)
        lines.append(f"{invoice},{customer},Customer {customer},ap@{customer.lower()}.test,US,en,USD,{amount},"
                     f"{(due - timedelta(days=30)).isoformat()},{due.isoformat()},{grade}")
    path = tmp_path / "ledger.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
async def stack(time_env, make_context, sqlite_url, smtp, tmp_path):
    context = make_context(sqlite_url, client=time_env.client, smtp_port=smtp.port)
    context.settings.policy_path = ANYTIME
    service = CaseService(context)
    service.import_invoices(ledger(tmp_path, [
        ("INS-1", "C-INS", "1000.00", 10, "B"),
        ("CR-1", "C-CR", "100.00", 5, "B"), ("CR-2", "C-CR", "300.00", 5, "B"),
        ("RK-1", "C-RK", "100.00", 90, "A"), ("RK-2", "C-RK", "100.00", 90, "A"),
        ("RK-3", "C-RK", "100.00", 90, "A"), ("RK-4", "C-RK", "100.00", 90, "A"),
        ("HD-1", "C-HD", "500.00", 5, "D"),
    ]))
    async with build_worker(time_env.client, context):
        yield service
        await terminate_cases(service)


async def test_an_insured_case_notifies_the_insurer_files_a_claim_and_writes_off_net(stack, time_env, smtp):
    service = stack
    insurance = InsuranceService(service)
    manager, supervisor = service.ctx.actor("demo-manager"), service.ctx.actor("demo-supervisor")
    insurance.add_policy("POL-1", "ATR", "Atradius Test", "claims@insurer.test", "P60D", "P45D", "P30D", "90")
    insurance.cover("INS-1", "POL-1")
    opened = await service.open_case("INS-1")
    shown = service.show("INS-1")["insurance"]
    due = date.fromisoformat(shown["extension_until"]) - timedelta(days=45)
    assert shown["stage"] == "insured" and shown["notify_by"].startswith((due + timedelta(days=61)).isoformat())
    assert shown["notify_at"].startswith((due + timedelta(days=31)).isoformat())  # 30 days past due (the policy)
    with pytest.raises(DomainError, match="already has a case"):
        insurance.cover("INS-1", "POL-1")
    await advance(time_env, timedelta(days=22))  # 10 days overdue at opening: the notice is due 20 days on
    await eventually(lambda: "InsurerNotified" in event_types(service, "INS-1"))
    [mail] = smtp.to("claims@insurer.test")
    assert "policy POL-1" in mail.subject and "INS-1" in mail.body() and "1,040.00" not in mail.subject
    await advance(time_env, timedelta(days=31))  # the claim waiting period ends unpaid
    await eventually(lambda: "ClaimFiled" in event_types(service, "INS-1"))
    state = case_state(service, "INS-1")
    balance = state.balance  # the ladder's late fee included
    assert state.insurance.claim_amount == balance and state.insurance.expected_indemnity == balance.percent(90)
    with pytest.raises(DomainError, match="net of the indemnity"):
        await service.request_write_off("INS-1", str(balance.amount), "insolvency", supervisor)
    reply = await insurance.record_indemnity("INS-1", str(state.insurance.expected_indemnity.amount), manager, "ATR-9")
    rest = balance - state.insurance.expected_indemnity
    assert reply["balance"] == str(rest.amount)
    await service.request_write_off("INS-1", str(rest.amount), "insolvency", supervisor)
    approval = next(a for a in service.approvals() if a["case_id"] == opened["case_id"] and a["kind"] == "write_off")
    closed = await service.decide_approval(approval["approval_id"], True, manager, "insurer paid the rest")
    assert closed["status"] == "written_off"
    final = service.show("INS-1")
    assert final["insurance"]["stage"] == "indemnified" and final["totals"]["indemnity"] == str(
        state.insurance.expected_indemnity.amount)


async def test_an_overpayment_becomes_credit_applied_to_another_invoice(stack, time_env):
    service = stack
    credit = CreditService(service)
    collector = service.ctx.actor("demo-collector")
    await service.open_case("CR-1")
    await service.open_case("CR-2")
    paid = await service.pay("CR-1", "150.00", "overpaid", collector, payment_id="P-OVER")
    assert paid["status"] == "paid"
    [row] = credit.unapplied(customer_id="C-CR")
    assert (row["balance"], row["age_days"]) == ("50.00", 0)
    applied = await credit.apply("CR-2", None, collector)
    assert applied["balance"] == "250.00" and applied["applied"] == "50.00"
    assert credit.unapplied(customer_id="C-CR") == []
    assert "CustomerCreditApplied" in event_types(service, "CR-2")
    stream = [type(e).__name__ for e in service.ctx.store.load(customer_stream_id("C-CR"))]
    assert "CustomerCreditAllocated" in stream
    with pytest.raises(DomainError, match="no USD credit"):
        await credit.apply("CR-2", None, collector)
    with pytest.raises(DomainError, match="is closed"):
        await credit.apply("CR-1", "1.00", collector)
    # a prepayment is credit too, applied at once when asked (or by policy)
    await credit.prepay("C-CR", "300.00", "USD", collector, payment_id="PRE-1")
    applied = await credit.auto_apply("C-CR", collector)
    assert [a["amount"] for a in applied] == ["250.00"] and applied[0]["status"] == "paid"
    [row] = credit.unapplied(customer_id="C-CR")
    assert row["balance"] == "50.00"
    state = case_state(service, "CR-2")
    assert state.original_amount + state.fees == state.payments + state.credit_applied_total + state.credits


async def test_payment_history_changes_the_grade_and_the_grade_chooses_the_ladder(stack, time_env):
    service = stack
    customers = CustomerService(service.ctx)
    for invoice in ("RK-1", "RK-2", "RK-3"):
        await service.open_case(invoice)
        await service.pay(invoice, "100.00", "late", service.ctx.actor("demo-collector"))
    # three invoices paid 90 days late: the worker's hook rescored the customer as they closed
    events = await eventually(lambda: [e for e in service.ctx.store.load(customer_stream_id("C-RK"))
                                       if type(e).__name__ == "RiskGradeChanged"])
    assert (events[-1].from_grade.value, events[-1].to_grade.value) == ("A", "D")
    shown = customers.show("C-RK")
    assert shown["grade"] == "D" and shown["graded_by"] == "scorecard"
    assert [f["name"] for f in shown["top_factors"]] == ["avg_days_late", "late_share", "max_days_late"]
    watch = customers.watchlist(days=30)
    assert [w["customer_id"] for w in watch] == ["C-RK"] and "worsened A -> D" in watch[0]["reasons"][0]
    await service.open_case("RK-4")
    assert case_state(service, "RK-4").risk_grade.value == "D"  # the new case got the D ladder
    assert case_state(service, "RK-4").ladder_steps == 2


async def test_a_credit_hold_decision_reaches_the_outbox_and_is_acknowledged(stack, time_env):
    service = stack
    customers = CustomerService(service.ctx)
    await service.open_case("HD-1")  # grade D: firm at 1 day, final at 10, escalation a week later
    await advance(time_env, timedelta(days=18))
    await eventually(lambda: case_state(service, "HD-1").escalation_pending)
    await service.decide_escalation("HD-1", "credit_hold", service.ctx.actor("demo-supervisor"), "no answer")
    [entry] = await eventually(lambda: customers.outbox())
    assert entry["customer_id"] == "C-HD" and entry["action"] == "hold"
    acked = customers.acknowledge(entry["outbox_id"], "erp", service.ctx.actor("demo-collector"))
    assert acked["acked_by"] == "erp" and customers.outbox() == []
    assert customers.show("C-HD")["on_hold"]
    released = customers.release_hold("C-HD", "paid up", service.ctx.actor("demo-supervisor"))
    assert not released["on_hold"] and [e["action"] for e in customers.outbox()] == ["release"]
    # projections equal a rebuild, customer streams included
    from tests.store.test_event_store_contract import projection_rows

    live = projection_rows(service.ctx.db)
    service.ctx.store.rebuild_projections()
    assert projection_rows(service.ctx.db) == live


async def test_by_policy_an_overpayment_is_applied_at_once_to_the_oldest_open_case(stack, time_env, tmp_path):
    service = stack
    text = ANYTIME.read_text().replace('version = "test-default-anytime-1"', 'version = "test-auto-credit-1"')
    (tmp_path / "auto.toml").write_text(text + "\n[credit]\nauto_apply = true\n")
    service.ctx.settings.policy_path = tmp_path / "auto.toml"
    await service.open_case("CR-1")
    await service.open_case("CR-2")
    paid = await service.pay("CR-1", "180.00", "overpaid", service.ctx.actor("demo-collector"))
    assert [a["amount"] for a in paid["credit_applied"]] == ["80.00"]
    assert case_state(service, "CR-2").balance.amount == 220
    assert CreditService(service).unapplied(customer_id="C-CR") == []


async def test_credit_the_case_refuses_is_given_back(stack, time_env, monkeypatch):
    service = stack
    credit = CreditService(service)
    collector = service.ctx.actor("demo-collector")
    await service.open_case("CR-2")
    await credit.prepay("C-CR", "40.00", "USD", collector, payment_id="PRE-R")

    async def refused(*args, **kwargs):
        raise DomainError("case is closed (paid); it accepts no further commands", "case")

    monkeypatch.setattr(service, "_send", refused)
    with pytest.raises(DomainError, match="closed"):
        await credit.apply("CR-2", "40.00", collector)
    stream = [type(e).__name__ for e in service.ctx.store.load(customer_stream_id("C-CR"))]
    assert stream[-2:] == ["CustomerCreditAllocated", "CustomerCreditAllocationReleased"]
    [row] = credit.unapplied(customer_id="C-CR")
    assert row["balance"] == "40.00"  # given back
