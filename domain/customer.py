"""The customer: risk grade, credit limit, credit hold and customer credit. Pure.

A customer is not a case. Its facts live in its own event stream in the same
event store (stream id = ``customer_stream_id(customer_id)``), decided here the
way the case decider decides a case: ``decide_customer(state, command, now,
policy) -> events`` and ``evolve_customer(state, event) -> state``.

Customer credit (advance receipts) has two sources: the excess of an overpayment,
which stays recorded on the case it was paid to (``PaymentReceived.excess``), and a
prepayment with no invoice (``PrepaymentReceived`` here). Credit is spent by
``CustomerCreditAllocated`` here, which the target case then applies
(``CustomerCreditApplied`` on the case); an allocation the case could not apply is
given back by ``CustomerCreditAllocationReleased``.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from functools import reduce
from typing import Annotated, Iterable, Literal, Union, get_args
from uuid import UUID, uuid5

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from domain import commands as cmd
from domain.errors import DomainError, shown
from domain.money import Money
from domain.policy import APPROVER_ROLES, Policy, RiskGrade, Role
from domain.risk import GRADE_RANK, Assessment, FactorScore

_CUSTOMER_NAMESPACE = UUID("0c6b9a52-1f3e-5d7a-8e24-93b1f6c0d4a8")
CUSTOMER_ENVELOPE = frozenset({"type", "event_id", "stream_id", "version", "occurred_at", "actor"})


def customer_stream_id(customer_id: str) -> UUID:
    """The event stream of a customer: stable, distinct from every case id."""
    return uuid5(_CUSTOMER_NAMESPACE, f"customer:{customer_id}")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


# -- events ------------------------------------------------------------------------------------


class CustomerEvent(_Frozen):
    event_id: UUID
    stream_id: UUID
    version: int
    occurred_at: datetime
    actor: str
    customer_id: str

    @property
    def case_id(self) -> UUID:
        """The event store calls every stream id ``case_id``."""
        return self.stream_id

    def data(self) -> dict:
        return self.model_dump(mode="json", exclude=set(CUSTOMER_ENVELOPE))


class RiskGradeChanged(CustomerEvent):
    type: Literal["RiskGradeChanged"] = "RiskGradeChanged"
    from_grade: RiskGrade | None
    to_grade: RiskGrade
    score: Decimal
    factors: tuple[FactorScore, ...]
    as_of: date


class CreditLimitSet(CustomerEvent):
    type: Literal["CreditLimitSet"] = "CreditLimitSet"
    limit: Money | None  # None: no limit
    reason: str = ""  # why (events recorded before reasons were asked for have none)


class CustomerPutOnHold(CustomerEvent):
    """No new credit for this customer; published in the outbox for the ERP."""

    type: Literal["CustomerPutOnHold"] = "CustomerPutOnHold"
    hold_id: str
    reason: str
    source: Literal["supervisor", "policy", "escalation"]
    case_id_ref: str | None = None  # the case whose escalation decided it


class CustomerHoldReleased(CustomerEvent):
    type: Literal["CustomerHoldReleased"] = "CustomerHoldReleased"
    hold_id: str
    reason: str


class HoldNoticeAcknowledged(CustomerEvent):
    """The ERP read an outbox entry (a hold placed or released) and acted on it."""

    type: Literal["HoldNoticeAcknowledged"] = "HoldNoticeAcknowledged"
    outbox_id: str
    consumer: str


class PrepaymentReceived(CustomerEvent):
    type: Literal["PrepaymentReceived"] = "PrepaymentReceived"
    payment_id: str
    amount: Money
    received_on: date
    reference: str = ""


class CustomerCreditAllocated(CustomerEvent):
    type: Literal["CustomerCreditAllocated"] = "CustomerCreditAllocated"
    allocation_id: str
    invoice_id: str
    target_case_id: str
    amount: Money


class CustomerCreditAllocationReleased(CustomerEvent):
    type: Literal["CustomerCreditAllocationReleased"] = "CustomerCreditAllocationReleased"
    allocation_id: str
    reason: str


class CustomerDunningPaused(CustomerEvent):
    """Dunning paused for every case of the customer, open now or opened before ``until``."""

    type: Literal["CustomerDunningPaused"] = "CustomerDunningPaused"
    pause_id: str
    until: datetime
    reason: str
    requested_by_role: Role | None = None


class CustomerDunningResumed(CustomerEvent):
    type: Literal["CustomerDunningResumed"] = "CustomerDunningResumed"
    pause_id: str
    reason: str


class CustomerLinksRevoked(CustomerEvent):
    """Every self-service link issued to the customer until now stops working (app/links.py);
    the next notice carries a new one."""

    type: Literal["CustomerLinksRevoked"] = "CustomerLinksRevoked"
    reason: str


AnyCustomerEvent = Annotated[
    Union[RiskGradeChanged, CreditLimitSet, CustomerPutOnHold, CustomerHoldReleased, HoldNoticeAcknowledged,
          PrepaymentReceived, CustomerCreditAllocated, CustomerCreditAllocationReleased, CustomerDunningPaused,
          CustomerDunningResumed, CustomerLinksRevoked],
    Field(discriminator="type"),
]
CUSTOMER_EVENT_ADAPTER: TypeAdapter[AnyCustomerEvent] = TypeAdapter(AnyCustomerEvent)
CUSTOMER_EVENT_TYPES = frozenset(t.__name__ for t in get_args(get_args(AnyCustomerEvent)[0]))


def customer_event_from_record(envelope: dict, data: dict) -> CustomerEvent:
    values = {**data, **envelope}
    values["stream_id"] = values.pop("case_id", values.get("stream_id"))
    return CUSTOMER_EVENT_ADAPTER.validate_python(values)


def is_customer_event(event: object) -> bool:
    return isinstance(event, CustomerEvent)


# -- state ----------------------------------------------------------------------------------------


class Hold(_Frozen):
    hold_id: str
    reason: str
    source: str
    since: datetime


class OutboxItem(_Frozen):
    outbox_id: str  # the id of the event that put the customer on hold or released it
    action: Literal["hold", "release"]
    hold_id: str
    reason: str
    at: datetime
    acked_by: str | None = None
    acked_at: datetime | None = None


class CustomerPause(_Frozen):
    pause_id: str
    until: datetime
    reason: str
    requested_by: str
    requested_by_role: Role | None = None


class Allocation(_Frozen):
    invoice_id: str
    target_case_id: str
    amount: Money
    at: datetime
    released: bool = False


class CustomerState(_Frozen):
    customer_id: str
    stream_id: UUID
    version: int = 0
    updated_at: datetime | None = None
    grade: RiskGrade | None = None  # None: never graded by the scorecard (the imported grade applies)
    previous_grade: RiskGrade | None = None
    score: Decimal | None = None
    factors: tuple[FactorScore, ...] = ()
    graded_at: datetime | None = None
    grade_as_of: date | None = None
    credit_limit: Money | None = None
    hold: Hold | None = None
    outbox: tuple[OutboxItem, ...] = ()
    escalation_refs: tuple[str, ...] = ()  # cases whose escalation already put the customer on hold
    prepayment_ids: tuple[str, ...] = ()
    prepaid: dict[str, Money] = {}  # by currency
    allocations: dict[str, Allocation] = {}
    dunning_pause: CustomerPause | None = None
    links_revoked_at: datetime | None = None  # self-service links issued until then are refused

    def pause_in_force(self, now: datetime) -> CustomerPause | None:
        p = self.dunning_pause
        return p if p is not None and p.until > now else None

    def allocated(self, currency: str) -> Money:
        """Credit allocated to invoices and not given back."""
        return sum((a.amount for a in self.allocations.values() if not a.released and a.amount.currency == currency),
                   Money.zero(currency))

    def own_credit(self, currency: str) -> Money:
        """Prepayments less allocations (the part of the credit this stream holds; it may be
        negative when overpayment excess held on cases was allocated)."""
        return self.prepaid.get(currency, Money.zero(currency)) - self.allocated(currency)

    def outbox_item(self, outbox_id: str) -> OutboxItem | None:
        return next((o for o in self.outbox if o.outbox_id == outbox_id), None)


def evolve_customer(state: CustomerState | None, event: CustomerEvent) -> CustomerState:
    if state is None:
        state = CustomerState(customer_id=event.customer_id, stream_id=event.stream_id)
    if event.version != state.version + 1:
        raise ValueError(f"event version {event.version} does not follow {state.version}")
    changes = _apply(state, event)
    return state.model_copy(update={**changes, "version": event.version, "updated_at": event.occurred_at})


def fold_customer(events: Iterable[CustomerEvent], state: CustomerState | None = None) -> CustomerState | None:
    return reduce(evolve_customer, events, state)


def _apply(s: CustomerState, e: CustomerEvent) -> dict:
    if isinstance(e, RiskGradeChanged):
        return {"grade": e.to_grade, "previous_grade": e.from_grade, "score": e.score, "factors": e.factors,
                "graded_at": e.occurred_at, "grade_as_of": e.as_of}
    if isinstance(e, CreditLimitSet):
        return {"credit_limit": e.limit}
    if isinstance(e, CustomerPutOnHold):
        item = OutboxItem(outbox_id=str(e.event_id), action="hold", hold_id=e.hold_id, reason=e.reason,
                          at=e.occurred_at)
        refs = s.escalation_refs + ((e.case_id_ref,) if e.case_id_ref else ())
        return {"hold": Hold(hold_id=e.hold_id, reason=e.reason, source=e.source, since=e.occurred_at),
                "outbox": s.outbox + (item,), "escalation_refs": refs}
    if isinstance(e, CustomerHoldReleased):
        item = OutboxItem(outbox_id=str(e.event_id), action="release", hold_id=e.hold_id, reason=e.reason,
                          at=e.occurred_at)
        return {"hold": None, "outbox": s.outbox + (item,)}
    if isinstance(e, HoldNoticeAcknowledged):
        return {"outbox": tuple(o.model_copy(update={"acked_by": e.consumer, "acked_at": e.occurred_at})
                                if o.outbox_id == e.outbox_id else o for o in s.outbox)}
    if isinstance(e, CustomerDunningPaused):
        return {"dunning_pause": CustomerPause(pause_id=e.pause_id, until=e.until, reason=e.reason,
                                               requested_by=e.actor, requested_by_role=e.requested_by_role)}
    if isinstance(e, CustomerDunningResumed):
        return {"dunning_pause": None}
    if isinstance(e, CustomerLinksRevoked):
        return {"links_revoked_at": e.occurred_at}
    if isinstance(e, PrepaymentReceived):
        cur = e.amount.currency
        return {"prepayment_ids": s.prepayment_ids + (e.payment_id,),
                "prepaid": {**s.prepaid, cur: s.prepaid.get(cur, Money.zero(cur)) + e.amount}}
    if isinstance(e, CustomerCreditAllocated):
        allocation = Allocation(invoice_id=e.invoice_id, target_case_id=e.target_case_id, amount=e.amount,
                                at=e.occurred_at)
        return {"allocations": {**s.allocations, e.allocation_id: allocation}}
    if isinstance(e, CustomerCreditAllocationReleased):
        old = s.allocations.get(e.allocation_id)
        if old is None:
            return {}
        return {"allocations": {**s.allocations, e.allocation_id: old.model_copy(update={"released": True})}}
    return {}


# -- commands ---------------------------------------------------------------------------------------


class CustomerCommand(cmd.Command):
    customer_id: str = Field(min_length=1, max_length=100)


class AssessRisk(CustomerCommand):
    """A fresh scorecard: records a grade change (and a policy hold) when there is one."""

    kind: Literal["risk_assess"] = "risk_assess"
    assessment: Assessment
    imported_grade: RiskGrade  # the grade the ledger gives a customer the scorecard has not graded yet


class PlaceHold(CustomerCommand):
    kind: Literal["hold_place"] = "hold_place"
    reason: str
    source: Literal["supervisor", "escalation"] = "supervisor"
    case_ref: str | None = None  # the case whose escalation decided it (source escalation)


class ReleaseHold(CustomerCommand):
    kind: Literal["hold_release"] = "hold_release"
    reason: str


class AcknowledgeHoldNotice(CustomerCommand):
    kind: Literal["hold_ack"] = "hold_ack"
    outbox_id: str
    consumer: str = Field(min_length=1, max_length=100)


class SetCreditLimit(CustomerCommand):
    kind: Literal["credit_limit"] = "credit_limit"
    limit: Money | None
    reason: str = ""


class RecordPrepayment(CustomerCommand):
    kind: Literal["prepayment"] = "prepayment"
    payment_id: str = Field(min_length=1, max_length=100)
    amount: Money
    received_on: date
    reference: str = ""


class AllocateCredit(CustomerCommand):
    """Reserve customer credit for an invoice's open case."""

    kind: Literal["credit_allocate"] = "credit_allocate"
    allocation_id: str = Field(min_length=1, max_length=100)
    invoice_id: str
    target_case_id: str
    amount: Money
    held_on_cases: Money  # overpayment excess recorded on the customer's cases (net of reversals)
    owed: Money  # what the target case still owes


