"""Acceptance: early-cash instruments (docs/FINANCING.md) through the command line and the real
stack. A finance team names its factor and an early-payment discount in the policy; a supervisor
assigns one invoice with recourse and one without (`financing assign`); the recourse customer's
notice carries the factor's payment instructions and the notice of assignment, the other customer
hears nothing from us; the recourse case escalates and the factor receives the default report by
e-mail; the factor reports the other invoice defaulted. A good payer's notice offers a discount:
paying the discounted amount within the offer closes the case, after the date it does not. Every
figure of `report financing` is one the test computes itself."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from tests.acceptance.stack import FAST_POLICY, ROOT, console_case_page, eventually, money

TODAY = datetime.now(timezone.utc).date()
DUE = TODAY - timedelta(days=10)
SUPERVISOR = ("--as", "demo-supervisor")
SENTENCE = "This invoice has been assigned to Northbank Factoring Ltd; pay only to Northbank Factoring Ltd"
EARLY_CASH = (ROOT / "tests" / "data" / "early-cash.toml").read_text().replace('within = "P10D"', 'within = "PT20S"')


def row(invoice_id: str, customer: str, grade: str, language: str = "en", amount: str = "1000.00") -> str:
    return (f"{invoice_id},{customer},{customer} Ltd,ap@{customer.lower()}.test,US,{language},USD,{amount},"
            f"{DUE - timedelta(days=30)},{DUE},{grade}")


@pytest.fixture(scope="module")
def ledger(ledger_for, tmp_path_factory):
    policy = tmp_path_factory.mktemp("financing-policy") / "policy.toml"
    text = FAST_POLICY.read_text().replace('version = "test-fast-1"', 'version = "test-fast-financing"')
    # time to assign an invoice before its first notice (30 s, a loaded machine included), and to pay
    # within the 20 s offer
    text = text.replace('after = "PT1S"', 'after = "PT30S"').replace('after = "PT2S"', 'after = "PT34S"')
    policy.write_text(text.replace('after = "PT3S"', 'after = "PT38S"') + "\n" + EARLY_CASH)
    return ledger_for(policy=policy)


def mails_to(ledger, address: str, count: int = 1, timeout: float = 90) -> list:
    return eventually(lambda: (lambda found: found if len(found) >= count else None)(ledger.mails(address)),
                      timeout, f"{count} e-mails to {address}")


def test_factoring_with_and_without_recourse_changes_who_is_dunned_and_what_the_notice_says(ledger):
    ledger.import_invoices([row("FIN-R1", "C-FR", "B"), row("FIN-N1", "C-FN", "B"), row("FIN-X1", "C-FX", "B")])
    base = ("--to", "northbank", "--recourse", "yes", "--advance-rate", "0.9", "--reason", "agreement 7", *SUPERVISOR)
    ledger.ok("case", "open", "FIN-R1")
    assigned = ledger.ok("financing", "assign", "FIN-R1", *base[:5], "0.9", "--fee-rate", "0.02", *base[6:])
    assert assigned["assigned"][0]["status"] == "open"
    ledger.ok("case", "open", "FIN-N1")
    assigned = ledger.ok("financing", "assign", "FIN-N1", "--to", "northbank", "--recourse", "no",
                         "--advance-rate", "0.8", "--reason", "agreement 7", *SUPERVISOR)
    assert assigned["assigned"][0]["status"] == "with_factor"
    # bad input: one line naming the field, exit 2, nothing changed
    ledger.ok("case", "open", "FIN-X1")
    ledger.refused("financing", "assign", "NO-SUCH-1", *base, match="invoice_id")
    ledger.refused("financing", "assign", "FIN-X1", "--to", "southbank", *base[2:], match="to:")
    ledger.refused("financing", "assign", "FIN-X1", *base[:4], "--advance-rate", "1.5", *base[6:],
                   match="advance_rate")
    ledger.refused("financing", "assign", "FIN-X1", *base[:2], "--recourse", "maybe", *base[4:], match="recourse")
    ledger.refused("financing", "assign", "FIN-X1", *base[:5], "0.9", "--fee-rate", "1", *base[6:], match="fee_rate")
    ledger.refused("financing", "assign", "FIN-X1", "FIN-N1", *base, match="already assigned")  # all or none
    # a collector may not sell receivables (app/authorization.py)
    ledger.refused("financing", "assign", "FIN-X1", *base[:-2], "--as", "demo-collector", match="as:")
    assert ledger.case("FIN-X1")["financing"] is None
    listed = ledger.cases()
    assert listed["FIN-N1"]["status"] == "with_factor" and listed["FIN-R1"]["status"] != "with_factor"
    shown = ledger.case("FIN-N1")
    assert shown["financing"]["factor"] == "northbank" and shown["waiting_for"] == "with factor northbank"
    assert [e["actor"] for e in shown["events"] if e["type"] == "InvoiceAssignedToFactor"] == ["demo-supervisor"]
    page = console_case_page(ledger, shown["case_id"])
    assert "Assigned to factor northbank without recourse" in page and "$800.00 advanced" in page, page

    # with recourse: the ladder goes on, and every notice carries the factor's instructions
    notices = mails_to(ledger, "ap@c-fr.test", 3)
    for mail in notices:
        assert SENTENCE in mail.text and "IBAN GB33BUKB20201555555555, BIC BUKBGB22" in mail.text, mail.text
    assert ledger.mails("ap@c-fn.test") == []  # without recourse the factor collects: we send nothing
    # the recourse case escalates: the default is reported to the factor's contact
    [report] = mails_to(ledger, "factoring@northbank.test", 1)
    assert "FIN-R1" in report.subject and "with recourse" in report.text and "escalated" in report.text
    events = [e["type"] for e in ledger.case("FIN-R1")["events"]]
    assert "FactorDefaultReported" in events and "FactorNotified" in events
    assert ledger.mails("ap@c-fn.test") == []

    # the factor reports the non-recourse invoice defaulted: its loss, the case closes as resolved
    closed = ledger.ok("financing", "default", "FIN-N1", "--reason", "northbank statement 12", *SUPERVISOR)
    assert closed["status"] == "resolved"
    ledger.refused("financing", "settle", "FIN-N1", "--reason", "again", *SUPERVISOR, match="closed")

    figures = ledger.ok("report", "financing")
    groups = {g["recourse"]: g for g in figures["factors"]}
    # recomputed here: the balance assigned (1,000.00 each, before any fee), x the advance rate and fee rate
    assert money(groups[True]["assigned"]) == Decimal("1000.00")
    assert money(groups[True]["advanced"]) == Decimal("1000.00") * Decimal("0.9")
    assert money(groups[True]["fees"]) == Decimal("1000.00") * Decimal("0.02")
    assert money(groups[True]["outstanding"]) == Decimal("1000.00") and groups[True]["reported_defaults"] == 1
    assert money(groups[False]["advanced"]) == Decimal("800.00") and money(groups[False]["fees"]) == 0
    assert money(groups[False]["outstanding"]) == 0 and money(groups[False]["defaulted"]) == Decimal("1000.00")
    assert money(figures["totals"]["USD"]["advanced"]) == Decimal("1700.00")


def test_a_discount_offer_paid_within_the_date_closes_the_case_and_after_it_does_not(ledger):
    ledger.import_invoices([row("DSC-IN", "C-DI", "A", "zh-CN"), row("DSC-LATE", "C-DL", "A"),
                            row("DSC-C", "C-DC", "C")])
    for invoice in ("DSC-IN", "DSC-LATE", "DSC-C"):
        ledger.ok("case", "open", invoice)
    [offer_zh] = mails_to(ledger, "ap@c-di.test", 1)
    assert "提前付款折扣" in offer_zh.text and "980.00" in offer_zh.text and "20.00" in offer_zh.text, offer_zh.text
    [offer_en] = mails_to(ledger, "ap@c-dl.test", 1)
    assert "Early-payment discount: pay $980.00 by" in offer_en.text and "remaining $20.00 (2 %)" in offer_en.text
    [no_offer] = mails_to(ledger, "ap@c-dc.test", 1)
    assert "discount" not in no_offer.text.lower()  # grade C: not offered

    paid = ledger.ok("pay", "DSC-IN", "980.00", "--reference", "early")
    assert paid["status"] == "paid", paid
    case = ledger.case("DSC-IN")
    granted = [e for e in case["events"] if e["type"] == "EarlyPaymentDiscountGranted"]
    assert money(granted[0]["data"]["amount"]["amount"]) == Decimal("20.00") and granted[0]["actor"] == "demo-collector"
    assert money(case["totals"]["discounts"]) == Decimal("20.00") and money(case["totals"]["write_offs"]) == 0
    assert not [e for e in case["events"] if e["type"] in ("WriteOffRequested", "WriteOffApproved")]

    offered = ledger.case("DSC-LATE")
    assert "Early-payment discount offered: pay $980.00" in console_case_page(ledger, offered["case_id"])
    pay_by = datetime.fromisoformat(offered["discount_offer"]["pay_by"])
    time.sleep(max(0.0, (pay_by - datetime.now(timezone.utc)).total_seconds()) + 1)
    late = ledger.ok("pay", "DSC-LATE", "980.00", "--reference", "late")
    assert late["status"] != "paid" and money(late["balance"]) == Decimal("20.00"), late

    figures = ledger.ok("report", "financing")
    quarter = f"{TODAY.year}-Q{(TODAY.month - 1) // 3 + 1}"
    assert [(d["quarter"], d["count"], money(d["amount"])) for d in figures["discounts"]] == [
        (quarter, 1, Decimal("20.00"))]
    reconciled = ledger.ok("report", "reconcile")
    assert not reconciled.get("differences"), reconciled
