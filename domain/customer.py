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
from functools import lru_cache, reduce
from typing import Annotated, Iterable, Literal, Union, get_args
from uuid import UUID, uuid5

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from domain import commands as cmd
from domain.authority import approval_authority, counted_alone, may_act_alone
from domain.errors import DomainError, shown
from domain.money import Money
from domain.policy import APPROVER_ROLES, Policy, RiskGrade, Role
from domain.risk import GRADE_RANK, Assessment, FactorScore

_CUSTOMER_NAMESPACE = UUID("0c6b9a52-1f3e-5d7a-8e24-93b1f6c0d4a8")
CUSTOMER_ENVELOPE = frozenset({"type", "event_id", "stream_id", "version", "occurred_at", "actor"})


@lru_cache(maxsize=4096)  # asked at every command of a customer (the backtest rescores thousands)
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
    request_id: str | None = None  # the advance request it pays


class AdvanceRequested(CustomerEvent):
    """A deposit or down payment asked of the customer before delivery (a pro-forma request):
    not a receivable; once paid it is an advance receipt held on the customer."""

    type: Literal["AdvanceRequested"] = "AdvanceRequested"
    request_id: str
    amount: Money
    due_date: date
    reference: str
    order_id: str | None = None


class ShipmentHeld(CustomerEvent):
    """Do not ship this order: its advance request is unpaid (published in the outbox for the ERP)."""

    type: Literal["ShipmentHeld"] = "ShipmentHeld"
    hold_id: str
    order_id: str
    request_id: str
    reason: str


class ShipmentReleased(CustomerEvent):
    type: Literal["ShipmentReleased"] = "ShipmentReleased"
    hold_id: str
    order_id: str
    request_id: str
    reason: str


class CustomerCreditAllocated(CustomerEvent):
    """Credit spent on an invoice. ``target_case_id`` empty: the invoice has no case and the
    allocation is final (the ledger's payment row records it); ``advance_id``: the advance it
    draws on (none: the oldest advances first, then overpayment excess)."""

    type: Literal["CustomerCreditAllocated"] = "CustomerCreditAllocated"
    allocation_id: str
    invoice_id: str
    target_case_id: str
    amount: Money
    advance_id: str | None = None


class AdvanceRefundRequested(CustomerEvent):
    """A refund of an advance above the single-person threshold, waiting for a second person."""

    type: Literal["AdvanceRefundRequested"] = "AdvanceRefundRequested"
    refund_id: str
    advance_id: str
    amount: Money
    reason: str
    refunded_alone: Money | None = None  # already refunded from the advance alone: it counted against the threshold


class AdvanceRefunded(CustomerEvent):
    """Part or all of an advance paid back to the customer (the liability ends for that part)."""

    type: Literal["AdvanceRefunded"] = "AdvanceRefunded"
    refund_id: str
    advance_id: str
    amount: Money
    reason: str
    requested_by: str
    approved_by: str | None = None  # None: within the single-person threshold
    approval_reason: str | None = None  # why the second person approved it


class AdvanceRefundRejected(CustomerEvent):
    """A refund waiting for a second person was turned down (or withdrawn by whoever asked for
    it): the amount it reserved is held on the advance again."""

    type: Literal["AdvanceRefundRejected"] = "AdvanceRefundRejected"
    refund_id: str
    advance_id: str
    amount: Money
    reason: str  # why it was turned down
    requested_by: str


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
          CustomerDunningResumed, AdvanceRefundRequested, AdvanceRefunded, AdvanceRequested, ShipmentHeld,
          ShipmentReleased, CustomerLinksRevoked, AdvanceRefundRejected],
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
    drawn: tuple[tuple[str, Decimal], ...] = ()  # (advance id, amount) the allocation took from advances