class ReleaseAllocation(CustomerCommand):
    kind: Literal["credit_release"] = "credit_release"
    allocation_id: str
    reason: str


class PauseCustomerDunning(CustomerCommand):
    kind: Literal["customer_pause"] = "customer_pause"
    until: datetime
    reason: str


class RevokeLinks(CustomerCommand):
    kind: Literal["links_revoke"] = "links_revoke"
    reason: str


class ResumeCustomerDunning(CustomerCommand):
    kind: Literal["customer_resume"] = "customer_resume"
    reason: str


def available_credit(state: CustomerState | None, currency: str, held_on_cases: Money) -> Money:
    own = state.own_credit(currency) if state is not None else Money.zero(currency)
    return held_on_cases + own


def decide_customer(state: CustomerState | None, command: CustomerCommand, now: datetime,
                    policy: Policy) -> list[CustomerEvent]:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    emit = _CustomerEmitter(state, command, now)
    _HANDLERS[type(command)](emit, command, policy)
    return emit.events


class _CustomerEmitter:
    def __init__(self, state: CustomerState | None, command: CustomerCommand, now: datetime) -> None:
        self.state = state
        self.command = command
        self.now = now
        self.events: list[CustomerEvent] = []
        self.stream_id = customer_stream_id(command.customer_id)

    def __call__(self, event_type: type[CustomerEvent], **data: object) -> CustomerEvent:
        event = event_type(
            event_id=uuid5(self.command.command_id, str(len(self.events))),
            stream_id=self.stream_id,
            version=(self.state.version if self.state else 0) + 1,
            occurred_at=self.now,
            actor=self.command.actor.name,
            customer_id=self.command.customer_id,
            **data,
        )
        self.state = evolve_customer(self.state, event)
        self.events.append(event)
        return event

    def new_id(self, prefix: str) -> str:
        return f"{prefix}-{uuid5(self.command.command_id, prefix).hex[:16]}"


