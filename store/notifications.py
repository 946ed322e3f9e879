"""Reads and the sent log behind internal notifications (domain/notifications.py).

The pending approvals and escalations come from the approvals inbox, the disputes escalated
past their deadline from the open disputed cases' state, the collectors' cases from the case
summary (open cases with an assignee); the sent log is
``internal_notifications``, claimed with one INSERT ... ON CONFLICT statement.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from domain.money import Money
from domain.notifications import DigestCase, PendingItem
from domain.policy import Role
from domain.state import CaseState
from store.db import Database
from store.schema import approvals, case_summary, internal_notifications


def _money(minor: int, currency: str) -> str:
    return str(Money.from_minor(minor, currency).amount)


def pending_items(db: Database) -> list[PendingItem]:
    with db.read() as session:
        rows = session.execute(
            select(approvals).where(approvals.c.status == "pending").order_by(approvals.c.requested_at,
                                                                            approvals.c.approval_id)
        ).all()
    return [
        PendingItem(item_id=r.approval_id, kind=r.kind, case_id=r.case_id, invoice_id=r.invoice_id,
                    customer_name=r.customer_name, amount=_money(r.amount_minor, r.currency), currency=r.currency,
                    tier=Role(r.tier), requested_by=r.requested_by, requested_at=r.requested_at,
                    sla_due_at=r.sla_due_at)
        for r in rows
    ] + escalated_disputes(db)


def escalated_disputes(db: Database) -> list[PendingItem]:
    """Open disputes past their resolution deadline, owned by the escalation tier they reached."""
    c = case_summary.c
    with db.read() as session:
        rows = session.execute(
            select(c.case_id, c.invoice_id, c.customer_name, c.state)
            .where(c.closed_at.is_(None), c.disputed_minor > 0).order_by(c.case_id)
        ).all()
    items = []
    for r in rows:
        dispute = CaseState.model_validate_json(r.state).dispute
        if dispute is None or dispute.escalated_to is None:
            continue
        # escalated when its deadline passed: that is when it began to wait on the tier
        items.append(PendingItem(
            item_id=dispute.dispute_id, kind="dispute", case_id=r.case_id, invoice_id=r.invoice_id,
            customer_name=r.customer_name, amount=str(dispute.amount.amount), currency=dispute.amount.currency,
            tier=dispute.escalated_to, requested_by="system", requested_at=dispute.resolve_by,
            sla_due_at=dispute.escalation_due_at))
    return sorted(items, key=lambda i: (i.requested_at, i.item_id))


def assigned_open_cases(db: Database) -> list[tuple[str, DigestCase]]:
    c = case_summary.c
    with db.read() as session:
        rows = session.execute(
            select(c.assignee, c.case_id, c.invoice_id, c.customer_name, c.status, c.balance_minor, c.currency,
                   c.next_action, c.waiting_for, c.next_action_at)
            .where(c.closed_at.is_(None), c.assignee.is_not(None))
            .order_by(c.assignee, c.invoice_id)
        ).all()
    return [
        (r.assignee, DigestCase(case_id=r.case_id, invoice_id=r.invoice_id, customer_name=r.customer_name,
                                status=r.status, balance=_money(r.balance_minor, r.currency), currency=r.currency,
                                next_action=r.next_action or r.waiting_for, next_action_at=r.next_action_at))
        for r in rows
    ]


@dataclass(frozen=True)
class Claim:
    status: str
    attempts: int
    first_attempt_at: datetime


class SentLog:
    def __init__(self, db: Database) -> None:
        self.db = db

    def claim(self, *, kind: str, item: str, recipient: str, day: date, email: str, role: str, case_ids: str,
              subject: str, message_id: str) -> Claim:
        """Claims the key (or counts one more attempt at it) and returns the row as it now is."""
        now = datetime.now(timezone.utc)
        insert = pg_insert if self.db.dialect == "postgresql" else sqlite_insert
        statement = insert(internal_notifications).values(
            kind=kind, item=item, recipient=recipient, day=day, email=email, role=role, case_ids=case_ids,
            subject=subject[:500], message_id=message_id, status="sending", attempts=1, first_attempt_at=now,
        ).on_conflict_do_update(
            index_elements=["kind", "item", "recipient", "day"],
            set_={"attempts": internal_notifications.c.attempts + 1},
        ).returning(internal_notifications.c.status, internal_notifications.c.attempts,
                    internal_notifications.c.first_attempt_at)
        with self.db.transaction() as session:
            row = session.execute(statement).one()
        return Claim(status=row.status, attempts=row.attempts, first_attempt_at=row.first_attempt_at)

    def finish(self, key: tuple[str, str, str, date], status: str, error: str | None = None) -> None:
        kind, item, recipient, day = key
        t = internal_notifications.c
        with self.db.transaction() as session:
            session.execute(
                update(internal_notifications)
                .where(t.kind == kind, t.item == item, t.recipient == recipient, t.day == day)
                .values(status=status, last_error=error[:2000] if error else None,
                        sent_at=datetime.now(timezone.utc) if status == "sent" else None)
            )

    def rows(self, start: date | None = None, end: date | None = None) -> list[dict]:
        t = internal_notifications.c
        query = select(internal_notifications).order_by(t.day, t.first_attempt_at, t.kind, t.item, t.recipient)
        if start is not None:
            query = query.where(t.day >= start)
        if end is not None:
            query = query.where(t.day <= end)
        with self.db.read() as session:
            found = session.execute(query).all()
        return [
            {"kind": r.kind, "item": r.item, "recipient": r.recipient, "day": r.day.isoformat(), "email": r.email,
             "role": r.role, "case_ids": r.case_ids.split(",") if r.case_ids else [], "subject": r.subject,
             "message_id": r.message_id, "status": r.status, "attempts": r.attempts, "last_error": r.last_error,
             "first_attempt_at": r.first_attempt_at.isoformat(),
             "sent_at": r.sent_at.isoformat() if r.sent_at else None}
            for r in found
        ]