class Advance(_Frozen):
    """One advance receipt on the register (a prepayment): a contract liability until applied."""

    advance_id: str
    amount: Money
    received_on: date
    reference: str = ""
    source: str = "prepayment"
    applied: Decimal = Decimal(0)
    refunded: Decimal = Decimal(0)
    pending_refund: Decimal = Decimal(0)
    refunded_alone: Decimal = Decimal(0)  # refunded without a second person: adds up against the threshold

    @property
    def remaining(self) -> Money:
        return Money.of(self.amount.amount - self.applied - self.refunded, self.amount.currency)

    @property
    def refundable(self) -> Money:
        return Money.of(self.remaining.amount - self.pending_refund, self.amount.currency)

    @property
    def status(self) -> str:
        if self.remaining.amount == 0:
            return "refunded" if self.refunded > 0 and self.applied == 0 else "applied"
        return "held" if self.applied == 0 else "partly applied"


class AdvanceRequest(_Frozen):
    request_id: str
    amount: Money
    due_date: date
    reference: str
    order_id: str | None = None
    requested_at: datetime
    paid: Decimal = Decimal(0)
    hold_id: str | None = None  # the order's shipment hold while it is unpaid

    @property
    def outstanding(self) -> Money:
        return Money.of(self.amount.amount - self.paid, self.amount.currency)

    def status(self, day: date) -> str:
        if not self.outstanding.is_positive:
            return "paid"
        return "overdue" if day > self.due_date else "open"


class PendingRefund(_Frozen):
    refund_id: str
    advance_id: str
    amount: Money
    reason: str
    requested_by: str
    at: datetime
    approved_by: str | None = None  # in approved_refunds: the second person
    approved_at: datetime | None = None
    rejected_by: str | None = None  # in rejected_refunds: who turned it down
    rejected_at: datetime | None = None
    refunded_alone: Money | None = None  # as requested: why it waits (shown to the approver)


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
    advances: dict[str, Advance] = {}  # the register, by advance id (a prepayment's payment id)
    pending_refunds: dict[str, PendingRefund] = {}
    refund_ids: tuple[str, ...] = ()  # refunds decided (paid out)
    approved_refunds: dict[str, PendingRefund] = {}  # refunds that waited for, and got, a second person's approval
    rejected_refunds: dict[str, PendingRefund] = {}  # refunds that waited and were turned down
    requests: dict[str, AdvanceRequest] = {}  # advance requests, by request id
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
        pending = sum((r.amount.amount for r in self.pending_refunds.values() if r.amount.currency == currency),
                      Decimal(0))
        return self.prepaid.get(currency, Money.zero(currency)) - self.allocated(currency) - Money.of(pending, currency)

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
        advance = Advance(advance_id=e.payment_id, amount=e.amount, received_on=e.received_on, reference=e.reference,
                          source=f"advance request {e.request_id}" if e.request_id else "prepayment")
        requests = s.requests
        if e.request_id in requests:
            r = requests[e.request_id]
            requests = {**requests, e.request_id: r.model_copy(update={"paid": r.paid + e.amount.amount})}
        return {"prepayment_ids": s.prepayment_ids + (e.payment_id,),
                "prepaid": {**s.prepaid, cur: s.prepaid.get(cur, Money.zero(cur)) + e.amount},
                "advances": {**s.advances, e.payment_id: advance}, "requests": requests}
    if isinstance(e, (ShipmentHeld, ShipmentReleased)):
        held = isinstance(e, ShipmentHeld)
        item = OutboxItem(outbox_id=str(e.event_id), action="hold" if held else "release", hold_id=e.hold_id,
                          reason=e.reason, at=e.occurred_at)
        r = s.requests[e.request_id]
        return {"outbox": s.outbox + (item,),
                "requests": {**s.requests, e.request_id: r.model_copy(update={"hold_id": e.hold_id if held else None})}}
    if isinstance(e, AdvanceRequested):
        request = AdvanceRequest(request_id=e.request_id, amount=e.amount, due_date=e.due_date, reference=e.reference,
                                 order_id=e.order_id, requested_at=e.occurred_at)
        return {"requests": {**s.requests, e.request_id: request}}
    if isinstance(e, CustomerCreditAllocated):
        drawn = draw_on_advances(s.advances, e.amount, e.advance_id)
        allocation = Allocation(invoice_id=e.invoice_id, target_case_id=e.target_case_id, amount=e.amount,
                                at=e.occurred_at, drawn=drawn)
        return {"allocations": {**s.allocations, e.allocation_id: allocation},
                "advances": _moved(s.advances, drawn, +1)}
    if isinstance(e, CustomerCreditAllocationReleased):
        old = s.allocations.get(e.allocation_id)
        if old is None:
            return {}
        return {"allocations": {**s.allocations, e.allocation_id: old.model_copy(update={"released": True})},
                "advances": _moved(s.advances, old.drawn, -1)}
    if isinstance(e, AdvanceRefundRequested):
        advance = s.advances[e.advance_id]
        pending = PendingRefund(refund_id=e.refund_id, advance_id=e.advance_id, amount=e.amount, reason=e.reason,
                                requested_by=e.actor, at=e.occurred_at, refunded_alone=e.refunded_alone)
        return {"pending_refunds": {**s.pending_refunds, e.refund_id: pending},
                "advances": {**s.advances, e.advance_id: advance.model_copy(
                    update={"pending_refund": advance.pending_refund + e.amount.amount})}}
    if isinstance(e, AdvanceRefundRejected):
        advance = s.advances[e.advance_id]
        pending = s.pending_refunds[e.refund_id]
        return {"pending_refunds": {k: v for k, v in s.pending_refunds.items() if k != e.refund_id},
                "rejected_refunds": {**s.rejected_refunds, e.refund_id: pending.model_copy(
                    update={"rejected_by": e.actor, "rejected_at": e.occurred_at})},
                "advances": {**s.advances, e.advance_id: advance.model_copy(
                    update={"pending_refund": advance.pending_refund - e.amount.amount})}}
    if isinstance(e, AdvanceRefunded):
        advance = s.advances[e.advance_id]
        pending = s.pending_refunds.get(e.refund_id)
        left = {k: v for k, v in s.pending_refunds.items() if k != e.refund_id}
        update = {"refunded": advance.refunded + e.amount.amount}
        if e.approved_by is None:
            update["refunded_alone"] = advance.refunded_alone + e.amount.amount
        if pending is not None:
            update["pending_refund"] = advance.pending_refund - pending.amount.amount
        cur = e.amount.currency
        approved = s.approved_refunds
        if pending is not None and e.approved_by is not None:
            approved = {**approved, e.refund_id: pending.model_copy(
                update={"approved_by": e.approved_by, "approved_at": e.occurred_at})}
        return {"pending_refunds": left, "refund_ids": s.refund_ids + (e.refund_id,), "approved_refunds": approved,
                "prepaid": {**s.prepaid, cur: s.prepaid.get(cur, Money.zero(cur)) - e.amount},
                "advances": {**s.advances, e.advance_id: advance.model_copy(update=update)}}
    return {}


