"""Reads about customers: their stream, their history for the scorecard, their credit."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from uuid import UUID

from sqlalchemy import func, select

from domain.admin import admin_stream_id
from domain.credit import CreditMovement, OpenItem, credit_balances, overpayment_movement
from domain.customer import CustomerState, customer_stream_id, fold_customer
from domain.errors import DomainError, shown
from domain.money import Money
from domain.risk import CustomerHistory, InvoiceRecord
from store.db import Database
from store.event_store import EventStore
from store.schema import case_summary, credit_hold_outbox, customer_risk, customers, invoices, payments

CREDIT_EVENTS = ("PaymentReceived", "PaymentReversed", "PrepaymentReceived", "CustomerCreditAllocated",
                 "CustomerCreditAllocationReleased", "AdvanceRefunded", "InvoiceAmended")
# A payment on an invoice without a case, and its reversal: their ``excess`` is customer credit.
LEDGER_EXCESS_EVENTS = ("LedgerPaymentRecorded", "PaymentAssigned", "LedgerPaymentReversed")


def _amount(minor: int, currency: str) -> Decimal:
    return Money.from_minor(minor, currency).amount


@dataclass(frozen=True)
class CustomerRow:
    customer_id: str
    name: str
    email: str
    country: str
    imported_grade: str


class CustomerReads:
    def __init__(self, db: Database, store: EventStore) -> None:
        self.db = db
        self.store = store

    # -- the customer ------------------------------------------------------------------------
    def customer(self, customer_id: str) -> CustomerRow:
        with self.db.read() as session:
            row = session.execute(select(customers).where(customers.c.customer_id == customer_id)).first()
        if row is None:
            raise DomainError(f"unknown customer {shown(customer_id)}", "customer_id")
        return CustomerRow(row.customer_id, row.name, row.email, row.country, row.risk_grade)

    def invoice_currencies(self, customer_id: str) -> list[str]:
        """The currencies the customer's invoices on the ledger are in."""
        query = select(invoices.c.currency).where(invoices.c.customer_id == customer_id).distinct()
        with self.db.read() as session:
            return sorted(session.execute(query).scalars())

    def customer_ids(self) -> list[str]:
        with self.db.read() as session:
            return list(session.execute(select(customers.c.customer_id).order_by(customers.c.customer_id)).scalars())

    def state(self, customer_id: str) -> CustomerState | None:
        return fold_customer(self.store.load(customer_stream_id(customer_id)))

    # -- the scorecard's input ------------------------------------------------------------------
    def history(self, customer_id: str, state: CustomerState | None) -> CustomerHistory:
        """Every invoice of the customer with when it was settled, and what its cases recorded."""
        with self.db.read() as session:
            rows = list(session.execute(
                select(invoices.c.invoice_id, invoices.c.currency, invoices.c.amount_minor, invoices.c.paid_minor,
                       invoices.c.due_date, case_summary.c.status, case_summary.c.closed_at,
                       case_summary.c.balance_minor, case_summary.c.state)
                .outerjoin(case_summary, case_summary.c.invoice_id == invoices.c.invoice_id)
                .where(invoices.c.customer_id == customer_id)))
            paid_on = dict(session.execute(
                select(payments.c.invoice_id, func.max(payments.c.received_on))
                .join(invoices, invoices.c.invoice_id == payments.c.invoice_id)
                .where(invoices.c.customer_id == customer_id, payments.c.status == "applied",
                       payments.c.case_id.is_(None))
                .group_by(payments.c.invoice_id)).all())
        records: list[InvoiceRecord] = []
        disputes = broken = defaulted = 0
        open_by_currency: Counter = Counter()
        invoices_by_currency: Counter = Counter()
        for r in rows:
            invoices_by_currency[r.currency] += 1
            if r.status is not None:  # the invoice has a case
                closed = r.closed_at is not None
                records.append(InvoiceRecord(r.invoice_id, r.due_date, r.closed_at.date() if closed else None,
                                             r.status if closed else None))
                counters = json.loads(r.state)
                disputes += counters.get("disputes_opened", 0)
                broken += counters.get("promises_broken", 0)
                defaulted += counters.get("plans_defaulted", 0)
                if not closed:
                    open_by_currency[r.currency] += r.balance_minor
            elif r.paid_minor >= r.amount_minor:
                records.append(InvoiceRecord(r.invoice_id, r.due_date, paid_on.get(r.invoice_id) or r.due_date, "paid"))
            else:
                records.append(InvoiceRecord(r.invoice_id, r.due_date, None, None))
                open_by_currency[r.currency] += r.amount_minor - r.paid_minor
        limit = state.credit_limit if state is not None else None
        if limit is not None:
            currency = limit.currency
        else:
            currency = invoices_by_currency.most_common(1)[0][0] if invoices_by_currency else "USD"
        return CustomerHistory(
            customer_id=customer_id, invoices=records, disputes=disputes, broken_promises=broken,
            defaulted_plans=defaulted, exposure=_amount(open_by_currency[currency], currency),
            credit_limit=limit.amount if limit is not None else None, currency=currency,
        )

    # -- customer credit ---------------------------------------------------------------------------
    def credit_movements(self, customer_id: str | None = None) -> list[CreditMovement]:
        """Every movement of customer credit, from case and customer streams and the payments on
        invoices without a case (the events: the source of truth)."""
        with self.db.read() as session:
            query = select(case_summary.c.case_id, case_summary.c.customer_id, case_summary.c.invoice_id)
            if customer_id is not None:
                query = query.where(case_summary.c.customer_id == customer_id)
            cases = {r.case_id: (r.customer_id, r.invoice_id) for r in session.execute(query)}
        allocated: dict[str, Money] = {}
        folded: dict[str, CustomerState | None] = {}  # what each allocation drew on, as the register says
        moves: list[CreditMovement] = []
        # one customer's: the events of its cases and of its own stream, not every stream's
        streams = None if customer_id is None else [*map(UUID, cases), customer_stream_id(customer_id)]
        for record in self.store.read_types(CREDIT_EVENTS, streams):
            e = record.event
            name = type(e).__name__
            if name in ("PaymentReceived", "PaymentReversed"):
                owner = cases.get(str(record.stream_id))
                move = overpayment_movement(e, *owner) if owner is not None else None
                if move is not None:
                    moves.append(move)
                continue
            if name == "InvoiceAmended":  # amended below what was paid: the part paid beyond it
                owner = cases.get(str(record.stream_id))
                if owner is not None and e.credit is not None and e.credit.is_positive:
                    moves.append(CreditMovement(owner[0], e.credit.currency, e.credit.amount, e.occurred_at.date(),
                                                f"paid beyond the amended amount of {owner[1]}"))
                continue
            if customer_id is not None and e.customer_id != customer_id:
                continue
            if name == "PrepaymentReceived":
                moves.append(CreditMovement(e.customer_id, e.amount.currency, e.amount.amount, e.received_on,
                                            f"prepayment {e.payment_id}", advance_id=e.payment_id))
            elif name == "CustomerCreditAllocated":
                allocated[e.allocation_id] = e.amount
                if e.customer_id not in folded:
                    folded[e.customer_id] = self.state(e.customer_id)
                state = folded[e.customer_id]
                allocation = state.allocations.get(e.allocation_id) if state is not None else None
                moves.append(CreditMovement(e.customer_id, e.amount.currency, -e.amount.amount, e.occurred_at.date(),
                                            f"applied to {e.invoice_id}", allocation_id=e.allocation_id,
                                            drawn=allocation.drawn if allocation is not None else ()))
            elif name == "AdvanceRefunded":
                moves.append(CreditMovement(e.customer_id, e.amount.currency, -e.amount.amount, e.occurred_at.date(),
                                            f"refund {e.refund_id} of {e.advance_id}",
                                            drawn=((e.advance_id, e.amount.amount),)))
            elif name == "CustomerCreditAllocationReleased" and e.allocation_id in allocated:
                amount = allocated[e.allocation_id]
                moves.append(CreditMovement(e.customer_id, amount.currency, amount.amount, e.occurred_at.date(),
                                            f"given back: {e.allocation_id}", allocation_id=e.allocation_id))
        return moves + self.ledger_excess(customer_id)

    def ledger_excess(self, customer_id: str | None = None) -> list[CreditMovement]:
        """The credit left by payments beyond the open amount of invoices without a case, and taken
        back by their reversals (the events' ``excess``, ``domain.credit.overpayment_movement``)."""
        streams = None if customer_id is None else self._payment_streams(customer_id)
        if streams == []:
            return []
        found = [r.event for r in self.store.read_types(LEDGER_EXCESS_EVENTS, streams)
                 if getattr(r.event, "excess", None) is not None]
        if not found:
            return []
        ids = sorted({e.invoice_id for e in found})
        query = select(invoices.c.invoice_id, invoices.c.customer_id).where(invoices.c.invoice_id.in_(ids))
        if customer_id is not None:
            query = query.where(invoices.c.customer_id == customer_id)
        with self.db.read() as session:
            owner = dict(session.execute(query).all())
        moves = [overpayment_movement(e, owner[e.invoice_id], e.invoice_id) for e in found if e.invoice_id in owner]
        return [m for m in moves if m is not None]

    def credit_on_account(self, customer_id: str, on: date) -> list[Money]:
        """The customer's unapplied credit on ``on``, per currency that has some (the rule of
        `payments unapplied`): what a notice states beside the invoices it demands."""
        return [Money(amount=b.balance, currency=b.currency)
                for b in credit_balances(self.credit_movements(customer_id), on) if b.balance > 0]

    def _payment_streams(self, customer_id: str) -> list[UUID]:
        """The streams of the payments on the customer's invoices (one per payment: domain/admin.py),
        where their ``LedgerPaymentRecorded`` and the like are: one customer's read of them goes by
        stream instead of scanning every event of those types (a notice reads it when it is sent)."""
        with self.db.read() as session:
            ids = session.execute(select(payments.c.payment_id)
                                  .join(invoices, payments.c.invoice_id == invoices.c.invoice_id)
                                  .where(invoices.c.customer_id == customer_id)).scalars().all()
        return [admin_stream_id("payment", payment_id) for payment_id in ids]

    def held_on_cases(self, customer_id: str, currency: str) -> Money:
        """Overpayment excess recorded on the customer's cases, net of reversals, and that of
        payments on the customer's invoices without a case (``ledger_excess``)."""
        with self.db.read() as session:
            total = session.execute(
                select(func.coalesce(func.sum(case_summary.c.credit_minor), 0))
                .where(case_summary.c.customer_id == customer_id, case_summary.c.currency == currency)
            ).scalar_one()
        on_ledger = sum((m.amount for m in self.ledger_excess(customer_id) if m.currency == currency), Decimal(0))
        return Money.from_minor(int(total), currency) + Money.of(on_ledger, currency)

    def open_items(self, customer_id: str, currency: str) -> list[OpenItem]:
        """Open cases of the customer in ``currency``: where credit can go."""
        with self.db.read() as session:
            rows = session.execute(
                select(case_summary.c.invoice_id, case_summary.c.case_id, case_summary.c.due_date,
                       case_summary.c.balance_minor)
                .where(case_summary.c.customer_id == customer_id, case_summary.c.currency == currency,
                       case_summary.c.closed_at.is_(None), case_summary.c.balance_minor > 0,
                       case_summary.c.kind == "invoice"))  # a deposit request takes no credit
            return [OpenItem(r.invoice_id, r.case_id, r.due_date, _amount(r.balance_minor, currency)) for r in rows]

    # -- risk projections ---------------------------------------------------------------------------
    def risk_rows(self) -> list:
        with self.db.read() as session:
            return list(session.execute(select(customer_risk).order_by(customer_risk.c.customer_id)))

    def outbox(self, pending_only: bool = True, limit: int = 1000) -> list[dict]:
        query = select(credit_hold_outbox).order_by(credit_hold_outbox.c.occurred_at, credit_hold_outbox.c.outbox_id)
        if pending_only:
            query = query.where(credit_hold_outbox.c.acked_at.is_(None))
        with self.db.read() as session:
            rows = session.execute(query.limit(limit))
            return [{"outbox_id": r.outbox_id, "customer_id": r.customer_id, "action": r.action,
                     "hold_id": r.hold_id, "reason": r.reason, "occurred_at": _iso(r.occurred_at),
                     "acked_by": r.acked_by, "acked_at": _iso(r.acked_at)} for r in rows]

    def outbox_customer(self, outbox_id: str) -> str:
        with self.db.read() as session:
            found = session.execute(select(credit_hold_outbox.c.customer_id)
                                    .where(credit_hold_outbox.c.outbox_id == outbox_id)).scalar_one_or_none()
        if found is None:
            raise DomainError(f"unknown outbox entry {shown(outbox_id)}", "outbox_id")
        return found


def _iso(value: datetime | date | None) -> str | None:
    return value.isoformat() if value is not None else None
