"""Matching a bank receipt to open invoices: which invoices it pays, how much each, or why none. Pure.

The application layer (``app/payments.py``) finds the invoices a receipt's reference names and the
open items of the payer it knows (by name, id or a payer IBAN seen before) and asks ``plan``:

1. the reference names invoices: one gets the whole receipt; several share it, each in the order
   named up to what it still owes, the last one taking what is left (short or over);
2. else the payer's one open item for exactly the amount, or the one item the amount falls short
   of by no more than the tolerance (bank charges: the decider writes that difference off);
3. else the payer's open items together, when the amount is exactly their sum (or short of it by
   no more than the tolerance): split across them, oldest due first;
4. else nothing is taken: the receipt waits, with its candidates ranked (nearest amount first)
   and the reason none was taken.

Amounts are in minor units of the receipt's currency; items of another currency never match.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class Item:
    """An invoice that might be paid: what it still owes (minor units) and whether it can take money."""

    invoice_id: str
    currency: str
    open_minor: int
    closed: bool = False
    due: date | None = None


@dataclass(frozen=True)
class Application:
    invoice_id: str
    amount_minor: int


@dataclass(frozen=True)
class Candidate:
    invoice_id: str
    currency: str
    open_minor: int
    why_not: str  # why this one was not taken


@dataclass(frozen=True)
class Plan:
    how: str | None  # reference | amount | sum | None: unmatched
    applications: tuple[Application, ...] = ()
    why_not: str | None = None
    candidates: tuple[Candidate, ...] = ()


def _usable(item: Item, currency: str) -> bool:
    return item.currency == currency and not item.closed and item.open_minor > 0


def split(amount_minor: int, items: list[Item]) -> tuple[Application, ...]:
    """The receipt shared in order: each item up to what it owes, the last takes the rest."""
    left, shares = amount_minor, []
    for index, item in enumerate(items):
        share = left if index == len(items) - 1 else min(left, item.open_minor)
        if share > 0:
            shares.append(Application(item.invoice_id, share))
        left -= share
    return tuple(shares)


def _why_not(item: Item, amount_minor: int, currency: str, tolerance_minor: int, unit: int) -> str:
    if item.currency != currency:
        return f"in {item.currency}, the receipt is in {currency}"
    if item.closed:
        return "its case is closed"
    if item.open_minor <= 0:
        return "already paid"
    diff = item.open_minor - amount_minor
    shown = f"{abs(diff) / unit:.{len(str(unit)) - 1}f} {currency}"
    if diff > 0:
        beyond = f" (beyond the tolerance of {tolerance_minor / unit:.{len(str(unit)) - 1}f} {currency})" \
            if tolerance_minor else ""
        return f"owes {shown} more than the receipt{beyond}"
    return f"owes {shown} less than the receipt"


def rank(amount_minor: int, currency: str, items: list[Item], tolerance_minor: int = 0, unit: int = 100,
         limit: int = 5) -> tuple[Candidate, ...]:
    """Items nearest the receipt first (same currency before others), each with why it was not taken."""
    ordered = sorted(items, key=lambda i: (i.currency != currency, not _usable(i, currency),
                                           abs(i.open_minor - amount_minor), i.invoice_id))
    return tuple(Candidate(i.invoice_id, i.currency, i.open_minor,
                           _why_not(i, amount_minor, currency, tolerance_minor, unit)) for i in ordered[:limit])


def plan(amount_minor: int, currency: str, named: list[Item], payer_items: list[Item] | None,
         tolerance_minor: int = 0, unit: int = 100, payer: str = "the payer") -> Plan:
    """Where a receipt goes. ``named``: invoices its reference names (in that order); ``payer_items``:
    the open items of the customer(s) the payer is known as (None: the payer is not known)."""
    if named:
        usable = [i for i in named if _usable(i, currency)]
        if len(named) == 1 or not usable:
            return Plan("reference", (Application(named[0].invoice_id, amount_minor),))  # checked by the caller
        return Plan("reference", split(amount_minor, usable))
    if payer_items is None:
        return Plan(None, why_not="no invoice id in the reference and the payer is not a known customer")
    usable = sorted((i for i in payer_items if _usable(i, currency)), key=lambda i: (i.due or date.min, i.invoice_id))
    exact = [i for i in usable if i.open_minor == amount_minor]
    if len(exact) == 1:
        return Plan("amount", (Application(exact[0].invoice_id, amount_minor),))
    near = [i for i in usable if 0 < i.open_minor - amount_minor <= tolerance_minor]
    if not exact and len(near) == 1:
        return Plan("amount", (Application(near[0].invoice_id, amount_minor),))
    total = sum(i.open_minor for i in usable)
    if not exact and len(usable) > 1 and 0 <= total - amount_minor <= tolerance_minor:
        return Plan("sum", split(amount_minor, usable))
    shown = f"{amount_minor / unit:.{len(str(unit)) - 1}f} {currency}"
    if exact:
        why = f"{len(exact)} open invoices of {payer} are for exactly {shown}"
    elif near:
        why = f"{len(near)} open invoices of {payer} are within the tolerance of {shown}"
    else:
        why = f"no open invoices of {payer} are for exactly {shown}, nor together"
    return Plan(None, why_not=why, candidates=rank(amount_minor, currency, payer_items, tolerance_minor, unit))