def draw_on_advances(advances: dict[str, Advance], amount: Money,
                     advance_id: str | None) -> tuple[tuple[str, Decimal], ...]:
    """Which advances an allocation of ``amount`` draws on: the one named, else the oldest
    first (received, then id); what they cannot cover came from overpayment excess."""
    if advance_id is not None:
        advance = advances.get(advance_id)
        return ((advance_id, min(amount.amount, advance.remaining.amount)),) if advance is not None else ()
    drawn: list[tuple[str, Decimal]] = []
    need = amount.amount
    for a in sorted(advances.values(), key=lambda a: (a.received_on, a.advance_id)):
        if need <= 0:
            break
        if a.amount.currency != amount.currency:
            continue
        take = min(need, a.refundable.amount)
        if take > 0:
            drawn.append((a.advance_id, take))
            need -= take
    return tuple(drawn)


def _moved(advances: dict[str, Advance], drawn: tuple[tuple[str, Decimal], ...], sign: int) -> dict[str, Advance]:
    out = dict(advances)
    for advance_id, amount in drawn:
        a = out[advance_id]
        out[advance_id] = a.model_copy(update={"applied": a.applied + sign * amount})
    return out


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
    request_id: str | None = None  # the advance request it pays


class RequestAdvance(CustomerCommand):
    kind: Literal["advance_request"] = "advance_request"
    request_id: str = Field(min_length=1, max_length=100)
    amount: Money
    due_date: date
    reference: str
    order_id: str | None = None


