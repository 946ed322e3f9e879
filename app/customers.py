"""Customer services: the risk scorecard, credit limits, credit holds and their outbox.

The customer's stream is written here (the application service), with optimistic
concurrency: load, decide, append at the expected version, and on a conflict load
again and decide again. Commands are decided by ``domain.customer.decide_customer``.

``on_case_events`` is the hook the worker runs after it appends a case's events:
events that move the scorecard rescore the customer (a grade change is a
``RiskGradeChanged`` event), and a supervisor's credit-hold decision on a case puts
the customer on hold. It is idempotent, so running it again changes nothing.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta, timezone
from typing import Callable, Sequence
from uuid import UUID, uuid4, uuid5

from app.context import Context
from domain import customer as cu
from domain.admin import check_reason
from domain.errors import DomainError, shown
from domain.events import Event
from domain.money import Money, positive_money
from domain.policy import Policy, RiskGrade
from domain.risk import GRADE_RANK, Assessment, score, worse
from domain.users import SYSTEM_ACTOR, Actor
from store.customers import CustomerReads
from store.event_store import ConcurrencyError

log = logging.getLogger(__name__)

# Case events after which a customer's score can have moved.
RESCORE_ON = frozenset({"CaseOpened", "CaseClosed", "CaseReopened", "DisputeOpened", "PromiseBroken",
                        "PaymentPlanDefaulted", "PaymentReversed", "WriteOffApproved"})
ATTEMPTS = 8


def _m(money: Money) -> str:
    return str(money.quantized(money.amount))


def _now() -> datetime:
    return datetime.now(timezone.utc)


def cached_policy(load: Callable[[], Policy], seconds: float = 30.0) -> Callable[[], Policy]:
    """The active policy, read again at most every ``seconds`` (the worker's hook runs often)."""
    import time

    cache: dict = {}

    def policy() -> Policy:
        now = time.monotonic()
        if "at" not in cache or now - cache["at"] > seconds:
            cache["policy"], cache["at"] = load(), now
        return cache["policy"]

    return policy


def assessment_dict(a: Assessment, top: int | None = None) -> dict:
    factors = a.top(top) if top else a.factors
    return {
        "as_of": a.as_of.isoformat(), "score": str(a.score), "grade": a.grade.value, "invoices": a.invoices,
        "exposure": str(a.exposure), "currency": a.currency,
        "credit_limit": str(a.credit_limit) if a.credit_limit is not None else None, "over_limit": a.over_limit,
        "factors": [{"name": f.name, "value": str(f.value), "points": str(f.points), "detail": f.detail}
                    for f in factors],
    }


class CustomerService:
    def __init__(self, context: Context, policy: Callable[[], Policy] | None = None) -> None:
        self.ctx = context
        self.reads = CustomerReads(context.db, context.store)
        self._policy = policy or context.policy

    # -- writing the customer's stream ------------------------------------------------------
    def execute(self, customer_id: str, build: Callable[[cu.CustomerState | None], cu.CustomerCommand],
                now: datetime | None = None, within: Callable[[object], object] | None = None,
                ) -> tuple[cu.CustomerState | None, list[cu.CustomerEvent]]:
        """Decide a command on the current stream and append; again on a concurrent append.
        ``within(session)`` runs in the append's transaction (a ledger row the event records)."""
        policy = self._policy()
        stream = cu.customer_stream_id(customer_id)
        for attempt in range(ATTEMPTS):
            events = self.ctx.store.load(stream)
            state = cu.fold_customer(events)
            command = build(state)
            new = cu.decide_customer(state, command, now or _now(), policy)
            if not new:
                return state, []
            try:
                self.ctx.store.append(stream, state.version if state else 0, new,
                                      {"command_id": str(command.command_id), "command": command.kind,
                                       "actor": command.actor.name}, within=within)
            except ConcurrencyError:
                if attempt == ATTEMPTS - 1:
                    raise
                continue
            return cu.fold_customer(new, state), new
        raise AssertionError("unreachable")

    # -- the scorecard ---------------------------------------------------------------------------
    def assessment(self, customer_id: str, as_of: date | None = None,
                   state: cu.CustomerState | None = None) -> Assessment:
        state = state if state is not None else self.reads.state(customer_id)
        history = self.reads.history(customer_id, state)
        return score(history, as_of or _now().date(), self._policy().risk)

    def assess(self, customer_id: str, as_of: date | None = None, now: datetime | None = None,
               actor: Actor = SYSTEM_ACTOR, command_id: UUID | None = None) -> dict:
        """Score the customer now and record a grade change (and a policy hold) if there is one."""
        row = self.reads.customer(customer_id)
        when = now or _now()
        day = as_of or when.date()
        cid = command_id or uuid4()

        def build(state):
            return cu.AssessRisk(command_id=cid, actor=actor, customer_id=customer_id,
                                 assessment=self.assessment(customer_id, day, state),
                                 imported_grade=RiskGrade(row.imported_grade))

        state, events = self.execute(customer_id, build, when)
        return {"customer_id": customer_id, "grade": self.grade_of(state, row.imported_grade),
                "events": [type(e).__name__ for e in events]}

    def rescore_all(self, as_of: date | None = None, actor: Actor = SYSTEM_ACTOR) -> dict:
        changed, holds = 0, 0
        ids = self.reads.customer_ids()
        for customer_id in ids:
            result = self.assess(customer_id, as_of, actor=actor)
            changed += result["events"].count("RiskGradeChanged")
            holds += result["events"].count("CustomerPutOnHold")
        return {"customers": len(ids), "grades_changed": changed, "holds_placed": holds}

    @staticmethod
    def grade_of(state: cu.CustomerState | None, imported: str) -> str:
        return state.grade.value if state is not None and state.grade is not None else imported

    # -- the worker's hook ----------------------------------------------------------------------
    def on_case_events(self, case_id: UUID, events: Sequence[Event]) -> None:
        """After a case's events are appended: rescore, and follow a credit-hold decision."""
        names = {type(e).__name__ for e in events}
        rescore = self._policy().risk.enabled and bool(names & RESCORE_ON)
        if not rescore and "CreditHoldPlaced" not in names:
            return
        customer_id = self._case_customer(case_id)
        if customer_id is None:
            return
        for e in events:
            if type(e).__name__ == "CreditHoldPlaced":
                self.execute(customer_id, lambda s, e=e: cu.PlaceHold(
                    command_id=uuid5(e.event_id, "customer-hold"), actor=Actor(name=e.actor), customer_id=customer_id,
                    reason="escalation decision on a case", source="escalation", case_ref=str(case_id)),
                    e.occurred_at)
        if rescore:
            last = events[-1]
            self.assess(customer_id, last.occurred_at.date(), now=last.occurred_at,
                        command_id=uuid5(last.event_id, "rescore"))

    def _case_customer(self, case_id: UUID) -> str | None:
        """The case's customer when the ledger knows it (a case opened from invoice facts alone,
        with no ledger customer, has no scorecard to update)."""
        from sqlalchemy import select

        from store.schema import case_summary, customers

        with self.ctx.db.read() as session:
            return session.execute(select(customers.c.customer_id)
                                   .join(case_summary, case_summary.c.customer_id == customers.c.customer_id)
                                   .where(case_summary.c.case_id == str(case_id))).scalar_one_or_none()

    # -- reads -------------------------------------------------------------------------------------
    def show(self, customer_id: str, as_of: date | None = None) -> dict:
        row = self.reads.customer(customer_id)
        state = self.reads.state(customer_id)
        live = self.assessment(customer_id, as_of, state)
        from domain.credit import credit_balances

        credit = credit_balances(self.reads.credit_movements(customer_id), as_of or _now().date())
        return {
            "customer_id": customer_id, "name": row.name, "email": row.email, "country": row.country,
            "grade": self.grade_of(state, row.imported_grade),
            "graded_by": "scorecard" if state is not None and state.grade is not None else "import",
            "score": str(live.score), "scored_grade": live.grade.value,
            "top_factors": assessment_dict(live, 3)["factors"],
            "assessment": assessment_dict(live),
            "previous_grade": state.previous_grade.value if state and state.previous_grade else None,
            "graded_at": state.graded_at.isoformat() if state and state.graded_at else None,
            "credit_limit": _m(state.credit_limit) if state and state.credit_limit else None,
            "credit_limit_currency": state.credit_limit.currency if state and state.credit_limit else None,
            "on_hold": bool(state and state.hold),
            "hold": state.hold.model_dump(mode="json") if state and state.hold else None,
            "credit": [{"currency": c.currency, "balance": str(c.balance), "oldest": c.oldest.isoformat()
                        if c.oldest else None, "age_days": c.age_days} for c in credit],
            "events": [r.as_dict() for r in self.ctx.store.records(cu.customer_stream_id(customer_id))],
        }

    def watchlist(self, days: int | None = None, as_of: date | None = None) -> list[dict]:
        """Customers whose grade worsened in the last ``days`` days, or whose exposure is above
        their credit limit (and those on credit hold, flagged)."""
        policy = self._policy()
        window = timedelta(days=days) if days is not None else policy.risk.watch_window
        if window < timedelta(0):
            raise DomainError("must not be negative", "days")
        today = as_of or _now().date()
        items = []
        for r in self.reads.risk_rows():
            state = cu.CustomerState.model_validate_json(r.state)
            reasons = []
            if (state.grade is not None and worse(state.grade, state.previous_grade) and state.graded_at is not None
                    and today - state.graded_at.date() <= window):
                reasons.append(f"grade worsened {state.previous_grade.value} -> {state.grade.value} "
                               f"on {state.graded_at.date().isoformat()}")
            assessment = None
            if state.credit_limit is not None:
                assessment = self.assessment(state.customer_id, today, state)
                if assessment.over_limit:
                    reasons.append(f"exposure {assessment.exposure} {assessment.currency} above the limit "
                                   f"{assessment.credit_limit}")
            if not reasons:
                continue
            items.append({
                "customer_id": state.customer_id, "grade": state.grade.value if state.grade else None,
                "previous_grade": state.previous_grade.value if state.previous_grade else None,
                "graded_at": state.graded_at.isoformat() if state.graded_at else None,
                "exposure": str(assessment.exposure) if assessment else None,
                "credit_limit": _m(state.credit_limit) if state.credit_limit else None,
                "on_hold": state.hold is not None, "reasons": reasons,
            })
        items.sort(key=lambda i: (-GRADE_RANK.get(RiskGrade(i["grade"]), 0) if i["grade"] else 0, i["customer_id"]))
        return items

    # -- holds, limits, outbox ------------------------------------------------------------------------
    def place_hold(self, customer_id: str, reason: str, actor: Actor) -> dict:
        return self._hold_command(cu.PlaceHold, customer_id, reason, actor)

    def release_hold(self, customer_id: str, reason: str, actor: Actor) -> dict:
        return self._hold_command(cu.ReleaseHold, customer_id, reason, actor)

    def _hold_command(self, command: type, customer_id: str, reason: str, actor: Actor) -> dict:
        self.reads.customer(customer_id)
        cid = uuid4()
        state, events = self.execute(customer_id, lambda s: command(command_id=cid, actor=actor,
                                                                    customer_id=customer_id, reason=reason))
        return self._reply(customer_id, state, events)

    def set_limit(self, customer_id: str, amount: str | None, currency: str | None, actor: Actor,
                  reason: str | None = None) -> dict:
        """``currency``: by default the one the customer's invoices are in. A limit watches the
        exposure in its own currency only, so one in a currency the customer owes nothing in
        would watch none of it: refused."""
        reason = check_reason(reason)
        self.reads.customer(customer_id)
        limit = None
        if amount not in (None, "", "none"):
            limit = positive_money(amount, self._limit_currency(customer_id, currency), "limit")
        cid = uuid4()
        state, events = self.execute(customer_id, lambda s: cu.SetCreditLimit(
            command_id=cid, actor=actor, customer_id=customer_id, limit=limit, reason=reason))
        return self._reply(customer_id, state, events)

    def _limit_currency(self, customer_id: str, currency: str | None) -> str:
        owed = self.reads.invoice_currencies(customer_id)
        if currency is None:
            if len(owed) == 1:
                return owed[0]
            has = f"has invoices in {', '.join(owed)}" if owed else "has no invoices yet"
            raise DomainError(f"customer {shown(customer_id)} {has}: give the limit's currency", "currency")
        code = str(currency).strip().upper()
        if owed and code not in owed:
            raise DomainError(f"customer {shown(customer_id)} owes in {', '.join(owed)} only: a limit in {code} "
                              "would watch none of it", "currency")
        return code

    def revoke_links(self, customer_id: str, reason: str, actor: Actor) -> dict:
        """Every self-service link issued to the customer until now stops working (app/links.py)."""
        self.reads.customer(customer_id)
        cid = uuid4()
        state, events = self.execute(customer_id, lambda s: cu.RevokeLinks(
            command_id=cid, actor=actor, customer_id=customer_id, reason=reason))
        return {"customer_id": customer_id, "revoked_at": state.links_revoked_at.isoformat(), "reason": reason,
                "events": [type(e).__name__ for e in events]}

    def outbox(self, pending_only: bool = True) -> list[dict]:
        return self.reads.outbox(pending_only)

    def acknowledge(self, outbox_id: str, consumer: str, actor: Actor) -> dict:
        customer_id = self.reads.outbox_customer(outbox_id)
        cid = uuid4()
        state, events = self.execute(customer_id, lambda s: cu.AcknowledgeHoldNotice(
            command_id=cid, actor=actor, customer_id=customer_id, outbox_id=outbox_id, consumer=consumer))
        item = state.outbox_item(outbox_id)
        return {"outbox_id": outbox_id, "customer_id": customer_id, "action": item.action,
                "acked_by": item.acked_by, "acked_at": item.acked_at.isoformat() if item.acked_at else None,
                "events": [type(e).__name__ for e in events]}

    def _reply(self, customer_id: str, state: cu.CustomerState | None, events: list) -> dict:
        return {"customer_id": customer_id, "on_hold": bool(state and state.hold),
                "hold_reason": state.hold.reason if state and state.hold else None,
                "credit_limit": _m(state.credit_limit) if state and state.credit_limit else None,
                "credit_limit_currency": state.credit_limit.currency if state and state.credit_limit else None,
                "version": state.version if state else 0, "events": [type(e).__name__ for e in events]}

