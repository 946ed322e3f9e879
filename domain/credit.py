"""Customer credit (advance receipts and unapplied cash): balances, their age, and where
credit goes when it is applied. Pure.

A credit's age is that of the oldest receipt not used up (``as_of`` minus the day it was
received), the receipts used up as the advances register (``domain.advances``) uses them: an
application or a refund takes what it drew from the advances it names (an application without
one: the oldest advances first, ``domain.customer.draw_on_advances``), the rest from the
overpayment excess, oldest first; an allocation given back returns to the receipts it came from,
with their days.
"""

from __future__ import annotations

from bisect import insort
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

ZERO = Decimal(0)


@dataclass(frozen=True)
class CreditMovement:
    customer_id: str
    currency: str
    amount: Decimal  # positive: credit arises (overpayment excess, prepayment, allocation given back); negative: used
    on: date
    what: str
    advance_id: str | None = None  # a prepayment: the advance it is on the register
    drawn: tuple[tuple[str, Decimal], ...] = ()  # a use: what it took from which advances; the rest was excess
    allocation_id: str | None = None  # an allocation (negative), or the allocation given back (positive)


# The events that record an overpayment's excess (on a case, or on an invoice without a case) and
# those that take a payment back with its excess.
EXCESS_RECEIVED = ("PaymentReceived", "LedgerPaymentRecorded", "PaymentAssigned")
EXCESS_TAKEN_BACK = ("PaymentReversed", "LedgerPaymentReversed")


def overpayment_movement(event, customer_id: str, invoice_id: str) -> CreditMovement | None:
    """The credit an overpayment's excess gives its customer (received on the payment's value
    date), or takes back when the payment is reversed (on the day of the reversal); None when the
    event has no excess. The same rule with or without a case: ``PaymentReceived`` /
    ``PaymentReversed`` on a case, ``LedgerPaymentRecorded`` (or ``PaymentAssigned``) /
    ``LedgerPaymentReversed`` on an invoice without one. A reversal after the excess was applied
    leaves the customer owing it (the balance below zero, ``_Receipts.deficit``)."""
    excess = getattr(event, "excess", None)
    if excess is None or not excess.is_positive:
        return None
    name = type(event).__name__
    if name in EXCESS_RECEIVED:
        received = getattr(event, "received_on", None) or event.occurred_at.date()
        return CreditMovement(customer_id, excess.currency, excess.amount, received,
                              f"overpayment {event.payment_id} on {invoice_id}")
    if name in EXCESS_TAKEN_BACK:
        return CreditMovement(customer_id, excess.currency, -excess.amount, event.occurred_at.date(),
                              f"reversal of {event.payment_id} on {invoice_id}")
    return None


@dataclass(frozen=True)
class CreditBalance:
    customer_id: str
    currency: str
    balance: Decimal
    oldest: date | None  # receipt date of the oldest credit not used up
    age_days: int | None
    receipts: int  # receipts that make up the balance


@dataclass
class _Receipts:
    """What is left of one customer's receipts in one currency."""

    advances: dict[str, list] = field(default_factory=dict)  # advance id -> [day, remaining]
    excess: list[list] = field(default_factory=list)  # [day, remaining], oldest first
    deficit: Decimal = ZERO  # excess used ahead of receipts (a reversal after the excess was applied)
    taken: dict[str, tuple] = field(default_factory=dict)  # allocation id -> (drawn, [(receipt, used)], deficit)

    def receive(self, day: date, amount: Decimal) -> None:
        settled = min(self.deficit, amount)  # an earlier use drew ahead of receipts: settle it first
        self.deficit -= settled
        if amount > settled:
            insort(self.excess, [day, amount - settled], key=lambda r: r[0])

    def use(self, m: CreditMovement) -> None:
        need, drawn = -m.amount, []
        for advance_id, amount in m.drawn:
            if advance_id in self.advances:
                self.advances[advance_id][1] -= amount
                drawn.append((advance_id, amount))
                need -= amount
        parts = []
        while need > 0 and self.excess:
            first = self.excess[0]
            used = min(first[1], need)
            first[1] -= used
            need -= used
            parts.append((first, used))
            if first[1] == 0:
                self.excess.pop(0)
        self.deficit += need
        if m.allocation_id is not None:
            self.taken[m.allocation_id] = (drawn, parts, need)

    def give_back(self, m: CreditMovement) -> None:
        if m.allocation_id not in self.taken:
            self.receive(m.on, m.amount)
            return
        drawn, parts, deficit = self.taken.pop(m.allocation_id)
        for advance_id, amount in drawn:
            self.advances[advance_id][1] += amount
        for receipt, amount in parts:  # the same receipt again, at its place
            receipt[1] += amount
            if not any(r is receipt for r in self.excess):
                insort(self.excess, receipt, key=lambda r: r[0])
        undone = min(self.deficit, deficit)
        self.deficit -= undone
        if deficit > undone:  # a later receipt settled that part meanwhile: it is credit again today
            self.receive(m.on, deficit - undone)

    def left(self) -> list[list]:
        return [r for r in (*self.advances.values(), *self.excess) if r[1] > 0]


def credit_balances(movements: list[CreditMovement], as_of: date) -> list[CreditBalance]:
    """Balance and age per customer and currency (only movements on or before ``as_of``),
    customers with no credit left out."""
    by_key: dict[tuple[str, str], list[CreditMovement]] = {}
    for m in movements:
        if m.on <= as_of:
            by_key.setdefault((m.customer_id, m.currency), []).append(m)
    out: list[CreditBalance] = []
    for (customer, currency), items in sorted(by_key.items()):
        # on the same day, receipts before uses (a same-day overpayment can be applied that day),
        # uses and allocations given back in the order they happened
        items.sort(key=lambda m: (m.on, not (m.amount > 0 and m.allocation_id is None)))
        receipts = _Receipts()
        for m in items:
            if m.amount > 0 and m.allocation_id is not None:
                receipts.give_back(m)
            elif m.amount > 0 and m.advance_id is not None:
                receipts.advances[m.advance_id] = [m.on, m.amount]
            elif m.amount > 0:
                receipts.receive(m.on, m.amount)
            else:
                receipts.use(m)
        left = receipts.left()
        balance = sum((r[1] for r in left), ZERO) - receipts.deficit
        if balance == 0:
            continue
        oldest = min((r[0] for r in left), default=None)
        out.append(CreditBalance(customer, currency, balance, oldest,
                                 (as_of - oldest).days if oldest else None, len(left)))
    return out


@dataclass(frozen=True)
class OpenItem:
    invoice_id: str
    case_id: str
    due_date: date
    owed: Decimal


def plan_allocation(credit: Decimal, items: list[OpenItem]) -> list[tuple[OpenItem, Decimal]]:
    """Where ``credit`` goes: the open items oldest due first, each up to what it owes."""
    plan: list[tuple[OpenItem, Decimal]] = []
    left = credit
    for item in sorted(items, key=lambda i: (i.due_date, i.invoice_id)):
        if left <= 0:
            break
        amount = min(left, item.owed)
        if amount > 0:
            plan.append((item, amount))
            left -= amount
    return plan
