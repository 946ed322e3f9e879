"""Payments: bank-file import, matching rules, manual assignment, reversals."""

from __future__ import annotations

from datetime import date

import pytest

from app.payments import PaymentService
from app.services import CaseService
from app.sweeps import run_sweep
from domain.errors import DomainError
from tests.harness import INVOICES, event_types, terminate_cases
from worker import build_worker

BANK_FILE = """payment_id,received_on,amount,currency,payer,reference
P1,2026-03-02,200.00,EUR,Acme GmbH,Payment for INV-1001 thank you
P2,2026-03-02,450.50,EUR,Acme GmbH,remittance 77
P3,2026-03-03,940.00,EUR,Acme GmbH,remittance 78
P4,2026-03-03,50.00,EUR,Acme GmbH,INV-1001 and INV-1002
P5,2026-03-03,10.00,EUR,Unknown Ltd,
P6,2026-03-04,100.00,EUR,Big Spender Inc,INV-3001
P7,2026-03-04,12345.60,CNY,C-200,wire
"""


@pytest.fixture
async def payments(dev_env, make_context, sqlite_url, smtp, tmp_path):
    context = make_context(sqlite_url, client=dev_env.client, smtp_port=smtp.port)
    cases = CaseService(context)
    cases.import_invoices(INVOICES)
    async with build_worker(dev_env.client, context):
        yield PaymentService(cases)
        await terminate_cases(cases)


def bank_file(tmp_path, text: str = BANK_FILE):
    path = tmp_path / "bank.csv"
    path.write_text(text)
    return path


async def test_import_matches_by_reference_then_by_payer_and_amount(payments, tmp_path):
    cases, collector = payments.cases, payments.cases.ctx.actor("demo-collector")
    await cases.open_case("INV-1001")
    await cases.open_case("INV-3001")
    result = await payments.import_file(bank_file(tmp_path), collector)
    assert result == {"file": str(tmp_path / "bank.csv"), "rows": 7, "already_imported": 0,
                      "matched_by_reference": 2, "matched_by_amount": 2, "matched_by_sum": 0, "matched_by_advance_request": 0,
                      "unmatched": 3}
    # P4 names INV-1001 and INV-1002; INV-1002 is paid (P2), so INV-1001 takes the whole receipt
    assert cases.show("INV-1001")["balance"] == "950.00"
    assert str(cases.ctx.ledger.invoice("INV-1002").paid) == "450.50 EUR"  # no case: on the invoice
    assert str(cases.ctx.ledger.invoice("INV-2001").paid) == "12345.60 CNY"
    why = {p["payment_id"]: p["note"] for p in payments.unmatched()}
    assert set(why) == {"P3", "P5", "P6"}
    assert "no open invoices of Acme GmbH are for exactly 940.00 EUR" in why["P3"]
    assert "not a known customer" in why["P5"]
    assert "currency EUR does not match invoice INV-3001 (USD)" in why["P6"]

    before = event_types(cases, "INV-1001")
    again = await payments.import_file(bank_file(tmp_path), collector)
    assert again["already_imported"] == 7 and again["unmatched"] == 0
    assert event_types(cases, "INV-1001") == before  # importing twice applies nothing twice

    # a paid invoice is no longer overdue for the sweep; the open one gets a case
    swept = await run_sweep(cases.ctx, date(2026, 3, 20))
    assert swept["skipped"]["paid"] == 2 and swept["already_open"] == 2

    with pytest.raises(DomainError, match="reason is required"):
        await payments.assign("P3", "INV-1001", collector)
    reply = await payments.assign("P3", "INV-1001", collector, "remittance advice")
    assert reply["balance"] == "10.00"
    assert [p["payment_id"] for p in payments.unmatched()] == ["P5", "P6"]
    with pytest.raises(DomainError, match="applied, not unmatched"):
        await payments.assign("P3", "INV-1001", collector, "again")
    with pytest.raises(DomainError, match="does not match invoice INV-3001"):
        await payments.assign("P6", "INV-3001", collector, "wrong currency")


async def test_two_open_invoices_for_the_same_amount_are_ambiguous(payments, tmp_path):
    text = ("invoice_id,customer_id,customer_name,customer_email,country,language,currency,amount,issue_date,due_date,risk_grade\n"
            "INV-7001,C-700,Twin Co,ap@twin.test,GB,en,GBP,300.00,2026-01-01,2026-01-31,B\n"
            "INV-7002,C-700,Twin Co,ap@twin.test,GB,en,GBP,300.00,2026-01-05,2026-02-04,B\n")
    (tmp_path / "twins.csv").write_text(text)
    payments.cases.import_invoices(tmp_path / "twins.csv")
    result = await payments.import_file(bank_file(tmp_path, "payment_id,received_on,amount,currency,payer,reference\n"
                                                            "T1,2026-03-01,300.00,GBP,Twin Co,March\n"),
                                        payments.cases.ctx.actor("demo-collector"))
    assert result["unmatched"] == 1
    assert "2 open invoices of Twin Co" in payments.unmatched()[0]["note"]


async def test_reversal_puts_the_balance_back_and_reopens_a_paid_case(payments):
    cases, collector = payments.cases, payments.cases.ctx.actor("demo-collector")
    await cases.open_case("INV-1001")
    await cases.pay("INV-1001", "200.00", "first", collector, payment_id="bank-1")
    paid = await cases.pay("INV-1001", "1000.00", "rest", collector, payment_id="bank-2")
    assert paid["status"] == "paid"
    reopened = await payments.reverse("bank-2", "cheque bounced", collector)
    assert reopened["status"] == "open" and reopened["balance"] == "1000.00"
    assert event_types(cases, "INV-1001")[-2:] == ["PaymentReversed", "CaseReopened"]
    assert cases.show("INV-1001")["next_action"] == "send reminder 1"
    partly = await payments.reverse("bank-1", "recalled by the bank", collector)
    assert partly["balance"] == "1200.00"
    assert (await payments.reverse("bank-1", "again", collector))["reversed"] is False
    with pytest.raises(DomainError, match="unknown payment"):
        await payments.reverse("nope", "x", collector)


async def test_reversing_a_ledger_payment_makes_the_invoice_overdue_again(payments):
    cases, collector = payments.cases, payments.cases.ctx.actor("demo-collector")
    await cases.pay("INV-1002", "450.50", "early", collector, payment_id="early-1")
    first = await run_sweep(cases.ctx, date(2026, 3, 20))
    assert first["skipped"]["paid"] == 1 and first["cases_opened"] == 3
    await payments.reverse("early-1", "direct debit returned", collector)
    swept = await run_sweep(cases.ctx, date(2026, 3, 20))
    assert swept["skipped"]["paid"] == 0 and swept["cases_opened"] == 1 and swept["already_open"] == 3
