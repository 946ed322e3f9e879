"""Factoring and early-payment discounts through the real workflows on the time-skipping server,
with a real SMTP sink and SQLite (docs/FINANCING.md): who is dunned and what the notice says."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from app.financing import FinancingService
from app.services import CaseService
from domain.errors import DomainError
from tests.harness import advance, case_state, event_types, eventually, terminate_cases
from worker import build_worker

ANYTIME = Path(__file__).resolve().parents[1] / "data" / "default-anytime.toml"
HEADER = "invoice_id,customer_id,customer_name,customer_email,country,language,currency,amount,issue_date,due_date,risk_grade"
EARLY_CASH = (Path(__file__).resolve().parents[1] / "data" / "early-cash.toml").read_text()


@pytest.fixture
async def stack(time_env, make_context, sqlite_url, smtp, tmp_path):
    policy = tmp_path / "policy.toml"
    policy.write_text(ANYTIME.read_text().replace('version = "test-default-anytime-1"',
                                                  'version = "test-early-cash-1"') + "\n" + EARLY_CASH)
    context = make_context(sqlite_url, client=time_env.client, smtp_port=smtp.port)
    context.settings.policy_path = policy
    service = CaseService(context)
    today = datetime.now(timezone.utc).date()
    lines = [HEADER]
    for invoice, grade, language in (("FR-1", "B", "en"), ("FN-1", "B", "en"), ("DS-1", "A", "zh-CN"),
                                     ("DS-2", "C", "en")):
        due = today - timedelta(days=5)
        lines.append(f"{invoice},C-{invoice},Customer {invoice},ap@{invoice.lower()}.test,US,{language},USD,1000.00,"
                     f"{(due - timedelta(days=30)).isoformat()},{due.isoformat()},{grade}")
    (tmp_path / "ledger.csv").write_text("\n".join(lines) + "\n")
    service.import_invoices(tmp_path / "ledger.csv")
    async with build_worker(time_env.client, context):
        yield service
        await terminate_cases(service)


async def test_recourse_keeps_dunning_with_the_factors_instructions_and_reports_the_default(stack, time_env, smtp):
    service = stack
    financing = FinancingService(service)
    supervisor = service.ctx.actor("demo-supervisor")
    for invoice in ("FR-1", "FN-1"):
        await service.open_case(invoice)
    with pytest.raises(DomainError, match="not a factor") as error:
        await financing.assign(["FR-1", "FN-1"], "southbank", "yes", "0.9", None, "agreement 7", supervisor)
    assert error.value.field == "to" and case_state(service, "FR-1").financing is None
    reply = await financing.assign(["FR-1"], "northbank", "yes", "0.9", "0.015", "agreement 7", supervisor)
    assert reply["assigned"][0]["status"] == "open"
    reply = await financing.assign(["FN-1"], "northbank", "no", "0.8", None, "agreement 7", supervisor)
    assert reply["assigned"][0]["status"] == "with_factor"
    with pytest.raises(DomainError, match="already assigned"):
        await financing.assign(["FN-1"], "northbank", "yes", "0.9", None, "again", supervisor)
    await advance(time_env, timedelta(days=4))  # the friendly notice (B: three days after opening)
    await eventually(lambda: smtp.to("ap@fr-1.test"))
    [notice] = smtp.to("ap@fr-1.test")
    body = notice.body()
    assert "This invoice has been assigned to Northbank Factoring Ltd; pay only to Northbank Factoring Ltd" in body
    assert "GB33BUKB20201555555555" in body and "BUKBGB22" in body and "Northbank" in notice.body("html")
    assert smtp.to("ap@fn-1.test") == []  # without recourse the factor collects: no notice from us
    assert service.show("FN-1")["waiting_for"] == "with factor northbank"
    # the ladder goes on for the recourse case to escalation: the default is reported to the factor
    await advance(time_env, timedelta(days=36))
    await eventually(lambda: "FactorNotified" in event_types(service, "FR-1"), timeout=60)
    types = event_types(service, "FR-1")
    assert types.index("EscalatedToSupervisor") < types.index("FactorDefaultReported") < types.index("FactorNotified")
    [report] = smtp.to("factoring@northbank.test")
    assert "FR-1" in report.subject and "escalated" in report.body() and "Amount in default: 1040.00 USD" in report.body()
    assert smtp.to("ap@fn-1.test") == []
    closed = await financing.outcome("FN-1", "defaulted", "statement 12", supervisor)
    assert closed["status"] == "resolved"
    state = case_state(service, "FN-1")
    assert state.factored == state.original_amount and state.write_offs.is_zero
    figures = financing.report()
    by_recourse = {g["recourse"]: g for g in figures["factors"]}
    assert by_recourse[True]["advanced"] == "900.00" and by_recourse[True]["fees"] == "15.00"
    assert by_recourse[True]["outstanding"] == "1000.00" and by_recourse[True]["reported_defaults"] == 1
    assert by_recourse[False]["advanced"] == "800.00" and by_recourse[False]["outstanding"] == "0"
    assert by_recourse[False]["defaulted"] == "1000.00"


async def test_a_discount_offer_in_the_notice_and_the_discounted_payment_closes_the_case(stack, time_env, smtp):
    service = stack
    collector = service.ctx.actor("demo-collector")
    await service.open_case("DS-1")  # grade A: offered
    await service.open_case("DS-2")  # grade C: not offered
    await advance(time_env, timedelta(days=5))
    await eventually(lambda: smtp.to("ap@ds-1.test") and smtp.to("ap@ds-2.test"))
    [offer] = smtp.to("ap@ds-1.test")
    assert "提前付款折扣" in offer.body() and "US$980.00" in offer.body() and "US$20.00" in offer.body()
    assert "discount" not in smtp.to("ap@ds-2.test")[0].body()
    state = case_state(service, "DS-1")
    assert state.discount_offer.pay.amount == Decimal("980.00")
    await advance(time_env, timedelta(days=3))
    paid = await service.pay("DS-1", "980.00", "early", collector, payment_id="EP-1")
    assert paid["status"] == "paid"
    assert event_types(service, "DS-1")[-2:] == ["EarlyPaymentDiscountGranted", "CaseClosed"]
    shown = service.show("DS-1")
    assert shown["totals"]["discounts"] == "20.00" and shown["totals"]["write_offs"] == "0.00"
    [quarter] = FinancingService(service).report()["discounts"]
    assert (quarter["count"], quarter["amount"], quarter["currency"]) == (1, "20.00", "USD")
