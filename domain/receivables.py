"""What an invoice owed at the end of a day, from what settled it and when.

One rule, used by the aging and KPI reports (app/kpis.py) and by the statement of account
(app/account_statement.py), so that a statement as of a day and ``report aging --to`` that day
show the same open amounts: an invoice issued by the day owes its amount, plus the late fees,
interest and compensation charged by then, less what settled it by then (payments by the day
the money was received, their value date; everything else by the day it was recorded).
What the statement asks for (``balances_due``) is that, less the customer's credit held that day.

And one rule for which part of an invoice a settlement settles (``principal_first``): the
principal (the invoice amount) first, the charges (late fees, interest, compensation) with what
goes beyond it. That is how a payment is applied (docs/INTEREST.md: it lowers the principal that
bears interest), and so is a write-off: what a write-off takes off the principal is bad debt (the
write-off ratio, docs/KPIS.md), the rest is charges written off, reported apart.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Iterable, Mapping, Protocol

from domain import events as ev
from domain.credit import CreditBalance, CreditMovement, credit_balances

ZERO = Decimal(0)
# The parts of a charge (kind "fee"): what a statement shows in its own columns.
CHARGES = ("late_fee", "interest", "compensation")


@dataclass(frozen=True)
class Settlement:
    """Something that changed what an invoice still owes, on a day: a payment, credit
    note, write-off or cancellation (positive) or a late fee (negative)."""

    invoice_id: str
    currency: str
    amount: Decimal
    on: date
    kind: str  # payment | excess | credit | write_off | cancelled | fee | credit_applied | indemnity
    #            | erp_adjustment (an ERP amendment or credit note; negative: amended up) | paid_outside
    #            | discount (early payment) | factored (settled in a factor's hands, or its non-recourse loss)
    part: str = ""  # of a fee: late_fee | interest | compensation | waived
    payment_id: str | None = None  # a payment, its reversal, and the small-balance write-off left by that receipt


# Events that settle their invoice by one amount on the day they are recorded: its field, and the kind.
_SETTLES_BY = {
    ev.WriteOffApproved: ("amount", "write_off"), ev.CaseCancelled: ("amount", "cancelled"),
    ev.CustomerCreditApplied: ("amount", "credit_applied"), ev.IndemnityReceived: ("amount", "indemnity"),
    ev.CreditNoteApplied: ("applied", "erp_adjustment"), ev.PaidOutsideEngine: ("applied", "paid_outside"),
    ev.EarlyPaymentDiscountGranted: ("amount", "discount"), ev.FactorCollected: ("amount", "factored"),
}


def settlements_of(event: ev.Event, invoice_id: str) -> list[Settlement]:
    """The settlements one event of an invoice's case records (none for other events)."""
    day = event.occurred_at.date()
    e = event
    if type(e) in _SETTLES_BY:
        field, kind = _SETTLES_BY[type(e)]
        money = getattr(e, field)
        return [Settlement(invoice_id, money.currency, money.amount, day, kind)]
    if isinstance(e, ev.PaymentReceived):
        found = [Settlement(invoice_id, e.applied.currency, e.applied.amount, e.received_on, "payment",
                            payment_id=e.payment_id)]
        if e.excess.is_positive:
            found.append(Settlement(invoice_id, e.excess.currency, e.excess.amount, e.received_on, "excess"))
        return found
    if isinstance(e, ev.PaymentReversed):  # the payment did not settle after all
        found = [Settlement(invoice_id, e.applied.currency, -e.applied.amount, day, "payment", payment_id=e.payment_id)]
        if e.excess.is_positive:
            found.append(Settlement(invoice_id, e.excess.currency, -e.excess.amount, day, "excess"))
        return found
    if isinstance(e, ev.LateFeeCharged):
        return [Settlement(invoice_id, e.fee.currency, -e.fee.amount, day, "fee", "late_fee")]
    if isinstance(e, ev.InterestCharged):  # interest and compensation count as fees
        found = [Settlement(invoice_id, e.interest.currency, -e.interest.amount, day, "fee", "interest")]
        if e.compensation is not None:
            found.append(Settlement(invoice_id, e.compensation.currency, -e.compensation.amount, day, "fee",
                                    "compensation"))
        return found
    if isinstance(e, ev.InterestWaived):  # takes back part of a charge: settles like a negative fee
        return [Settlement(invoice_id, e.amount.currency, e.amount.amount, day, "fee", "waived")]
    if isinstance(e, ev.DisputeResolved):
        return [] if e.credit is None else [Settlement(invoice_id, e.credit.currency, e.credit.amount, day, "credit")]
    if isinstance(e, ev.SmallBalanceWrittenOff):  # left by a receipt within the tolerance
        return [Settlement(invoice_id, e.amount.currency, e.amount.amount, day, "write_off", payment_id=e.payment_id)]
    if isinstance(e, ev.SmallBalanceWriteOffReversed):  # owed again with its reversed receipt
        return [Settlement(invoice_id, e.amount.currency, -e.amount.amount, day, "write_off", payment_id=e.payment_id)]
    if isinstance(e, ev.InvoiceAmended):
        found = [Settlement(invoice_id, e.change.currency, -e.change.amount, day, "erp_adjustment")]
        if e.credit is not None:  # paid beyond the new amount: no longer settles it, the customer's credit
            found += [Settlement(invoice_id, e.credit.currency, -e.credit.amount, day, "payment"),
                      Settlement(invoice_id, e.credit.currency, e.credit.amount, day, "excess")]
        return found
    if isinstance(e, ev.FactorDefaulted) and e.derecognized is not None:
        return [Settlement(invoice_id, e.derecognized.currency, e.derecognized.amount, day, "factored")]
    return []