def _approver(c: cmd.Command, what: str) -> None:
    if c.actor.role not in APPROVER_ROLES:
        raise DomainError(f"only a supervisor or finance_manager may {what}", "as")


def _assess(emit: _CustomerEmitter, c: AssessRisk, policy: Policy) -> None:
    a = c.assessment
    if a.customer_id != c.customer_id:
        raise DomainError("the assessment is of another customer", "customer_id")
    s = emit.state
    current = s.grade if s is not None and s.grade is not None else c.imported_grade
    if a.settled >= policy.risk.min_settled and a.grade != current:
        emit(RiskGradeChanged, from_grade=current, to_grade=a.grade, score=a.score, factors=a.factors, as_of=a.as_of)
        current = a.grade
    if emit.state is not None and emit.state.hold is not None:
        return
    rule = policy.risk.hold_at_grade
    if rule is not None and a.settled >= policy.risk.min_settled and GRADE_RANK[current] >= GRADE_RANK[rule]:
        emit(CustomerPutOnHold, hold_id=emit.new_id("HD"), reason=f"policy: risk grade {current.value}",
             source="policy")
    elif policy.risk.hold_over_limit and a.over_limit:
        emit(CustomerPutOnHold, hold_id=emit.new_id("HD"), source="policy",
             reason=f"policy: exposure {a.exposure} {a.currency} above the credit limit {a.credit_limit}")