class AllocateCredit(CustomerCommand):
    """Reserve customer credit for an invoice's open case."""

    kind: Literal["credit_allocate"] = "credit_allocate"
    allocation_id: str = Field(min_length=1, max_length=100)
    invoice_id: str
    target_case_id: str
    amount: Money
    held_on_cases: Money  # overpayment excess recorded on the customer's cases (net of reversals)
    owed: Money  # what the target case still owes
    advance_id: str | None = None  # draw on this advance only


class RequestAdvanceRefund(CustomerCommand):
    """Pay part or all of an advance back: at once within the single-person threshold, else
    it waits for a second person (four eyes)."""

    kind: Literal["advance_refund"] = "advance_refund"
    refund_id: str = Field(min_length=1, max_length=100)
    advance_id: str
    amount: Money
    reason: str


class ApproveAdvanceRefund(CustomerCommand):
    kind: Literal["advance_refund_approve"] = "advance_refund_approve"
    refund_id: str
    reason: str = ""  # why it is approved (the approvals inbox asks for it)


class RejectAdvanceRefund(CustomerCommand):
    """Turn down a refund waiting for a second person (or withdraw one's own request)."""

    kind: Literal["advance_refund_reject"] = "advance_refund_reject"
    refund_id: str
    reason: str


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
    if c.request_id is not None:
        request = s.requests.get(c.request_id) if s is not None else None
        if request is None:
            raise DomainError(f"customer {c.customer_id} has no advance request {shown(c.request_id)}", "request")
        if request.amount.currency != c.amount.currency:
            raise DomainError(f"advance request {c.request_id} is in {request.amount.currency}", "currency")
        if c.amount > request.outstanding:
            raise DomainError(f"{c.amount} exceeds what advance request {c.request_id} still asks "
                              f"({request.outstanding})", "amount")
    emit(PrepaymentReceived, payment_id=c.payment_id, amount=c.amount, received_on=c.received_on,
         reference=c.reference, request_id=c.request_id)
    request = emit.state.requests.get(c.request_id) if c.request_id is not None else None
    if request is not None and request.hold_id is not None and not request.outstanding.is_positive:
        emit(ShipmentReleased, hold_id=request.hold_id, order_id=request.order_id, request_id=request.request_id,
             reason=f"advance request {request.request_id} paid: order {request.order_id} may ship")


def _request_advance(emit: _CustomerEmitter, c: RequestAdvance, policy: Policy) -> None:
    s = emit.state
    if s is not None and c.request_id in s.requests:
        return  # the same request again
    if not c.amount.is_positive:
        raise DomainError(f"must be positive, got {c.amount.amount}", "amount")
    cmd.check_text(c.reference, "reference", required=True)
    if c.order_id is not None:
        cmd.check_text(c.order_id, "order", required=True)
    emit(AdvanceRequested, request_id=c.request_id, amount=c.amount, due_date=c.due_date, reference=c.reference,
         order_id=c.order_id)
    if c.order_id is not None and policy.advances.block_shipment:
        emit(ShipmentHeld, hold_id=emit.new_id("SH"), order_id=c.order_id, request_id=c.request_id,
             reason=f"advance request {c.request_id} unpaid: do not ship order {c.order_id}")


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
    if c.advance_id is not None:
        advance = s.advances.get(c.advance_id) if s is not None else None
        if advance is None:
            raise DomainError(f"customer {c.customer_id} has no advance {shown(c.advance_id)}", "advance_id")
        if advance.amount.currency != currency:
            raise DomainError(f"invoice {c.invoice_id} is in {currency}, advance {c.advance_id} in "
                              f"{advance.amount.currency}", "currency")
        available = available.min(advance.refundable)
    if c.amount > available:
        left = available if available.is_positive else Money.zero(currency)
        of = f"what advance {c.advance_id} still holds" if c.advance_id is not None else "the customer's credit"
        raise DomainError(f"{c.amount} exceeds {of} ({left})", "amount")
    if c.amount > c.owed:
        raise DomainError(f"{c.amount} exceeds what invoice {c.invoice_id} still owes ({c.owed})", "amount")
    emit(CustomerCreditAllocated, allocation_id=c.allocation_id, invoice_id=c.invoice_id,
         target_case_id=c.target_case_id, amount=c.amount, advance_id=c.advance_id)


