"""Given events / when the ERP's view of the invoice arrives / then events (invoice and customer sync)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from uuid import uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain import commands as cmd
from domain import events as ev
from domain.decider import amendment, erp_differences, paid_outside_taken_back
from domain.errors import DomainError
from domain.events import Customer
from domain.money import Money
from domain.state import PAID_OUTSIDE_REF, CaseStatus
from domain.users import Actor
from tests.domain.scenario import Case, default_policy, invoice, types, usd

ERP = Actor(name="erp-sync")
CUSTOMER = invoice().customer


def sync(case: Case, amount: str = "1000.00", due: date = date(2026, 2, 14), customer: Customer = CUSTOMER,
         notes: tuple[tuple[str, str], ...] = (), paid: str | None = None, cancelled: bool = False,
         source: str = "erp.csv line 2"):
    return case.when(cmd.SyncInvoice, actor=ERP, amount=usd(amount), due_date=due, customer=customer,
                     credit_notes=tuple(cmd.CreditNote(document_id=d, amount=usd(a)) for d, a in notes),
                     paid=usd(paid) if paid is not None else None, cancelled=cancelled, source=source)


def test_the_same_facts_again_record_nothing():
    case = Case().open()
    assert sync(case) == []
    assert sync(case, amount="800.00") != []
    assert sync(case, amount="800.00") == []


def test_amount_amended_moves_the_balance_both_ways_with_its_source():
    case = Case().open()
    case.pay("100.00")
    [event] = sync(case, amount="900.00")
    assert types([event]) == ["InvoiceAmended"] and event.actor == "erp-sync"
    assert event.change == usd("-100.00") and event.reason == "ERP export erp.csv line 2"
    assert case.state.balance == usd("800.00") and case.state.write_offs == usd("0")
    sync(case, amount="1200.00")
    assert case.state.balance == usd("1100.00") and case.state.current_invoice_amount == usd("1200.00")
    assert not case.state.pending_approvals  # the ERP's reduction needs no approval


def test_amended_below_what_was_paid_closes_as_resolved_and_the_part_paid_beyond_is_customer_credit():
    # given 600.00 paid on an invoice of 1000.00
    case = Case().open()
    case.pay("600.00", payment_id="P-1")
    # when the ERP amends it to 500.00
    events = sync(case, amount="500.00")
    # then the whole amendment (500.00) is recorded, the balance goes to zero, not below, and the
    # 100.00 paid beyond the new amount is the customer's credit, as an overpayment's excess
    assert types(events) == ["InvoiceAmended", "CaseClosed"]
    amended, closed = events
    assert (amended.change, amended.credit, amended.balance_change) == (usd("-500.00"), usd("100.00"), usd("-400.00"))
    s = case.state
    assert s.balance == usd("0") and s.customer_credit == usd("100.00") and s.status == CaseStatus.resolved
    assert (closed.payments, closed.erp_adjustments) == (usd("500.00"), usd("500.00"))
    assert s.original_amount == closed.payments + closed.erp_adjustments  # nothing left nowhere
    # the payment keeps what it did: 500.00 settles the invoice, 100.00 is left as credit
    paid = s.settled_by_payment["P-1"]
    assert (paid.applied, paid.excess) == (usd("500.00"), usd("100.00"))


def test_amended_below_what_was_paid_credits_only_money_paid_not_other_reductions():
    # given 300.00 credited by a credit note and 200.00 paid on an invoice of 1000.00 (500.00 open)
    case = Case().open()
    sync(case, notes=(("CN-1", "300.00"),))
    case.pay("200.00")
    # when the ERP amends it to 100.00 (900.00 off, 400.00 beyond the open balance)
    amended, _ = sync(case, amount="100.00")
    # then the 200.00 paid becomes credit; the reduction stops there (a credit note is no money paid)
    assert (amended.change, amended.credit) == (usd("-700.00"), usd("200.00"))
    assert case.state.balance == usd("0") and case.state.customer_credit == usd("200.00")
    assert case.state.payments == usd("0") and case.state.erp_adjustments == usd("1000.00")


def test_amended_below_the_open_balance_only_leaves_no_credit():
    case = Case().open()
    case.pay("100.00")
    [amended] = sync(case, amount="600.00")
    assert (amended.change, amended.credit) == (usd("-400.00"), None)
    assert case.state.balance == usd("500.00") and case.state.customer_credit == usd("0")


def test_runs_recorded_before_the_rule_amend_below_what_was_paid_as_they_did():
    case = Case(default_policy().before_amended_below_paid()).open()
    case.pay("600.00")
    amended, _ = sync(case, amount="500.00")
    assert (amended.change, amended.credit) == (usd("-400.00"), None)
    assert case.state.customer_credit == usd("0")


# -- money paid before the case opened (the ledger's paid: CaseOpened's original amount less its
# opening balance) counts as paid too, after the payments on the case


def test_amended_below_what_was_paid_before_the_case_opened_leaves_the_part_paid_beyond_as_credit():
    # given an invoice of 100.00 of which 40.00 was paid before the case opened (60.00 open)
    case = Case().open(invoice(amount="100.00", paid="40.00"))
    # when the ERP amends it to 30.00
    amended, closed = sync(case, amount="30.00")
    # then the whole amendment (70.00) is recorded, the balance goes to zero, and the 10.00 paid
    # beyond the new amount is the customer's credit
    assert (amended.change, amended.credit, amended.balance_change) == (usd("-70.00"), usd("10.00"), usd("-60.00"))
    s = case.state
    assert s.balance == usd("0") and s.status == CaseStatus.resolved and s.customer_credit == usd("10.00")
    # of the 40.00 paid before the case, 30.00 still settles the invoice of 30.00
    assert (s.paid_before_open, s.payments, s.erp_adjustments) == (usd("30.00"), usd("0"), usd("70.00"))
    assert s.original_amount == s.paid_before_open + s.payments + s.erp_adjustments  # nothing left nowhere
    assert (closed.payments, closed.erp_adjustments) == (usd("0"), usd("70.00"))


def test_an_amendment_takes_the_payments_on_the_case_first_then_money_paid_before_it():
    # given 40.00 paid before the case and 50.00 on it (P-1) of an invoice of 100.00: 10.00 open
    case = Case().open(invoice(amount="100.00", paid="40.00"))
    case.pay("50.00", payment_id="P-1")
    # when the ERP amends it to 20.00 (80.00 off, 70.00 beyond the open balance)
    amended, _ = sync(case, amount="20.00")
    # then the 50.00 paid on the case becomes credit first, as it did, then 20.00 of the 40.00
    assert (amended.change, amended.credit) == (usd("-80.00"), usd("70.00"))
    s = case.state
    assert s.customer_credit == usd("70.00") and s.balance == usd("0")
    assert (s.payments, s.paid_before_open) == (usd("0"), usd("20.00"))
    paid = s.settled_by_payment["P-1"]
    assert (paid.applied, paid.excess) == (usd("0"), usd("50.00"))  # a reversal takes back the 50.00 of credit


def test_an_amendment_within_the_payments_on_the_case_leaves_the_money_paid_before_it_as_it_was():
    case = Case().open(invoice(amount="100.00", paid="40.00"))
    case.pay("50.00", payment_id="P-1")
    amended, _ = sync(case, amount="70.00")  # 30.00 off, 20.00 beyond the open 10.00
    assert (amended.change, amended.credit) == (usd("-30.00"), usd("20.00"))
    s = case.state
    assert (s.payments, s.paid_before_open, s.customer_credit) == (usd("30.00"), usd("40.00"), usd("20.00"))


def test_two_successive_amendments_never_credit_more_than_was_paid():
    # given 40.00 paid before the case and 20.00 on it (P-1) of an invoice of 100.00: 40.00 open;
    # the ERP amends it to 65.00, within the open balance: no credit
    case = Case().open(invoice(amount="100.00", paid="40.00"))
    case.pay("20.00", payment_id="P-1")
    [first] = sync(case, amount="65.00")
    assert (first.change, first.credit) == (usd("-35.00"), None) and case.state.balance == usd("5.00")
    # when it amends it again, to 10.00 (55.00 off, 50.00 beyond the open 5.00)
    second, _ = sync(case, amount="10.00")
    # then the 20.00 paid on the case and 30.00 of the 40.00 paid before it are credit: 50.00 of the
    # 60.00 paid, the other 10.00 settles the invoice of 10.00
    assert (second.change, second.credit) == (usd("-55.00"), usd("50.00"))
    s = case.state
    assert (s.payments, s.paid_before_open, s.customer_credit) == (usd("0"), usd("10.00"), usd("50.00"))
    assert s.paid_before_open + s.payments + s.customer_credit == usd("60.00")  # what was paid, once


def test_money_paid_before_the_case_once_made_credit_is_not_credited_again():
    # given 40.00 paid before the case of 100.00, then a credit note of 50.00 (10.00 open); amended
    # to 20.00, all 40.00 paid is credit (the credit note is no money paid: the reduction stops there)
    case = Case().open(invoice(amount="100.00", paid="40.00"))
    sync(case, amount="100.00", notes=(("CN-1", "50.00"),))
    amended, _ = sync(case, amount="20.00", notes=(("CN-1", "50.00"),))
    assert (amended.change, amended.credit) == (usd("-50.00"), usd("40.00"))
    assert case.state.paid_before_open == usd("0") and case.state.customer_credit == usd("40.00")
    # when a later amendment is weighed on that state (as the ERP import plans it on the stored case)
    change, credit = amendment(case.state, usd("10.00"))
    # then nothing paid is left to credit
    assert (change, credit) == (usd("0"), None)


@settings(max_examples=250, deadline=None)
@given(paid_before=st.integers(0, 99),
       on_case=st.lists(st.tuples(st.sampled_from(("payment", "credit", "erp")), st.integers(1, 60)), max_size=5),
       amounts=st.lists(st.integers(1, 150), min_size=1, max_size=4))
def test_amendments_in_a_row_credit_at_most_what_was_paid_and_lose_nothing(paid_before, on_case, amounts):
    # what was paid: before the case, payments on it, customer credit applied to it and money the ERP
    # booked as paid outside the engine (its export's paid), in any order
    case = Case().open(invoice(amount="100.00", paid=f"{paid_before}.00"))
    paid = usd(f"{paid_before}.00")
    applied = outside = usd("0")
    for n, (how, amount) in enumerate(on_case):
        if amount >= case.state.balance.amount:
            break
        if how == "credit":
            case.when(cmd.ApplyCustomerCredit, allocation_id=f"AL-{n}", amount=usd(f"{amount}.00"))
            applied += usd(f"{amount}.00")
        elif how == "erp":
            outside += usd(f"{amount}.00")
            sync(case, amount="100.00", paid=str(outside.amount))
        else:
            case.pay(f"{amount}.00", payment_id=f"P-{n}")
        paid += usd(f"{amount}.00")
    for amount in amounts:
        if case.state.closed:
            break
        # the ERP's export says what it booked as paid each time: the same figure books nothing again
        sync(case, amount=f"{amount}.00", paid=str(outside.amount) if outside.is_positive else None)
        s = case.state
        amended = [e for e in case.events if isinstance(e, ev.InvoiceAmended) and e.credit is not None]
        credited = sum((e.credit for e in amended), usd("0"))
        given_back = sum((e.credit_applied for e in amended if e.credit_applied is not None), usd("0"))
        outside_back = sum((e.paid_outside for e in amended if e.paid_outside is not None), usd("0"))
        settles = s.paid_before_open + s.payments + s.credit_applied_total + s.paid_outside_settling_total
        assert min(s.paid_before_open.amount, s.payments.amount, s.credit_applied_total.amount,
                   s.paid_outside_settling_total.amount) >= 0
        # what still settles the invoice and the credit it left: what was paid, once
        assert settles + s.customer_credit == paid
        assert credited == s.customer_credit and credited <= paid
        assert given_back + s.credit_applied_total == applied  # credit applied given back at most once
        assert outside_back + s.paid_outside_settling_total == outside  # paid outside given back at most once
        assert s.erp_booked_total == outside  # what the ERP booked stays what it booked
        assert sum((e.amount for e in case.events if isinstance(e, ev.PaidOutsideEngine)), usd("0")) == outside
        # what still settles the invoice is no more than it owes: the rest is the customer's credit, not nobody's
        assert settles <= s.current_invoice_amount + s.fees
        assert s.original_amount + s.fees == settles + s.erp_adjustments_total + s.balance
        # interest's principal reductions: what still settles the invoice on the case
        assert sum(r.amount for r in s.principal_reductions) == (
            s.payments + s.credit_applied_total + s.paid_outside_settling_total).amount
        # the CaseClosed alone accounts for the invoice, once
        for c in (e for e in case.events if isinstance(e, ev.CaseClosed)):
            zero = usd("0")
            recorded = ((c.paid_before_open or zero) + c.payments + (c.credit_applied or zero)
                        + (c.paid_outside or zero) + (c.erp_adjustments or zero) + c.credits + c.write_offs)
            assert recorded == s.original_amount + c.fees, c
            assert c.paid_before_open == (s.paid_before_open if s.paid_before_open.is_positive else None)


def test_runs_recorded_before_money_paid_before_the_case_counted_credit_the_payments_on_the_case_only():
    # given a policy as decided before the rule; 40.00 paid before the case and 50.00 on it of 100.00
    case = Case(default_policy().before_amended_below_paid_before_case()).open(invoice(amount="100.00", paid="40.00"))
    case.pay("50.00", payment_id="P-1")
    # when the ERP amends it to 20.00
    amended, _ = sync(case, amount="20.00")
    # then only the 50.00 paid on the case is credit, as then; the 40.00 paid before stays on the invoice
    assert (amended.change, amended.credit) == (usd("-60.00"), usd("50.00"))
    s = case.state
    assert (s.customer_credit, s.paid_before_open, s.payments) == (usd("50.00"), usd("40.00"), usd("0"))
    # and with nothing paid on the case, nothing at all, as then
    old = Case(default_policy().before_amended_below_paid_before_case()).open(invoice(amount="100.00", paid="40.00"))
    amended, _ = sync(old, amount="30.00")
    assert (amended.change, amended.credit) == (usd("-60.00"), None)
    assert old.state.customer_credit == usd("0") and old.state.paid_before_open == usd("40.00")


# -- customer credit applied to the case (CustomerCreditApplied) counts as paid too, after the
# payments on the case and before money paid before it opened


def apply_credit(case: Case, amount: str, allocation_id: str):
    return case.when(cmd.ApplyCustomerCredit, allocation_id=allocation_id, amount=usd(amount))


def test_amended_below_the_customer_credit_applied_gives_the_part_applied_beyond_back_as_credit():
    # given an invoice of 100.00 with 70.00 of the customer's credit applied to it (30.00 open)
    case = Case().open(invoice(amount="100.00"))
    apply_credit(case, "70.00", "AL-1")
    # when the ERP amends it to 20.00
    amended, closed = sync(case, amount="20.00")
    # then the whole amendment (80.00) is recorded, the balance goes to zero, and the 50.00 of credit
    # applied beyond the new amount is the customer's credit again
    assert (amended.change, amended.credit, amended.credit_applied) == (usd("-80.00"), usd("50.00"), usd("50.00"))
    assert amended.balance_change == usd("-30.00")
    s = case.state
    assert s.balance == usd("0") and s.status == CaseStatus.resolved and s.customer_credit == usd("50.00")
    # of the 70.00 applied, 20.00 still settles the invoice of 20.00 (and lowers its principal)
    assert (s.credit_applied, s.payments, s.erp_adjustments) == (usd("20.00"), usd("0"), usd("80.00"))
    assert [(r.ref, r.amount) for r in s.principal_reductions] == [("AL-1", Decimal("20.00"))]
    assert (closed.credit_applied, closed.erp_adjustments) == (usd("20.00"), usd("80.00"))
    assert s.original_amount == s.credit_applied_total + s.erp_adjustments_total  # nothing left nowhere


def test_an_amendment_takes_the_payments_first_then_the_credit_applied_then_money_paid_before_the_case():
    # given 20.00 paid before the case, 30.00 paid on it (P-1), then 40.00 of credit applied in two
    # allocations (AL-1 25.00, AL-2 15.00) of an invoice of 100.00: 10.00 open
    case = Case().open(invoice(amount="100.00", paid="20.00"))
    case.pay("30.00", payment_id="P-1")
    apply_credit(case, "25.00", "AL-1")
    apply_credit(case, "15.00", "AL-2")
    # when the ERP amends it to 15.00 (85.00 off, 75.00 beyond the open balance)
    amended, _ = sync(case, amount="15.00")
    # then the 30.00 paid on the case, all 40.00 of credit applied and 5.00 of the 20.00 paid before
    assert (amended.change, amended.credit, amended.credit_applied) == (usd("-85.00"), usd("75.00"), usd("40.00"))
    s = case.state
    assert (s.payments, s.credit_applied, s.paid_before_open) == (usd("0"), usd("0"), usd("15.00"))
    assert s.customer_credit == usd("75.00")
    assert {r.ref: r.amount for r in s.principal_reductions} == {"P-1": 0, "AL-1": 0, "AL-2": 0}


def test_the_latest_allocation_is_given_back_first_and_the_payment_keeps_what_it_did():
    # given 30.00 paid on the case (P-1), then 25.00 (AL-1) and 15.00 (AL-2) of credit applied: 30.00 open
    case = Case().open(invoice(amount="100.00"))
    case.pay("30.00", payment_id="P-1")
    apply_credit(case, "25.00", "AL-1")
    apply_credit(case, "15.00", "AL-2")
    # when the ERP amends it to 10.00 (90.00 off, 60.00 beyond the open balance)
    amended, _ = sync(case, amount="10.00")
    # then P-1's 30.00, then 30.00 of the credit applied: AL-2 (the latest) whole, 15.00 of AL-1
    assert (amended.change, amended.credit, amended.credit_applied) == (usd("-90.00"), usd("60.00"), usd("30.00"))
    s = case.state
    assert (s.payments, s.credit_applied, s.customer_credit) == (usd("0"), usd("10.00"), usd("60.00"))
    assert {r.ref: r.amount for r in s.principal_reductions} == {"P-1": 0, "AL-1": 10, "AL-2": 0}
    paid = s.settled_by_payment["P-1"]
    assert (paid.applied, paid.excess) == (usd("0"), usd("30.00"))  # as an amendment within the payments
    # the case is settled (resolved): it takes no reversal, and no credit applied is taken back from it
    assert s.status == CaseStatus.resolved
    with pytest.raises(DomainError, match="closed"):
        case.when(cmd.ReversePayment, payment_id="P-1", reason="chargeback")
    # a further amendment, to 5.00, would give back 5.00 of the 10.00 still applied, no more
    assert amendment(s, usd("5.00")) == (usd("-5.00"), usd("5.00"))
    assert amendment(s, usd("0.01")) == (usd("-9.99"), usd("9.99"))


def test_credit_applied_once_given_back_is_not_given_back_again():
    case = Case().open(invoice(amount="100.00"))
    apply_credit(case, "70.00", "AL-1")
    sync(case, amount="100.00", notes=(("CN-1", "20.00"),))  # 10.00 open
    amended, _ = sync(case, amount="20.00", notes=(("CN-1", "20.00"),))
    # 80.00 off, 70.00 beyond the open balance, but of what was paid only the 70.00 applied: the
    # credit note is no money paid
    assert (amended.change, amended.credit, amended.credit_applied) == (usd("-80.00"), usd("70.00"), usd("70.00"))
    assert case.state.credit_applied == usd("0") and case.state.customer_credit == usd("70.00")
    assert amendment(case.state, usd("10.00")) == (usd("0"), None)


def test_runs_recorded_before_the_credit_applied_counted_leave_it_as_it_was():
    # given a policy as decided before the rule; 70.00 of credit applied to an invoice of 100.00
    case = Case(default_policy().before_amended_below_credit_applied()).open(invoice(amount="100.00"))
    apply_credit(case, "70.00", "AL-1")
    # when the ERP amends it to 20.00
    amended, _ = sync(case, amount="20.00")
    # then the reduction stops at the open balance and nothing is credit, as then
    assert (amended.change, amended.credit, amended.credit_applied) == (usd("-30.00"), None, None)
    s = case.state
    assert (s.customer_credit, s.credit_applied, s.balance) == (usd("0"), usd("70.00"), usd("0"))


def test_events_recorded_before_the_rule_fold_as_before():
    # an InvoiceAmended without credit_applied (every event recorded before the rule): its credit
    # beyond the payments comes off the money paid before the case, never off the credit applied
    case = Case(default_policy().before_amended_below_credit_applied()).open(invoice(amount="100.00", paid="40.00"))
    apply_credit(case, "50.00", "AL-1")
    amended, _ = sync(case, amount="20.00")  # 80.00 off, 70.00 beyond the open 10.00
    assert (amended.change, amended.credit, amended.credit_applied) == (usd("-50.00"), usd("40.00"), None)
    s = case.state
    assert (s.paid_before_open, s.credit_applied, s.customer_credit) == (usd("0"), usd("50.00"), usd("40.00"))


# -- money the ERP booked as paid outside the engine on the case (PaidOutsideEngine) counts as paid
# too, after the customer credit applied and before money paid before the case opened; what the ERP
# booked (erp_booked_total, what its next export's paid is compared with) stays as it was


def test_amended_below_what_was_paid_outside_the_engine_leaves_the_part_paid_beyond_as_credit():
    # given an invoice of 100.00 of which the ERP's export says 60.00 paid (40.00 open)
    case = Case().open(invoice(amount="100.00"))
    [booked] = sync(case, amount="100.00", paid="60.00")
    assert (booked.amount, booked.applied, case.state.balance) == (usd("60.00"), usd("60.00"), usd("40.00"))
    # when its next export amends it to 20.00 (its paid empty: an export's paid is at most the amount)
    events = sync(case, amount="20.00")
    # then the whole amendment (80.00) is recorded, the balance goes to zero, and the 40.00 paid
    # outside the engine beyond the new amount is the customer's credit
    assert types(events) == ["InvoiceAmended", "CaseClosed"]
    amended, closed = events
    assert (amended.change, amended.credit, amended.paid_outside, amended.credit_applied) == (
        usd("-80.00"), usd("40.00"), usd("40.00"), None)
    assert amended.balance_change == usd("-40.00")
    s = case.state
    assert s.balance == usd("0") and s.status == CaseStatus.resolved and s.customer_credit == usd("40.00")
    # of the 60.00 paid outside, 20.00 still settles the invoice of 20.00 (and lowers its principal)
    assert (s.paid_outside_settling, s.payments, s.erp_adjustments) == (usd("20.00"), usd("0"), usd("80.00"))
    assert [(r.ref, r.amount) for r in s.principal_reductions] == [(PAID_OUTSIDE_REF, Decimal("20.00"))]
    assert s.original_amount == s.paid_outside_settling_total + s.erp_adjustments_total  # nothing left nowhere
    # what the ERP booked stays 60.00: its next export's paid is compared with it
    assert (s.paid_outside, s.erp_booked_total) == (usd("60.00"),) * 2
    # the CaseClosed records what settled the invoice: 20.00 paid outside and 80.00 amended off are its 100.00
    assert (closed.paid_outside, closed.erp_adjustments) == (usd("20.00"), usd("80.00"))
    assert closed.paid_outside + closed.erp_adjustments == s.original_amount


def test_the_same_erp_paid_figure_after_the_amendment_books_nothing_new():
    # given 60.00 paid outside the engine of 100.00, amended to 20.00 by a command that says 60.00
    # paid again (the amendment comes first: the same figure must not book the 40.00 again)
    case = Case().open(invoice(amount="100.00"))
    sync(case, amount="100.00", paid="60.00")
    events = sync(case, amount="20.00", paid="60.00")
    assert types(events) == ["InvoiceAmended", "CaseClosed"]
    assert (events[0].credit, events[0].paid_outside) == (usd("40.00"), usd("40.00"))
    # when the next export says 60.00 paid again, then nothing is new (the import plans with this)
    same = cmd.SyncInvoice(command_id=uuid4(), actor=ERP, amount=usd("20.00"), due_date=case.state.due_date,
                           customer=CUSTOMER, paid=usd("60.00"), source="erp.csv line 2")
    assert erp_differences(case.state, same) == []
    # and one of 70.00 differs from what the ERP booked by 10.00, no more
    more = same.model_copy(update={"paid": usd("70.00")})
    assert erp_differences(case.state, more) == ["paid outside"]
    assert more.paid - case.state.erp_booked_total == usd("10.00")


@pytest.mark.parametrize("amount, change, credit, outside, before", [
    # 70.00 off, 55.00 beyond the open balance: P-1's 20.00, the 15.00 applied, 20.00 of the 40.00 paid
    # outside; the 10.00 paid before the case stays as it was
    ("30.00", "-70.00", "55.00", "20.00", "10.00"),
    # 95.00 off, 80.00 beyond: all of it, then 5.00 of the 10.00 paid before the case
    ("5.00", "-95.00", "80.00", "40.00", "5.00"),
])
def test_an_amendment_takes_the_payments_then_the_credit_applied_then_paid_outside_then_money_paid_before(
        amount, change, credit, outside, before):
    # given an invoice of 100.00: 10.00 paid before the case (the ERP had booked it), 20.00 paid on it
    # (P-1), 15.00 of credit applied (AL-1), 40.00 more booked by the ERP as paid (50.00 in all): 15.00 open
    case = Case().open(invoice(amount="100.00", paid="10.00").model_copy(update={"erp_paid": usd("10.00")}))
    case.pay("20.00", payment_id="P-1")
    apply_credit(case, "15.00", "AL-1")
    [booked] = sync(case, amount="100.00", paid="50.00")
    assert booked.amount == usd("40.00") and case.state.balance == usd("15.00")
    # when the ERP amends it
    amended, _ = sync(case, amount=amount, paid="50.00")
    # then what was paid comes off in that order
    assert (amended.change, amended.credit, amended.credit_applied, amended.paid_outside) == (
        usd(change), usd(credit), usd("15.00"), usd(outside))
    s = case.state
    left = usd("40.00") - usd(outside)
    assert (s.payments, s.credit_applied, s.paid_outside_settling, s.paid_before_open) == (
        usd("0"), usd("0"), left, usd(before))
    assert {r.ref: r.amount for r in s.principal_reductions} == {"P-1": 0, "AL-1": 0, PAID_OUTSIDE_REF: left.amount}
    assert s.customer_credit == usd(credit) and s.erp_booked_total == usd("50.00")


def test_money_paid_outside_once_given_back_is_not_given_back_again():
    # given 60.00 paid outside the engine of 100.00 and a credit note of 30.00 (10.00 open), amended
    # to 50.00 (50.00 off, 40.00 beyond the open balance): 40.00 of the 60.00 is credit
    case = Case().open(invoice(amount="100.00"))
    sync(case, amount="100.00", paid="60.00", notes=(("CN-1", "30.00"),))
    amended, _ = sync(case, amount="50.00", paid="60.00", notes=(("CN-1", "30.00"),))
    assert (amended.change, amended.credit, amended.paid_outside) == (usd("-50.00"), usd("40.00"), usd("40.00"))
    assert case.state.paid_outside_settling == usd("20.00") and case.state.customer_credit == usd("40.00")
    # when a later amendment is weighed on that state (as the ERP import plans it on the stored case),
    # then only the 20.00 still settling the invoice can be given back, once
    assert amendment(case.state, usd("10.00")) == (usd("-20.00"), usd("20.00"))
    assert paid_outside_taken_back(case.state, usd("20.00"), None) == usd("20.00")
    # and on a case where all of it was given back, nothing
    all_back = Case().open(invoice(amount="100.00"))
    sync(all_back, amount="100.00", paid="60.00", notes=(("CN-1", "30.00"),))
    amended, _ = sync(all_back, amount="10.00", paid="60.00", notes=(("CN-1", "30.00"),))
    assert (amended.change, amended.credit, amended.paid_outside) == (usd("-70.00"), usd("60.00"), usd("60.00"))
    assert amendment(all_back.state, usd("5.00")) == (usd("0"), None)


def test_runs_recorded_before_paid_outside_counted_leave_it_as_it_was():
    # given a policy as decided before the rule; 60.00 paid outside the engine of 100.00
    case = Case(default_policy().before_amended_below_paid_outside()).open(invoice(amount="100.00"))
    sync(case, amount="100.00", paid="60.00")
    # when the ERP amends it to 20.00
    amended, _ = sync(case, amount="20.00", paid="60.00")
    # then the reduction stops at the open balance and nothing is credit, as then
    assert (amended.change, amended.credit, amended.paid_outside) == (usd("-40.00"), None, None)
    s = case.state
    assert (s.customer_credit, s.paid_outside_settling, s.balance) == (usd("0"), usd("60.00"), usd("0"))


def test_events_recorded_before_paid_outside_counted_fold_as_before():
    # an InvoiceAmended without paid_outside (every event recorded before the rule): its credit beyond
    # the payments and the credit applied comes off the money paid before the case, never off the
    # money paid outside
    case = Case(default_policy().before_amended_below_paid_outside()).open(invoice(amount="100.00", paid="40.00"))
    sync(case, amount="100.00", paid="30.00")  # the opening did not say what the ERP booked: 30.00 on the case
    amended, _ = sync(case, amount="20.00", paid="30.00")  # 80.00 off, 50.00 beyond the open 30.00
    assert (amended.change, amended.credit, amended.paid_outside) == (usd("-70.00"), usd("40.00"), None)
    s = case.state
    assert (s.paid_before_open, s.paid_outside_settling, s.customer_credit) == (usd("0"), usd("30.00"), usd("40.00"))
    assert [(r.ref, r.amount) for r in s.principal_reductions] == [(PAID_OUTSIDE_REF, Decimal("30.00"))]


def test_a_state_carried_over_from_before_the_figure_counts_what_the_erp_booked_on_the_open_case():
    # a state carried over (continue-as-new, a stored case) from before paid_outside_settling: on an
    # open case, all the ERP booked took off the balance, so it all still settles the invoice
    case = Case().open(invoice(amount="100.00"))
    sync(case, amount="100.00", paid="60.00")
    carried = case.state.model_copy(update={"paid_outside_settling": None})
    assert carried.paid_outside_settling_total == usd("60.00")
    assert amendment(carried, usd("20.00")) == (usd("-80.00"), usd("40.00"))


def test_credit_note_reduces_once_by_its_document_id():
    case = Case().open()
    events = sync(case, notes=(("CN-7", "250.00"),))
    assert types(events) == ["CreditNoteApplied"] and events[0].document_id == "CN-7"
    assert case.state.balance == usd("750.00")
    assert sync(case, notes=(("CN-7", "250.00"),)) == []
    events = sync(case, notes=(("CN-7", "250.00"), ("CN-8", "750.00")))
    assert types(events) == ["CreditNoteApplied", "CaseClosed"] and case.state.status == CaseStatus.resolved


def test_paid_outside_the_engine_counts_the_new_part_only_and_closes_as_paid():
    case = Case().open()
    [event] = sync(case, paid="400.00")
    assert types([event]) == ["PaidOutsideEngine"] and case.state.balance == usd("600.00")
    assert sync(case, paid="400.00") == []
    events = sync(case, paid="1000.00")
    assert types(events) == ["PaidOutsideEngine", "CaseClosed"] and events[0].amount == usd("600.00")
    assert case.state.status == CaseStatus.paid and case.state.payments == usd("0")


def test_what_the_erp_booked_before_the_case_opened_is_not_booked_again():
    # given an invoice of 1000.00 of which the ERP booked 400.00 as paid before the case opened
    facts = invoice(paid="400.00").model_copy(update={"erp_paid": usd("400.00")})
    case = Case().open(facts)
    assert case.state.balance == usd("600.00") and case.state.erp_booked_total == usd("400.00")
    # when its next export says the same 400.00, then nothing is recorded
    assert sync(case, paid="400.00") == []
    # when one says 550.00, then the 150.00 that is new is booked, and the ERP's total is 550.00
    [event] = sync(case, paid="550.00")
    assert (event.amount, event.applied, event.total) == (usd("150.00"), usd("150.00"), usd("550.00"))
    s = case.state
    assert (s.balance, s.paid_outside, s.paid_before_open) == (usd("450.00"), usd("150.00"), usd("400.00"))
    # and one below what it had booked before the case opened is refused
    with pytest.raises(DomainError, match="already booked") as error:
        sync(case, paid="300.00")
    assert error.value.field == "paid"


def test_a_case_opened_before_the_erp_paid_was_known_books_as_it_did():
    # given a case whose opening did not say what the ERP had booked (recorded before that rule)
    case = Case().open(invoice(paid="400.00"))
    assert case.state.erp_paid_before_open is None
    # when an export says 400.00, then it is booked on the case, as it was then
    [event] = sync(case, paid="400.00")
    assert (event.amount, event.total) == (usd("400.00"), usd("400.00")) and case.state.paid_outside == usd("400.00")


def test_paid_outside_cannot_go_down():
    case = Case().open()
    sync(case, paid="400.00")
    with pytest.raises(DomainError, match="already booked") as error:
        sync(case, paid="300.00")
    assert error.value.field == "paid"


def test_cancelled_in_the_erp_closes_as_cancelled_without_approval():
    case = Case().open(invoice(amount="50000.00"))  # far beyond one person's authority
    events = sync(case, amount="50000.00", cancelled=True)
    assert types(events) == ["CaseCancelled", "CaseClosed"]
    assert "cancelled in the ERP (ERP export erp.csv line 2)" in events[0].reason
    assert case.state.status == CaseStatus.cancelled and not case.state.pending_approvals


def test_due_date_moved_replans_the_ladder_by_the_same_days():
    case = Case().open()
    before = case.state.clock.next_at
    [event] = sync(case, due=date(2026, 2, 24))
    assert types([event]) == ["DueDateMoved"] and event.shift == timedelta(days=10)
    assert case.state.due_date == date(2026, 2, 24)
    assert case.state.clock.next_at >= before + timedelta(days=10)
    assert case.state.clock.next_at < before + timedelta(days=14)  # to the next send moment, not beyond


def test_due_date_moved_earlier_never_plans_in_the_past():
    case = Case().open()
    [event] = sync(case, due=date(2026, 1, 20))
    assert event.next_reminder_at >= case.now


def test_new_email_clears_the_contact_problem_and_is_the_next_recipient():
    case = Case().open()
    case.at(case.state.clock.next_at).remind(delivered=False, permanent=True, error="550 no such user")
    assert case.state.contact_problem
    moved = CUSTOMER.model_copy(update={"email": "billing@acme.test", "name": "Acme AG"})
    [event] = sync(case, customer=moved)
    assert types([event]) == ["CustomerDetailsChanged"] and event.changed == ("name", "email")
    assert not case.state.contact_problem and case.state.customer.email == "billing@acme.test"


def test_another_customer_or_currency_is_refused_naming_the_field():
    case = Case().open()
    other = CUSTOMER.model_copy(update={"customer_id": "C-2"})
    with pytest.raises(DomainError) as error:
        sync(case, customer=other)
    assert error.value.field == "customer_id"
    with pytest.raises(DomainError) as error:
        case.when(cmd.SyncInvoice, actor=ERP, amount=Money.of("1000.00", "EUR"), due_date=date(2026, 2, 14),
                  customer=CUSTOMER, source="x")
    assert error.value.field == "amount"
    assert types(case.events) == ["CaseOpened"]


def test_several_changes_in_one_row_each_become_an_event():
    case = Case().open()
    events = sync(case, amount="900.00", due=date(2026, 3, 1), notes=(("CN-1", "100.00"),), paid="50.00")
    assert types(events) == ["InvoiceAmended", "CreditNoteApplied", "PaidOutsideEngine", "DueDateMoved"]
    assert case.state.balance == usd("750.00")
    s = case.state
    assert s.original_amount - s.erp_adjustments_total - s.paid_outside_total == s.balance
