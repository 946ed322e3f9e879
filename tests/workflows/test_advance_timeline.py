"""A deposit's whole timeline on the time-skipping server (issue 16): the request holds the order's
shipment; overdue, the sweep opens a case of kind advance; the ladder's "deposit due before
shipment" notices go out (in the customer's language) and the case escalates with the
``[advances]`` SLA; the deposit is paid, the case closes as paid and the hold is released; the
advance held on the customer is applied to the final invoice."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from app.advances import AdvanceService
from app.credit import CreditService
from app.services import CaseService
from app.sweeps import run_sweep
from domain import customer as cu
from domain.money import Money
from tests.harness import advance, case_state, event_types, eventually, terminate_cases
from worker import build_worker

ANYTIME = Path(__file__).resolve().parents[1] / "data" / "default-anytime.toml"
TODAY = datetime.now(timezone.utc).date()
EMAIL = "caiwu@deposit.test"


@pytest.fixture
async def running(time_env, make_context, sqlite_url, smtp, tmp_path):
    policy = tmp_path / "advances.toml"
    policy.write_text(ANYTIME.read_text().replace('version = "', 'version = "advances-', 1)
                      + '\n[advances]\nblock_shipment = true\nescalation_sla = "P4D"\n')
    ledger = tmp_path / "ledger.csv"
    ledger.write_text("invoice_id,customer_id,customer_name,customer_email,country,language,currency,amount,"
                      "issue_date,due_date,risk_grade\n"
                      f"INV-FINAL,C-DEP,上海定金贸易,{EMAIL},CN,zh-CN,CNY,1000.00,{TODAY - timedelta(days=1)},"
                      f"{TODAY + timedelta(days=90)},B\n")
    context = make_context(sqlite_url, client=time_env.client, smtp_port=smtp.port)
    context.settings.policy_path = policy
    service = CaseService(context)
    service.import_invoices(ledger)
    async with build_worker(time_env.client, context):
        yield service
        await terminate_cases(service)


def customer_events(service: CaseService) -> list[str]:
    return [type(e).__name__ for e in service.ctx.store.load(cu.customer_stream_id("C-DEP"))]


async def test_deposit_overdue_reminded_held_paid_released_and_applied(running, time_env, smtp):
    service = running
    collector = service.ctx.actor("demo-collector")
    advances = AdvanceService(service)
    advances.request("C-DEP", "300.00", "CNY", TODAY - timedelta(days=5), "30 % 定金 订单 SO-9", collector,
                     order_id="SO-9", request_id="RQ-9")
    assert customer_events(service) == ["AdvanceRequested", "ShipmentHeld"]

    swept = await run_sweep(service.ctx, TODAY)
    assert swept["cases_opened"] == 1  # the request; the invoice is not due
    state = await eventually(lambda: case_state(service, "RQ-9"))
    assert state.kind == "advance" and state.advance.order_id == "SO-9" and state.balance == Money.of("300.00", "CNY")

    await advance(time_env, timedelta(days=45))  # the invoice ladder of grade B, without its fee
    await eventually(lambda: "EscalatedToSupervisor" in event_types(service, "RQ-9"))
    mails = smtp.to(EMAIL)
    assert len(mails) == 3 and all("发货前应付定金" in m.subject and "SO-9" in m.subject for m in mails)
    assert mails[-1].subject.startswith("最后通知") and "RQ-9" in mails[-1].body()
    assert "30 % 定金 订单 SO-9" in mails[0].body() and "滞纳金" not in mails[-1].body()
    state = case_state(service, "RQ-9")
    assert state.fees.amount == 0  # no late fee on a deposit
    [escalated] = [e for e in service.ctx.store.load(state.case_id) if type(e).__name__ == "EscalatedToSupervisor"]
    assert escalated.sla_due_at - escalated.occurred_at == timedelta(days=4)  # the [advances] escalation SLA

    paid = await CreditService(service).prepay("C-DEP", "300.00", "CNY", collector, payment_id="PP-9",
                                               request_id="RQ-9")
    assert paid["advance_case"]["status"] == "paid"
    state = case_state(service, "RQ-9")
    assert state.closed and state.outcome.value == "paid"
    assert customer_events(service)[-2:] == ["PrepaymentReceived", "ShipmentReleased"]
    [row] = advances.report()["advances"]
    assert (row["advance_id"], row["source"], row["held"]) == ("PP-9", "advance request RQ-9", "300.00")

    applied = await advances.apply("PP-9", "INV-FINAL", None, collector)
    assert (applied["applied"], applied["invoice_open"]) == ("300.00", "700.00")
    assert advances.report()["held"] == {"CNY": "0.00"}
    assert len(smtp.to(EMAIL)) == 3  # nothing more was sent after the deposit arrived
