"""The advances register: every advance receipt with its source, age and status. Pure.

An advance (a prepayment with no invoice, ``PrepaymentReceived`` on the customer's
stream) is a contract liability, not a negative receivable: the engine owes the customer
goods or the money until the advance is applied to an invoice
(``CustomerCreditAllocated``, naming the advance or drawing on the oldest first) or paid
back (``AdvanceRefunded``). The register is read from the customer's folded state
(``domain.customer.Advance``); docs/ADVANCES.md gives the accounting meaning of each event.

Status: ``held`` (nothing applied yet; a partial refund leaves it held), ``partly applied``,
``applied`` (nothing left, some of it applied), ``refunded`` (nothing left, none applied).
An advance lingers when it still holds money longer than the policy's
``[advances] linger_after`` after it was received.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Iterable

from domain.commands import InvoiceFacts
from domain.customer import AdvanceRequest, CustomerEvent, CustomerState, evolve_customer
from domain.events import AdvanceFacts, Customer
from domain.money import Money
from domain.policy import RiskGrade

OPEN_STATUSES = ("held", "partly applied")


@dataclass(frozen=True)
class AdvanceRow:
    advance_id: str
    customer_id: str
    source: str
    reference: str
    currency: str
    amount: Decimal
    applied: Decimal
    refunded: Decimal
    pending_refund: Decimal
    remaining: Decimal
    received_on: date
    age_days: int
    status: str
    lingering: bool


def register(states: Iterable[CustomerState], as_of: date, linger_after: timedelta) -> list[AdvanceRow]:
    """One row per advance received on or before ``as_of``, oldest first."""
    rows: list[AdvanceRow] = []
    for state in states:
        for a in state.advances.values():
            if a.received_on > as_of:
                continue
            age = (as_of - a.received_on).days
            rows.append(AdvanceRow(
                advance_id=a.advance_id, customer_id=state.customer_id, source=a.source, reference=a.reference,
                currency=a.amount.currency, amount=a.amount.amount, applied=a.applied, refunded=a.refunded,
                pending_refund=a.pending_refund, remaining=a.remaining.amount, received_on=a.received_on,
                age_days=age, status=a.status,
                lingering=a.status in OPEN_STATUSES and timedelta(days=age) > linger_after))
    rows.sort(key=lambda r: (r.received_on, r.customer_id, r.advance_id))
    return rows


def held(rows: Iterable[AdvanceRow], currency: str) -> Decimal:
    """What the advances in ``currency`` still hold: the liability to customers."""
    return sum((r.remaining for r in rows if r.currency == currency), Decimal(0))


def held_changes(events: Iterable[CustomerEvent], currency: str) -> list[tuple[date, Decimal]]:
    """How much the advances of one customer's stream in ``currency`` hold, as dated changes
    (the day each event was recorded): their sum up to a day is what was held that day."""
    changes: list[tuple[date, Decimal]] = []
    state: CustomerState | None = None
    before = Decimal(0)
    for event in events:
        state = evolve_customer(state, event)
        now = sum((a.remaining.amount for a in state.advances.values() if a.amount.currency == currency), Decimal(0))
        if now != before:
            changes.append((event.occurred_at.date(), now - before))
            before = now
    return changes


@dataclass(frozen=True)
class RequestRow:
    request_id: str
    customer_id: str
    reference: str
    order_id: str | None
    currency: str
    amount: Decimal
    paid: Decimal
    outstanding: Decimal
    due_date: date
    days_overdue: int
    status: str  # open | overdue | paid


def requests(states: Iterable[CustomerState], as_of: date) -> list[RequestRow]:
    """Advance requests made on or before ``as_of``, due first; a paid one is an advance on the register."""
    rows = [RequestRow(request_id=r.request_id, customer_id=s.customer_id, reference=r.reference, order_id=r.order_id,
                       currency=r.amount.currency, amount=r.amount.amount, paid=r.paid,
                       outstanding=r.outstanding.amount, due_date=r.due_date,
                       days_overdue=max((as_of - r.due_date).days, 0) if r.status(as_of) == "overdue" else 0,
                       status=r.status(as_of))
            for s in states for r in s.requests.values() if r.requested_at.date() <= as_of]
    rows.sort(key=lambda r: (r.due_date, r.customer_id, r.request_id))
    return rows


# -- cases of kind advance (issue 16) ---------------------------------------------------------------


def overdue_requests(state: CustomerState, cutoff: date) -> list[AdvanceRequest]:
    """The customer's advance requests due on or before ``cutoff`` (the sweep's day less the
    policy's grace) that still ask for money: each is dunned as a case of kind ``advance``."""
    return sorted((r for r in state.requests.values() if r.due_date <= cutoff and r.outstanding.is_positive),
                  key=lambda r: (r.due_date, r.request_id))


def case_facts(request: AdvanceRequest, customer: Customer, grade: RiskGrade) -> InvoiceFacts:
    """What a case of kind advance opens with: the request id stands for the invoice id (no
    invoice was issued), the day it was requested for the issue date, what was paid of it."""
    return InvoiceFacts(
        invoice_id=request.request_id, customer=customer, risk_grade=grade, amount=request.amount,
        paid=Money.of(request.paid, request.amount.currency), issue_date=request.requested_at.date(),
        due_date=request.due_date, advance=AdvanceFacts(reference=request.reference, order_id=request.order_id))