class Receivable(Protocol):
    invoice_id: str
    amount: Decimal
    issue_date: date


@dataclass(frozen=True)
class Standing:
    """An invoice at the end of a day. ``settled``: paid, credited, written off, waived...;
    ``open`` = amount + late fees + interest + compensation - settled (never below zero)."""

    invoice_id: str
    amount: Decimal
    late_fees: Decimal
    interest: Decimal
    compensation: Decimal
    waived: Decimal
    settled: Decimal
    open: Decimal


def standings_on(invoices: Iterable[Receivable], found: Iterable[Settlement], day: date) -> dict[str, Standing]:
    """Each invoice issued by ``day`` as it stood at the end of that day: the settlements
    dated on or before it count, the later ones do not (the excess of a payment settles
    nothing: it is the customer's credit)."""
    parts: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(lambda: ZERO))
    for s in found:
        if s.on <= day and s.kind != "excess":
            mine = parts[s.invoice_id]
            mine["total"] += s.amount  # what settled it, net of the charges (negative)
            if s.part in CHARGES:
                mine[s.part] -= s.amount
            elif s.kind == "fee":  # a waiver, or a charge not split into its parts
                mine["waived" if s.part == "waived" else "late_fee"] -= s.amount
    out: dict[str, Standing] = {}
    for i in invoices:
        if i.issue_date > day:
            continue
        p = parts.get(i.invoice_id, {})
        total = p.get("total", ZERO)
        late, interest, compensation = p.get("late_fee", ZERO), p.get("interest", ZERO), p.get("compensation", ZERO)
        waived = -p.get("waived", ZERO)
        charged = late + interest + compensation
        out[i.invoice_id] = Standing(i.invoice_id, i.amount, late, interest, compensation, waived,
                                     total + charged, max(i.amount - total, ZERO))
    return out


def open_amounts(invoices: Iterable[Receivable], found: Iterable[Settlement], day: date) -> dict[str, Decimal]:
    """What each invoice issued by ``day`` still owed at the end of that day (fees included)."""
    return {k: s.open for k, s in standings_on(invoices, found, day).items()}