def _place_hold(emit: _CustomerEmitter, c: PlaceHold, policy: Policy) -> None:
    s = emit.state
    cmd.check_text(c.reason, "reason", required=True)
    if c.source == "escalation":
        if c.case_ref is None:
            raise DomainError("an escalation hold names its case", "case")
        if s is not None and c.case_ref in s.escalation_refs:
            return  # this escalation's hold is already recorded
    else:
        _approver(c, "put a customer on credit hold")
    if s is not None and s.hold is not None:
        if c.source == "escalation":
            return  # already on hold
        raise DomainError(f"customer {c.customer_id} is already on credit hold ({s.hold.reason})", "customer_id")
    emit(CustomerPutOnHold, hold_id=emit.new_id("HD"), reason=c.reason, source=c.source, case_id_ref=c.case_ref)


def _release_hold(emit: _CustomerEmitter, c: ReleaseHold, policy: Policy) -> None:
    _approver(c, "release a credit hold")
    cmd.check_text(c.reason, "reason", required=True)
    s = emit.state
    if s is None or s.hold is None:
        raise DomainError(f"customer {c.customer_id} is not on credit hold", "customer_id")
    emit(CustomerHoldReleased, hold_id=s.hold.hold_id, reason=c.reason)


def _ack(emit: _CustomerEmitter, c: AcknowledgeHoldNotice, policy: Policy) -> None:
    s = emit.state
    item = s.outbox_item(c.outbox_id) if s is not None else None
    if item is None:
        raise DomainError(f"unknown outbox entry {shown(c.outbox_id)} for customer {c.customer_id}", "outbox_id")
    if item.acked_at is not None:
        return  # acknowledged already
    cmd.check_text(c.consumer, "consumer", required=True)
    emit(HoldNoticeAcknowledged, outbox_id=c.outbox_id, consumer=c.consumer)