def _refund(emit: _CustomerEmitter, c: RequestAdvanceRefund, policy: Policy) -> None:
    s = emit.state
    if s is not None and (c.refund_id in s.refund_ids or c.refund_id in s.pending_refunds
                          or c.refund_id in s.rejected_refunds):
        return  # the same request again
    advance = s.advances.get(c.advance_id) if s is not None else None
    if advance is None:
        raise DomainError(f"customer {c.customer_id} has no advance {shown(c.advance_id)}", "advance_id")
    if not c.amount.is_positive:
        raise DomainError(f"must be positive, got {c.amount.amount}", "amount")
    if c.amount.currency != advance.amount.currency:
        raise DomainError(f"advance {c.advance_id} is in {advance.amount.currency}, not {c.amount.currency}",
                          "currency")
    if c.amount > advance.refundable:
        raise DomainError(f"{c.amount} exceeds what advance {c.advance_id} still holds ({advance.refundable})",
                          "amount")
    cmd.check_text(c.reason, "reason", required=True)
    alone = Money.of(advance.refunded_alone, advance.amount.currency)
    if may_act_alone(policy, c.amount, alone):
        emit(AdvanceRefunded, refund_id=c.refund_id, advance_id=c.advance_id, amount=c.amount, reason=c.reason,
             requested_by=c.actor.name)
    else:
        emit(AdvanceRefundRequested, refund_id=c.refund_id, advance_id=c.advance_id, amount=c.amount,
             reason=c.reason, refunded_alone=counted_alone(policy, alone))


def _approve_refund(emit: _CustomerEmitter, c: ApproveAdvanceRefund, policy: Policy) -> None:
    s = emit.state
    if s is not None and c.refund_id in s.refund_ids:
        return  # approved already
    pending = s.pending_refunds.get(c.refund_id) if s is not None else None
    if pending is None:
        raise DomainError(f"no refund {shown(c.refund_id)} waits for approval", "refund_id")
    authority = approval_authority(c.actor, "refund", Role.supervisor, pending.requested_by, pending.amount, policy)
    if not authority.approve:
        raise DomainError(authority.reason, "as")
    emit(AdvanceRefunded, refund_id=c.refund_id, advance_id=pending.advance_id, amount=pending.amount,
         reason=pending.reason, requested_by=pending.requested_by, approved_by=c.actor.name,
         approval_reason=c.reason or None)


def _reject_refund(emit: _CustomerEmitter, c: RejectAdvanceRefund, policy: Policy) -> None:
    s = emit.state
    if s is not None and c.refund_id in s.rejected_refunds:
        return  # turned down already
    pending = s.pending_refunds.get(c.refund_id) if s is not None else None
    if pending is None:
        raise DomainError(f"no refund {shown(c.refund_id)} waits for approval", "refund_id")
    cmd.check_text(c.reason, "reason", required=True)
    withdrawn = c.actor.name == pending.requested_by
    if not withdrawn and c.actor.role not in (Role.supervisor, Role.finance_manager):
        raise DomainError("only a supervisor or a finance manager may turn down a refund "
                          "(or whoever asked for it, to withdraw it)", "as")
    emit(AdvanceRefundRejected, refund_id=c.refund_id, advance_id=pending.advance_id, amount=pending.amount,
         reason=c.reason, requested_by=pending.requested_by)


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
    RequestAdvanceRefund: _refund,
    RequestAdvance: _request_advance,
    ApproveAdvanceRefund: _approve_refund,
    RejectAdvanceRefund: _reject_refund,
}
