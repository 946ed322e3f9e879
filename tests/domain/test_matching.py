"""Matching rules (domain/matching.py) and the bank-charge tolerance in the decider: given / when / then."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from uuid import uuid4

from domain import commands as cmd
from domain.matching import Application, Item, plan, rank, split
from domain.state import CaseStatus
from tests.domain.scenario import Case, default_policy, types, usd


def item(invoice_id: str, open_minor: int, currency: str = "EUR", due: date | None = None, closed: bool = False):
    return Item(invoice_id, currency, open_minor, closed, due)


# -- several invoices --------------------------------------------------------------------


def test_a_reference_naming_two_invoices_splits_the_receipt_in_the_order_named():
    decided = plan(165050, "EUR", [item("INV-1", 120000), item("INV-2", 45050)], None)
    assert decided.how == "reference"
    assert decided.applications == (Application("INV-1", 120000), Application("INV-2", 45050))


def test_a_split_short_of_the_sum_leaves_the_last_invoice_partly_open_and_an_excess_goes_to_the_last():
    assert split(150000, [item("A", 120000), item("B", 45050)]) == (Application("A", 120000), Application("B", 30000))
    assert split(170000, [item("A", 120000), item("B", 45050)]) == (Application("A", 120000), Application("B", 50000))
    assert split(100000, [item("A", 120000), item("B", 45050)]) == (Application("A", 100000),)


def test_named_invoices_of_another_currency_or_paid_are_not_shared():
    decided = plan(45050, "EUR", [item("INV-1", 0), item("INV-2", 45050), item("INV-3", 100, "USD")], None)
    assert decided.applications == (Application("INV-2", 45050),)


def test_exactly_the_sum_of_a_payers_open_items_splits_oldest_due_first():
    items = [item("B", 20000, due=date(2026, 10, 8)), item("A", 10000, due=date(2026, 10, 1))]
    decided = plan(30000, "EUR", [], items)
    assert decided.how == "sum"
    assert decided.applications == (Application("A", 10000), Application("B", 20000))


# -- tolerance -----------------------------------------------------------------------------


def test_one_item_short_by_no_more_than_the_tolerance_is_taken():
    decided = plan(79750, "EUR", [], [item("A", 80000), item("B", 46000)], tolerance_minor=500)
    assert decided.how == "amount" and decided.applications == (Application("A", 79750),)


def test_beyond_the_tolerance_nothing_is_taken_and_candidates_are_ranked_with_reasons():
    decided = plan(45000, "EUR", [], [item("A", 1000), item("B", 46000), item("C", 5000, "USD")],
                   tolerance_minor=500, payer="NW")
    assert decided.how is None and decided.applications == ()
    assert decided.why_not == "no open invoices of NW are for exactly 450.00 EUR, nor together"
    assert [c.invoice_id for c in decided.candidates] == ["B", "A", "C"]
    assert decided.candidates[0].why_not == "owes 10.00 EUR more than the receipt (beyond the tolerance of 5.00 EUR)"
    assert decided.candidates[1].why_not == "owes 440.00 EUR less than the receipt"
    assert decided.candidates[2].why_not == "in USD, the receipt is in EUR"


def test_two_items_for_the_same_amount_is_ambiguous():
    decided = plan(10000, "EUR", [], [item("A", 10000), item("B", 10000)], payer="P")
    assert decided.how is None and decided.why_not == "2 open invoices of P are for exactly 100.00 EUR"
    assert rank(10000, "EUR", [item("B", 10000), item("A", 10000)])[0].invoice_id == "A"


def test_an_unknown_payer_without_a_reference_is_not_matched():
    decided = plan(10000, "EUR", [], None)
    assert decided.why_not == "no invoice id in the reference and the payer is not a known customer"


# -- the decider: a small balance within tolerance -------------------------------------------


def _tolerant(amount: str = "5.00", alone_up_to: str | None = None):
    policy = default_policy()
    approval = policy.approval if alone_up_to is None else policy.approval.model_copy(
        update={"alone_up_to": Decimal(alone_up_to)})
    return policy.model_copy(update={"matching": policy.matching.model_copy(
        update={"tolerance": {"USD": Decimal(amount)}}), "approval": approval})


def _bank_pay(case: Case, amount: str, within_tolerance: bool = True):
    return case.when(cmd.RecordPayment, payment_id=str(uuid4()), amount=usd(amount), reference="bank",
                     received_on=case.now.date(), matched_by="reference", within_tolerance=within_tolerance)


def test_bank_charges_within_the_tolerance_are_written_off_and_the_case_closes():
    case = Case(_tolerant()).open()
    events = _bank_pay(case, "997.50")
    assert types(events) == ["PaymentReceived", "SmallBalanceWrittenOff", "CaseClosed"]
    written = events[1]
    assert written.amount == usd("2.50") and written.tolerance == usd("5.00") and written.rate == 1
    s = case.state
    assert s.status == CaseStatus.paid and s.write_offs == usd("2.50") and s.balance == usd("0.00")
    assert s.original_amount + s.fees == s.paid_before_open + s.payments + s.credits + s.write_offs


def test_reversing_the_receipt_undoes_its_small_balance_write_off():
    case = Case(_tolerant()).open()
    receipt = _bank_pay(case, "997.50")[0]
    events = case.when(cmd.ReversePayment, payment_id=receipt.payment_id, reason="recalled by the bank")
    assert types(events) == ["PaymentReversed", "SmallBalanceWriteOffReversed", "CaseReopened"]
    assert events[1].amount == usd("2.50")
    s = case.state
    assert s.balance == usd("1000.00") and s.write_offs == usd("0.00") and s.status == CaseStatus.open
    # paid again in full by hand: nothing left to write off, nothing written off twice
    assert types(case.when(cmd.RecordPayment, payment_id="again", amount=usd("1000.00"), reference="r",
                           received_on=case.now.date())) == ["PaymentReceived", "CaseClosed"]
    assert case.state.write_offs == usd("0.00")


def test_beyond_the_tolerance_it_stays_a_partial_payment():
    case = Case(_tolerant()).open()
    assert types(_bank_pay(case, "990.00")) == ["PaymentReceived"]
    assert case.state.balance == usd("10.00") and case.state.status == CaseStatus.open


def test_a_payment_entered_by_hand_gets_no_tolerance():
    case = Case(_tolerant()).open()
    assert types(_bank_pay(case, "997.50", within_tolerance=False)) == ["PaymentReceived"]


def test_a_tolerance_above_one_persons_authority_writes_nothing_off():
    case = Case(_tolerant("50.00", alone_up_to="10")).open()
    assert types(_bank_pay(case, "980.00")) == ["PaymentReceived"]
    assert case.state.balance == usd("20.00")


def test_no_tolerance_in_the_policy_writes_nothing_off():
    policy = default_policy()
    case = Case(policy.model_copy(update={"matching": policy.matching.model_copy(update={"tolerance": {}})})).open()
    assert types(_bank_pay(case, "999.99")) == ["PaymentReceived"]