def _limit(emit: _CustomerEmitter, c: SetCreditLimit, policy: Policy) -> None:
    _approver(c, "set a credit limit")
    if c.limit is not None and not c.limit.is_positive:
        raise DomainError(f"must be positive, got {c.limit.amount}", "limit")
    s = emit.state
    if s is not None and s.credit_limit == c.limit:
        return
    cmd.check_text(c.reason, "reason", required=True)
    emit(CreditLimitSet, limit=c.limit, reason=c.reason)


def _prepayment(emit: _CustomerEmitter, c: RecordPrepayment, policy: Policy) -> None:
    s = emit.state
    if s is not None and c.payment_id in s.prepayment_ids:
        return  # the same payment again
    if not c.amount.is_positive:
        raise DomainError(f"must be positive, got {c.amount.amount}", "amount")
    if c.received_on > emit.now.date():
        raise DomainError(f"{c.received_on} is in the future", "received_on")
    cmd.check_text(c.reference, "reference")
    emit(PrepaymentReceived, payment_id=c.payment_id, amount=c.amount, received_on=c.received_on,
         reference=c.reference)


def _allocate(emit: _CustomerEmitter, c: AllocateCredit, policy: Policy) -> None:
    s = emit.state
    if s is not None and c.allocation_id in s.allocations:
        return  # already allocated
    currency = c.amount.currency
    if not c.amount.is_positive:
        raise DomainError(f"must be positive, got {c.amount.amount}", "amount")
    if c.owed.currency != currency or c.held_on_cases.currency != currency:
        raise DomainError(f"invoice {c.invoice_id} is in {c.owed.currency}, the credit in {currency}", "currency")
    available = available_credit(s, currency, c.held_on_cases)
    if c.amount > available:
        raise DomainError(f"{c.amount} exceeds the customer's credit ({available if available.is_positive else Money.zero(currency)})",
                          "amount")
    if c.amount > c.owed:
        raise DomainError(f"{c.amount} exceeds what invoice {c.invoice_id} still owes ({c.owed})", "amount")
    emit(CustomerCreditAllocated, allocation_id=c.allocation_id, invoice_id=c.invoice_id,
         target_case_id=c.target_case_id, amount=c.amount)


def _release_allocation(emit: _CustomerEmitter, c: ReleaseAllocation, policy: Policy) -> None:
    s = emit.state
    allocation = s.allocations.get(c.allocation_id) if s is not None else None
    if allocation is None:
        raise DomainError(f"unknown allocation {shown(c.allocation_id)}", "allocation_id")
    if allocation.released:
        return
    emit(CustomerCreditAllocationReleased, allocation_id=c.allocation_id, reason=c.reason[:500])


def _pause(emit: _CustomerEmitter, c: PauseCustomerDunning, policy: Policy) -> None:
    """The customer-wide pause (each case's own decider applies the collector's maximum and approval)."""
    cmd.check_code(c.reason, "reason")
    if c.until <= emit.now:
        raise DomainError(f"{c.until.isoformat()} is not in the future", "until")
    if c.until - emit.now > policy.pause.max:
        raise DomainError(f"{c.until.isoformat()} is beyond the longest pause the policy allows "
                          f"(until {(emit.now + policy.pause.max).isoformat()})", "until")
    emit(CustomerDunningPaused, pause_id=emit.new_id("CP"), until=c.until, reason=c.reason,
         requested_by_role=c.actor.role)


def _resume(emit: _CustomerEmitter, c: ResumeCustomerDunning, policy: Policy) -> None:
    cmd.check_text(c.reason, "reason", required=True)
    pause = emit.state.pause_in_force(emit.now) if emit.state else None
    if pause is None:
        raise DomainError(f"dunning of customer {c.customer_id} is not paused", "customer_id")
    emit(CustomerDunningResumed, pause_id=pause.pause_id, reason=c.reason)


def _revoke_links(emit: _CustomerEmitter, c: RevokeLinks, policy: Policy) -> None:
    if c.actor.role is None:
        raise DomainError("the customer's links are revoked by a person", "as")
    cmd.check_text(c.reason, "reason", required=True)
    emit(CustomerLinksRevoked, reason=c.reason)


_HANDLERS = {
    RevokeLinks: _revoke_links,
    PauseCustomerDunning: _pause,
    ResumeCustomerDunning: _resume,
    AssessRisk: _assess,
    PlaceHold: _place_hold,
    ReleaseHold: _release_hold,
    AcknowledgeHoldNotice: _ack,
    SetCreditLimit: _limit,
    RecordPrepayment: _prepayment,
    AllocateCredit: _allocate,
    ReleaseAllocation: _release_allocation,
}
