"""Customer credit (advance receipts and unapplied cash): balances, their age, and where
credit goes when it is applied. Pure.

A credit's age is counted first in, first out: applying credit uses up the oldest
receipt first, so the age of a balance is the age of the oldest receipt not yet
used up (``as_of`` minus the day it was received).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
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


@dataclass(frozen=True)
class CreditBalance:
    customer_id: str
    currency: str
    balance: Decimal
    oldest: date | None  # receipt date of the oldest credit not used up
    age_days: int | None
    receipts: int  # receipts that make up the balance


def credit_balances(movements: list[CreditMovement], as_of: date) -> list[CreditBalance]:
    """Balance and age per customer and currency (only movements on or before ``as_of``),
    customers with no credit left out."""
    by_key: dict[tuple[str, str], list[CreditMovement]] = {}
    for m in movements:
        if m.on <= as_of:
            by_key.setdefault((m.customer_id, m.currency), []).append(m)
    out: list[CreditBalance] = []
    for (customer, currency), items in sorted(by_key.items()):
        # on the same day, receipts before uses: a same-day overpayment can be applied that day
        items.sort(key=lambda m: (m.on, m.amount < 0))
        open_receipts: deque[list] = deque()  # [day, remaining]
        deficit = ZERO
        for m in items:
            if m.amount > 0:
                amount = m.amount
                if deficit > 0:  # an earlier use drew ahead of receipts (a reversal): settle it first
                    settled = min(deficit, amount)
                    deficit -= settled
                    amount -= settled
                if amount > 0:
                    open_receipts.append([m.on, amount])
            else:
                need = -m.amount
                while need > 0 and open_receipts:
                    first = open_receipts[0]
                    used = min(first[1], need)
                    first[1] -= used
                    need -= used
                    if first[1] == 0:
                        open_receipts.popleft()
                deficit += need
        balance = sum((r[1] for r in open_receipts), ZERO) - deficit
        if balance == 0:
            continue
        oldest = open_receipts[0][0] if open_receipts else None
        out.append(CreditBalance(customer, currency, balance, oldest,
                                 (as_of - oldest).days if oldest else None, len(open_receipts)))
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
