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
from store.schema import credit_hold_outbox, customer_risk
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

    def replace_all(self, session: Session, states: Iterable[CustomerState]) -> None:
        for table in (credit_hold_outbox, customer_risk):
            session.execute(delete(table))
        risk, outbox = [], []
        for state in states:
            risk.append(risk_row(state))
            outbox.extend(outbox_rows(state))
        if risk:
            session.execute(insert(customer_risk), risk)
        if outbox:
            session.execute(insert(credit_hold_outbox), outbox)
