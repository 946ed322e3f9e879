"""Read models of customer streams: ``customer_risk`` and ``credit_hold_outbox``.

Every row is a pure function of the folded customer state, so the inline update
(in the append transaction) and a rebuild produce identical rows.
"""

from __future__ import annotations

from typing import Callable, Iterable, Sequence
from uuid import UUID

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from domain.customer import CustomerEvent, CustomerState, evolve_customer
from store.schema import approvals, credit_hold_outbox, customer_risk, customers
from store.upsert import upsert


def risk_row(s: CustomerState) -> dict:
    return {
        "customer_id": s.customer_id,
        "grade": s.grade.value if s.grade else None,
        "previous_grade": s.previous_grade.value if s.previous_grade else None,
        "score": str(s.score) if s.score is not None else None,
        "graded_at": s.graded_at,
        "credit_limit_minor": s.credit_limit.to_minor() if s.credit_limit else None,
        "credit_limit_currency": s.credit_limit.currency if s.credit_limit else None,
        "on_hold": s.hold is not None,
        "hold_reason": s.hold.reason if s.hold else None,
        "hold_since": s.hold.since if s.hold else None,
        "updated_at": s.updated_at,
        "version": s.version,
        "state": s.model_dump_json(),
    }


def outbox_rows(s: CustomerState) -> list[dict]:
    return [{"outbox_id": o.outbox_id, "customer_id": s.customer_id, "action": o.action, "hold_id": o.hold_id,
             "reason": o.reason[:500], "occurred_at": o.at, "acked_by": o.acked_by, "acked_at": o.acked_at}
            for o in s.outbox]


def refund_approval_rows(s: CustomerState, customer_name: str) -> list[dict]:
    """Refunds of advances waiting for a second person, and those approved, in the approvals inbox (kind ``refund``):
    the approval id is the refund id, the case id the customer's stream, the invoice id the advance."""
    return [{"approval_id": p.refund_id, "case_id": str(s.stream_id), "invoice_id": p.advance_id,
             "customer_name": customer_name, "kind": "refund", "currency": p.amount.currency,
             "amount_minor": p.amount.to_minor(), "reason": p.reason[:500], "requested_by": p.requested_by,
             "requested_at": p.at, "tier": "supervisor", "sla_due_at": None,
             "status": "approved" if p.approved_by else "rejected" if p.rejected_by else "pending",
             "decided_by": p.approved_by or p.rejected_by, "decided_at": p.approved_at or p.rejected_at, "decision": None,
             "reduced_alone_minor": p.refunded_alone.to_minor() if p.refunded_alone is not None else None}
            for p in (*s.pending_refunds.values(), *s.approved_refunds.values(), *s.rejected_refunds.values())]


def _names(session: Session, ids: Iterable[str] | None = None) -> dict[str, str]:
    query = select(customers.c.customer_id, customers.c.name)
    if ids is not None:
        query = query.where(customers.c.customer_id.in_(list(ids)))
    return dict(session.execute(query).all())


class CustomerProjector:
    def apply(self, session: Session, stream_id: UUID, events: Sequence[CustomerEvent],
              earlier: Callable[[Session, UUID, int, int], list]) -> CustomerState:
        row = session.execute(
            select(customer_risk.c.state).where(customer_risk.c.customer_id == events[0].customer_id)
        ).first()
        state = CustomerState.model_validate_json(row.state) if row else None
        seen = state.version if state else 0
        if seen < events[0].version - 1:
            events = [*earlier(session, stream_id, seen, events[0].version), *events]
        for event in events:
            if state is None or event.version > state.version:
                state = evolve_customer(state, event)
        self.write(session, state)
        return state

    def write(self, session: Session, state: CustomerState) -> None:
        upsert(session, customer_risk, [risk_row(state)], ["customer_id"])
        session.execute(delete(credit_hold_outbox).where(credit_hold_outbox.c.customer_id == state.customer_id))
        rows = outbox_rows(state)
        if rows:
            session.execute(insert(credit_hold_outbox), rows)
        session.execute(delete(approvals).where(approvals.c.case_id == str(state.stream_id),
                                                approvals.c.kind == "refund"))
        refunds = refund_approval_rows(state, _names(session, [state.customer_id]).get(state.customer_id,
                                                                                       state.customer_id))
        if refunds:
            session.execute(insert(approvals), refunds)

    def replace_all(self, session: Session, states: Iterable[CustomerState]) -> None:
        for table in (credit_hold_outbox, customer_risk):
            session.execute(delete(table))
        session.execute(delete(approvals).where(approvals.c.kind == "refund"))
        risk, outbox, refunds = [], [], []
        names = _names(session)
        for state in states:
            risk.append(risk_row(state))
            outbox.extend(outbox_rows(state))
            refunds.extend(refund_approval_rows(state, names.get(state.customer_id, state.customer_id)))
        if risk:
            session.execute(insert(customer_risk), risk)
        if outbox:
            session.execute(insert(credit_hold_outbox), outbox)
        if refunds:
            session.execute(insert(approvals), refunds)
