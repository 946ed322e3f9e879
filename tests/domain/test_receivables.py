"""What an invoice owed at the end of a day (domain/receivables.py): the rule the aging report
and the statement of account share. Given settlements, when asked for a day, then the figures
of that day, by the value date of payments and the recording day of charges."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal
from uuid import uuid4

from domain import events as ev
from domain.money import Money
from domain.receivables import Settlement, WriteOff, open_amounts, principal_first, settlements_of, standings_on, write_offs

D = Decimal


@dataclass(frozen=True)
class Inv:
    invoice_id: str
    amount: Decimal
    issue_date: date


INVOICES = [Inv("FM-8", D("3000.00"), date(2026, 10, 1)), Inv("FM-1", D("1000.00"), date(2026, 10, 1)),
            Inv("FM-12", D("90.00"), date(2026, 12, 1))]
FOUND = [
    Settlement("FM-8", "EUR", D("1000.00"), date(2026, 11, 20), "payment"),  # recorded 12-07, received 11-20
    Settlement("FM-8", "EUR", D("-40.00"), date(2026, 12, 7), "fee", "late_fee"),
    Settlement("FM-8", "EUR", D("10.00"), date(2026, 12, 7), "payment"),
    Settlement("FM-8", "EUR", D("5.00"), date(2026, 12, 7), "excess"),
    Settlement("FM-1", "EUR", D("1000.00"), date(2026, 12, 7), "payment"),
]


def test_an_invoice_stands_as_it_did_at_the_end_of_the_day():
    then = standings_on(INVOICES, FOUND, date(2026, 11, 30))
    assert set(then) == {"FM-8", "FM-1"}  # FM-12 not issued yet
    assert (then["FM-8"].open, then["FM-8"].settled, then["FM-8"].late_fees) == (D("2000.00"), D("1000.00"), 0)
    assert then["FM-1"].open == D("1000.00")  # paid only on 12-07
    now = standings_on(INVOICES, FOUND, date(2026, 12, 7))
    assert (now["FM-8"].open, now["FM-8"].settled, now["FM-8"].late_fees) == (D("2030.00"), D("1010.00"), D("40.00"))
    assert now["FM-1"].open == 0 and now["FM-12"].open == D("90.00")
    assert open_amounts(INVOICES, FOUND, date(2026, 11, 30)) == {"FM-8": D("2000.00"), "FM-1": D("1000.00")}


def test_interest_compensation_and_a_waiver_keep_their_parts_and_their_sum():
    at = datetime(2026, 12, 7, 9, tzinfo=timezone.utc)
    eur = lambda x: Money.of(x, "EUR")  # noqa: E731
    case = uuid4()
    charged = ev.InterestCharged(event_id=uuid4(), case_id=case, version=5, occurred_at=at, actor="system", level=1, regime="eu", accrued_to=date(2026, 12, 7),
                                 accrued=eur("5.56"), interest=eur("5.56"), compensation=eur("40.00"))
    waived = ev.InterestWaived(event_id=uuid4(), case_id=case, version=6, occurred_at=at, actor="demo-collector", amount=eur("40.00"), reason="goodwill")
    found = settlements_of(charged, "INT-1") + settlements_of(waived, "INT-1")
    assert sum(s.amount for s in found) == -charged.fee.amount + D("40.00")  # what the reports always counted
    s = standings_on([Inv("INT-1", D("1000.00"), date(2026, 10, 1))], found, date(2026, 12, 7))["INT-1"]
    assert (s.interest, s.compensation, s.waived, s.settled, s.open) == (
        D("5.56"), D("40.00"), D("40.00"), D("40.00"), D("1005.56"))
    assert standings_on([Inv("INT-1", D("1000.00"), date(2026, 10, 1))], found, date(2026, 12, 6))["INT-1"].open == 1000


def test_the_balance_due_is_the_open_amount_less_the_credit_held_that_day():
    """The credit is `payments unapplied`'s balance that day (domain/credit.py): a receipt counts
    from its value date, a use from its day; credit beyond what is open stays the customer's, and
    a currency with credit only is listed after those with open items."""
    from domain.credit import CreditMovement, credit_balances
    from domain.receivables import balances_due

    moves = [CreditMovement("C-1", "EUR", D("50.00"), date(2026, 12, 2), "overpayment P-1 on I-1"),
             CreditMovement("C-1", "EUR", D("-20.00"), date(2026, 12, 5), "applied to I-3", allocation_id="AL-1"),
             CreditMovement("C-1", "USD", D("80.00"), date(2026, 12, 3), "prepayment PP-1", advance_id="PP-1"),
             CreditMovement("C-2", "EUR", D("999.00"), date(2026, 12, 1), "someone else's")]
    opened = {"EUR": D("300.00")}
    before = balances_due(opened, moves, "C-1", date(2026, 12, 1))
    assert [(b.currency, b.open, b.credit, b.due, b.credit_left, b.held) for b in before] == [
        ("EUR", D("300.00"), 0, D("300.00"), 0, None)]
    then = {b.currency: b for b in balances_due(opened, moves, "C-1", date(2026, 12, 4))}
    assert list(then) == ["EUR", "USD"]
    assert (then["EUR"].credit, then["EUR"].due, then["EUR"].credit_left) == (D("50.00"), D("250.00"), 0)
    assert (then["USD"].open, then["USD"].credit, then["USD"].due, then["USD"].credit_left) == (0, D("80.00"), 0, D("80.00"))
    assert then["USD"].held.oldest == date(2026, 12, 3) and then["USD"].held.age_days == 1
    later = balances_due({"EUR": D("10.00")}, moves, "C-1", date(2026, 12, 5))
    assert (later[0].credit, later[0].due, later[0].credit_left) == (D("30.00"), 0, D("20.00"))
    # the same figure as `payments unapplied` that day
    assert later[0].held == next(b for b in credit_balances(moves, date(2026, 12, 5))
                                 if (b.customer_id, b.currency) == ("C-1", "EUR"))


def test_a_settlement_takes_the_principal_first_and_the_charges_with_what_goes_beyond():
    """One rule for payments and write-offs alike (docs/KPIS.md, docs/INTEREST.md): of an invoice
    of 1,000.00 with 40.00 of fees, 600.00 paid is principal; the 440.00 written off after it is
    400.00 of principal and 40.00 of fees; a reversal gives back the charges first."""
    assert principal_first(D("1000"), D(0), D("600")) == D("600")
    assert principal_first(D("1000"), D("600"), D("440")) == D("400")
    assert principal_first(D("1000"), D("1000"), D("40")) == 0
    assert principal_first(D("1000"), D("1040"), D("-40")) == 0  # takes back the fees settled
    assert principal_first(D("1000"), D("1040"), D("-1040")) == D("-1000")
    found = [Settlement("W", "EUR", D("-40"), date(2026, 11, 10), "fee", "late_fee"),
             Settlement("W", "EUR", D("600"), date(2026, 11, 20), "payment"),
             Settlement("W", "EUR", D("25"), date(2026, 11, 20), "excess"),  # the customer's credit: settles nothing
             Settlement("W", "EUR", D("440"), date(2026, 12, 1), "write_off")]
    invoices = [Inv("W", D("1000.00"), date(2026, 10, 1))]
    assert write_offs(invoices, found) == [WriteOff(found[3], D("400"), D("40"))]
    # the order is the days', not the list's: the payment received before the write-off settled first
    assert write_offs(invoices, [found[3], found[0], found[1]]) == [WriteOff(found[3], D("400"), D("40"))]
    # credit notes, customer credit, amendments settle the principal first too
    credited = [Settlement("W", "EUR", D("-40"), date(2026, 11, 10), "fee", "late_fee"),
                Settlement("W", "EUR", D("200"), date(2026, 11, 12), "credit"),
                Settlement("W", "EUR", D("840"), date(2026, 12, 1), "write_off")]
    assert write_offs(invoices, credited) == [WriteOff(credited[2], D("800"), D("40"))]