@dataclass(frozen=True)
class BalanceDue:
    """What a statement asks for in one currency at the end of a day: the open items less the
    customer's credit held that day. ``credit`` is the balance ``payments unapplied`` shows that
    day (overpayment excess, what an amendment left paid beyond an invoice, advances held);
    ``due`` = open - credit, never below zero; ``credit_left``: what the credit exceeds, still the
    customer's. A negative credit (a receipt reversed after its excess was applied) adds to what is due."""

    currency: str
    open: Decimal
    credit: Decimal
    due: Decimal
    credit_left: Decimal
    held: CreditBalance | None  # the credit with its age (None: no credit that day)


def balances_due(open_by_currency: Mapping[str, Decimal], movements: Iterable[CreditMovement], customer_id: str,
                 day: date) -> list[BalanceDue]:
    """Per currency the customer has open items or credit in at the end of ``day``: the currencies
    of ``open_by_currency`` in its order, then those with credit only (alphabetically). The credit is
    ``domain.credit.credit_balances`` on that day, the rule of ``payments unapplied`` and the
    advances register (a receipt counts from its value date, a use from the day it was made)."""
    held = {b.currency: b for b in credit_balances([m for m in movements if m.customer_id == customer_id], day)}
    currencies = list(open_by_currency) + sorted(c for c in held if c not in open_by_currency)
    out: list[BalanceDue] = []
    for currency in currencies:
        open_ = open_by_currency.get(currency, ZERO)
        credit = held[currency].balance if currency in held else ZERO
        out.append(BalanceDue(currency, open_, credit, max(open_ - credit, ZERO), max(credit - open_, ZERO),
                              held.get(currency)))
    return out


@dataclass(frozen=True)
class WriteOff:
    """A write-off (or an undone small-balance write-off, negative) split by ``principal_first``."""

    settlement: Settlement
    principal: Decimal  # of the invoice amount: bad debt
    charges: Decimal  # of late fees, interest and compensation


def principal_first(amount: Decimal, settled_before: Decimal, settles: Decimal) -> Decimal:
    """The part of ``settles`` that settles principal, on an invoice of ``amount`` of which
    ``settled_before`` was settled already by what settles principal first (everything but
    charges and their waivers): it takes the principal still open, and only what goes beyond it
    settles charges. Negative (a reversal, an amendment up) it gives back in the same order:
    what it takes back comes off the charges settled first, then off the principal."""
    def settled(total: Decimal) -> Decimal:
        return min(max(total, ZERO), amount)

    return settled(settled_before + settles) - settled(settled_before)


def write_offs(invoices: Iterable[Receivable], found: Iterable[Settlement]) -> list[WriteOff]:
    """Every write-off (kind write_off) with the part of it that wrote off principal and the part
    that wrote off charges, by ``principal_first``: the settlements of each invoice are taken in
    the order of their days (as recorded within a day); a small-balance write-off undone with its
    reversed receipt gives back the very parts it wrote off; a write-off of an invoice not among
    ``invoices`` counts as principal."""
    amounts = {i.invoice_id: i.amount for i in invoices}
    settled: dict[str, Decimal] = defaultdict(lambda: ZERO)
    by_receipt: dict[tuple[str, str], WriteOff] = {}  # a receipt's small-balance write-off
    out: list[WriteOff] = []
    for s in sorted(found, key=lambda s: s.on):  # stable: within a day, as recorded
        if s.kind in ("fee", "excess"):
            continue
        amount = amounts.get(s.invoice_id)
        principal = s.amount if amount is None else principal_first(amount, settled[s.invoice_id], s.amount)
        settled[s.invoice_id] += s.amount
        if s.kind != "write_off":
            continue
        undone = by_receipt.pop((s.invoice_id, s.payment_id), None) if s.payment_id and s.amount < 0 else None
        if undone is not None and undone.settlement.amount == -s.amount:
            principal = -undone.principal
        written = WriteOff(s, principal, s.amount - principal)
        if s.payment_id and s.amount > 0:
            by_receipt[(s.invoice_id, s.payment_id)] = written
        out.append(written)
    return out
