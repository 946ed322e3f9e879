"""Read models derived from events: case summary, approvals inbox, customer exposure
(and, for customer streams, customer risk and the credit-hold outbox: store/customer_projections.py).

Every row is a pure function of the folded case state, so the inline update
(in the append transaction) and a full rebuild produce identical rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Callable, Iterable, Sequence
from uuid import UUID

from sqlalchemy import and_, bindparam, case, delete, func, insert, literal, select, text, update
from sqlalchemy.orm import Session

from domain.agenda import next_action, waiting_for
from domain.admin import is_admin_event
from domain.customer import is_customer_event
from domain.events import Event
from domain.priority import amount_at_risk, day_number, ranking_base
from domain.state import CaseState, evolve
from store.customer_projections import CustomerProjector
from store.schema import approvals, case_summary, customer_exposure


def summary_row(s: CaseState) -> dict:
    action = next_action(s)
    disputed = s.dispute.amount.min(s.balance) if s.dispute else None
    return {
        "case_id": str(s.case_id),
        "invoice_id": s.invoice_id,
        "customer_id": s.customer.customer_id,
        "customer_name": s.customer.name,
        "status": s.status.value,
        "currency": s.currency,
        "original_minor": s.original_amount.to_minor(),
        "balance_minor": s.balance.to_minor(),
        "disputed_minor": disputed.to_minor() if disputed else 0,
        "credit_minor": s.customer_credit.to_minor(),
        "credit_hold": s.credit_hold,
        "level": s.level,
        "risk_grade": s.risk_grade.value,
        "due_date": s.due_date,
        "due_day": day_number(s.due_date),
        "ranking_base": ranking_base(amount_at_risk(s.balance.amount, disputed.amount if disputed else Decimal(0)),
                                     s.risk_grade),
        "next_action": action.label if action else None,
        "next_action_at": action.at if action else None,
        "waiting_for": waiting_for(s),
        "assignee": s.assignee,
        "contact_problem": s.contact_problem,
        "policy_version": s.policy_version,
        "opened_at": s.opened_at,
        "updated_at": s.updated_at,
        "closed_at": s.closed_at,
        "version": s.version,
        "state": s.model_dump_json(),
        "kind": s.kind,
    }


def approval_rows(s: CaseState) -> list[dict]:
    common = {"case_id": str(s.case_id), "invoice_id": s.invoice_id, "customer_name": s.customer.name}
    rows = [
        {
            **common,
            "approval_id": a.approval_id,
            "kind": a.kind,
            "currency": a.amount.currency,
            "amount_minor": a.amount.to_minor(),
            "reason": a.reason,
            "requested_by": a.requested_by,
            "requested_at": a.requested_at,
            "tier": a.tier.value,
            "sla_due_at": a.sla_due_at,
            "status": a.status,
            "decided_by": a.decided_by,
            "decided_at": a.decided_at,
            "decision": a.decision_reason or None,
            "reduced_alone_minor": a.reduced_alone.to_minor() if a.reduced_alone is not None else None,
        }
        for a in s.approvals
    ]
    escalations = s.past_escalations + ((s.escalation,) if s.escalation else ())
    for esc in escalations:
        rows.append(
            {
                **common,
                "approval_id": esc.escalation_id,
                "kind": "escalation",
                "currency": s.currency,
                "amount_minor": (esc.balance_decided or s.balance).to_minor(),
                "reason": esc.reason,
                "requested_by": "system",
                "requested_at": esc.since,
                "tier": esc.tier.value,
                "sla_due_at": esc.sla_due_at,
                "status": "pending" if esc.pending else "decided" if esc.decision else "withdrawn",
                "decided_by": esc.decided_by if esc.decision else esc.withdrawn_by,
                "decided_at": esc.decided_at if esc.decision else esc.withdrawn_at,
                "decision": esc.decision.value if esc.decision else esc.withdrawn_reason or None,
                "reduced_alone_minor": None,
            }
        )
    return rows


def _exposure_select(where=None):
    # an advance case (a deposit asked before delivery) is no receivable: not in the exposure
    open_case = and_(case_summary.c.closed_at.is_(None), case_summary.c.kind == "invoice")
    query = select(
        case_summary.c.customer_id,
        case_summary.c.currency,
        func.max(case_summary.c.customer_name).label("customer_name"),
        func.sum(case((open_case, 1), else_=0)).label("open_cases"),
        func.sum(case((open_case, case_summary.c.balance_minor), else_=0)).label("open_balance_minor"),
        func.sum(case((open_case, case_summary.c.disputed_minor), else_=0)).label("disputed_minor"),
        func.sum(case_summary.c.credit_minor).label("credit_minor"),
        (func.sum(case((case_summary.c.credit_hold, 1), else_=0)) > literal(0)).label("on_credit_hold"),
    ).group_by(case_summary.c.customer_id, case_summary.c.currency)
    return query.where(where) if where is not None else query


_EXPOSURE_COLUMNS = [
    "customer_id", "currency", "customer_name", "open_cases", "open_balance_minor",
    "disputed_minor", "credit_minor", "on_credit_hold",
]


# Statements built once (cached compiled forms; the append path runs them for every command).
_CURRENT = select(
    case_summary.c.state, case_summary.c.version, case_summary.c.customer_id, case_summary.c.currency,
    case_summary.c.customer_name, case_summary.c.closed_at, case_summary.c.balance_minor,
    case_summary.c.disputed_minor, case_summary.c.credit_minor, case_summary.c.credit_hold, case_summary.c.kind,
).where(case_summary.c.case_id == bindparam("key"))
_SUMMARY_INSERT = insert(case_summary)
_SUMMARY_UPDATE = update(case_summary).where(case_summary.c.case_id == bindparam("key"))
_APPROVALS_DELETE = delete(approvals).where(approvals.c.case_id == bindparam("key"))
_APPROVALS_INSERT = insert(approvals)
_EXPOSURE_DELETE = delete(customer_exposure).where(
    customer_exposure.c.customer_id == bindparam("customer"), customer_exposure.c.currency == bindparam("currency"))
_EXPOSURE_INSERT = insert(customer_exposure).from_select(_EXPOSURE_COLUMNS, _exposure_select(and_(
    case_summary.c.customer_id == bindparam("customer"), case_summary.c.currency == bindparam("currency"))))

# The case's contribution as a new exposure row, or its change added to the existing row. The
# same SQL on SQLite and PostgreSQL, as text: SQLAlchemy compiled the equivalent
# on_conflict_do_update construct again for every append. Concurrent appends for one customer
# each add their own delta under the row lock, so the sums stay exact.
_EXPOSURE_DELTA = text("""
    INSERT INTO customer_exposure (customer_id, currency, customer_name, open_cases, open_balance_minor,
                                   disputed_minor, credit_minor, on_credit_hold)
    VALUES (:customer_id, :currency, :customer_name, :open_cases, :open_balance_minor,
            :disputed_minor, :credit_minor, :on_credit_hold)
    ON CONFLICT (customer_id, currency) DO UPDATE SET
        customer_name = CASE WHEN excluded.customer_name > customer_exposure.customer_name
                             THEN excluded.customer_name ELSE customer_exposure.customer_name END,
        open_cases = customer_exposure.open_cases + :d_open,
        open_balance_minor = customer_exposure.open_balance_minor + :d_balance,
        disputed_minor = customer_exposure.disputed_minor + :d_disputed,
        credit_minor = customer_exposure.credit_minor + :d_credit,
        on_credit_hold = customer_exposure.on_credit_hold OR excluded.on_credit_hold
""")


def _exposure_key(m) -> tuple:
    """What a case adds to its customer's exposure row: when it is unchanged, so is the row. It
    counts as open only while it is an invoice's case, as in ``_exposure_select``: an advance
    case (a deposit asked before delivery) is no receivable."""
    receivable = m["closed_at"] is None and m["kind"] == "invoice"
    return (m["customer_id"], m["currency"], m["customer_name"], receivable, m["balance_minor"],
            m["disputed_minor"], m["credit_minor"], bool(m["credit_hold"]))


def _contribution(key: tuple | None) -> tuple[int, int, int, int]:
    """(open cases, open balance, disputed, credit) a case adds to its exposure row."""
    if key is None:
        return (0, 0, 0, 0)
    _, _, _, is_open, balance, disputed, credit, _ = key
    return (1, balance, disputed, credit) if is_open else (0, 0, 0, credit)


def _needs_recount(old: tuple | None, new: tuple) -> bool:
    """A change that sums cannot express: another customer or currency, a renamed customer
    (the row shows the greatest name), or a hold lifted (another case may still hold)."""
    return old is not None and (old[:3] != new[:3] or (old[7] and not new[7]))


@dataclass(frozen=True)
class Projected:
    """A case as its rows show it: the folded state and what it adds to its exposure row.
    The next append of the case starts from it (read back, or kept by the event store)."""

    state: CaseState
    exposure: tuple

    @property
    def version(self) -> int:
        return self.state.version


class _Pending:
    """A prepared projection update: ``write(session)`` writes it and returns the new state;
    ``projected`` is the case as the rows show it once written (None for a customer stream)."""

    def __init__(self, write: Callable[[Session], object], projected: Projected | None = None) -> None:
        self.write = write
        self.projected = projected


class Projector:
    """Keeps the read models in step with appended events."""

    customers = CustomerProjector()

    def prepare(self, session: Session, stream_id: UUID, events: Sequence[Event],
                earlier: Callable[[Session, UUID, int, int], list[Event]],
                current: Projected | None) -> _Pending:
        """Everything the update computes, before anything is written (the event store takes
        its table lock only after this, so the lock is not held while Python folds state).
        ``current`` is the case as its rows show it (``current()``), None for a new stream.
        ``earlier(session, stream, after, before)`` reads recorded events the rows have
        missed, should they ever be behind."""
        if is_customer_event(events[0]):
            return _Pending(lambda s: self.customers.apply(s, stream_id, events, earlier))
        if is_admin_event(events[0]):  # administration streams feed no read model (domain/admin.py)
            return _Pending(lambda s: None)
        before = current.state if current else None
        state = before
        seen = state.version if state else 0
        if seen < events[0].version - 1:
            events = [*earlier(session, stream_id, seen, events[0].version), *events]
        for event in events:
            if state is None or event.version > state.version:
                state = evolve(state, event)
        summary = summary_row(state)
        rows = approval_rows(state)
        same_approvals = before is not None and rows == approval_rows(before)
        old, new = (current.exposure if current else None), _exposure_key(summary)

        def write(s: Session) -> CaseState:
            conn = s.connection()
            if current is not None:
                conn.execute(_SUMMARY_UPDATE, {**summary, "key": summary["case_id"]})
            else:
                conn.execute(_SUMMARY_INSERT, summary)
            if not same_approvals:
                if current is not None:
                    conn.execute(_APPROVALS_DELETE, {"key": summary["case_id"]})
                if rows:
                    conn.execute(_APPROVALS_INSERT, rows)
            if old != new:
                self._update_exposure(s, old, new)
            return state

        return _Pending(write, Projected(state, new))

    def _update_exposure(self, session: Session, old: tuple | None, new: tuple) -> None:
        """One upsert adding the case's change to its customer's row; a recount of the
        customer's cases (and of the row it left) only for changes sums cannot express."""
        if _needs_recount(old, new):
            self.refresh_exposure(session, new[0], new[1])
            if old[:2] != new[:2]:
                self.refresh_exposure(session, old[0], old[1])
            return
        before, after = _contribution(old), _contribution(new)
        delta = [a - b for a, b in zip(after, before)]
        conn = session.connection()
        conn.execute(_EXPOSURE_DELTA, {
            "customer_id": new[0], "currency": new[1], "customer_name": new[2], "open_cases": after[0],
            "open_balance_minor": after[1], "disputed_minor": after[2], "credit_minor": after[3],
            "on_credit_hold": new[7], "d_open": delta[0], "d_balance": delta[1], "d_disputed": delta[2],
            "d_credit": delta[3]})

    @staticmethod
    def current(session: Session, stream_id: UUID) -> Projected | None:
        """The case as its summary row shows it (state and exposure contribution), or None."""
        row = session.connection().execute(_CURRENT, {"key": str(stream_id)}).first()
        if row is None:
            return None
        return Projected(CaseState.model_validate_json(row.state), _exposure_key(row._mapping))

    def refresh_exposure(self, session: Session, customer_id: str, currency: str) -> None:
        conn = session.connection()
        conn.execute(_EXPOSURE_DELETE, {"customer": customer_id, "currency": currency})
        conn.execute(_EXPOSURE_INSERT, {"customer": customer_id, "currency": currency})

    def replace_all(self, session: Session, states: Iterable[CaseState], batch: int = 2000,
                    customers: Iterable = ()) -> None:
        """Rebuild: fresh rows for every case, then exposure from them (and every customer's rows)."""
        for table in (customer_exposure, approvals, case_summary):
            session.execute(delete(table))
        self.customers.replace_all(session, customers)  # after: it adds the refunds awaiting approval
        summaries: list[dict] = []
        approval_batch: list[dict] = []
        for state in states:
            summaries.append(summary_row(state))
            approval_batch.extend(approval_rows(state))
            if len(summaries) >= batch:
                self._flush(session, summaries, approval_batch)
        self._flush(session, summaries, approval_batch)
        session.execute(insert(customer_exposure).from_select(_EXPOSURE_COLUMNS, _exposure_select()))

    @staticmethod
    def _flush(session: Session, summaries: list[dict], approval_batch: list[dict]) -> None:
        if summaries:
            session.execute(insert(case_summary), summaries)
        if approval_batch:
            session.execute(insert(approvals), approval_batch)
        summaries.clear()
        approval_batch.clear()
