"""Case state and ``evolve``: how each event changes it. Pure and total."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import Enum
from functools import reduce
from typing import Iterable, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from domain import events as ev
from domain.events import Customer, EscalationDecision, Instalment, OpenReason, Outcome
from domain.interest import Reduction
from domain.money import Money
from domain.policy import RiskGrade, Role


class CaseStatus(str, Enum):
    open = "open"
    disputed = "disputed"
    promised = "promised"
    on_plan = "on_plan"
    escalated = "escalated"
    awaiting_approval = "awaiting_approval"
    with_factor = "with_factor"  # assigned without recourse: the factor collects it
    paid = "paid"
    resolved = "resolved"
    written_off = "written_off"
    cancelled = "cancelled"


TERMINAL = frozenset({CaseStatus.paid, CaseStatus.resolved, CaseStatus.written_off, CaseStatus.cancelled})


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class DunningClock(_Frozen):
    """The ladder's timer. While dunning is paused the due time is held, and on
    resume the remaining time is restored: a rejected dispute resumes the ladder
    where it stopped instead of restarting it."""

    next_at: datetime | None = None
    kind: Literal["remind", "escalate"] | None = None
    held_due: datetime | None = None
    held_since: datetime | None = None
    shift: timedelta = timedelta(0)  # how far pauses have pushed the ladder

    @property
    def paused(self) -> bool:
        return self.held_due is not None

    def pause(self, at: datetime) -> DunningClock:
        if self.next_at is None:
            return self
        return self.model_copy(update={"next_at": None, "held_due": self.next_at, "held_since": at})

    def resume(self, at: datetime, immediately: bool = False) -> DunningClock:
        if self.held_due is None or self.held_since is None:
            return self
        remaining = max(self.held_due - self.held_since, timedelta(0))
        next_at = at if immediately else at + remaining
        return self.model_copy(
            update={
                "next_at": next_at,
                "held_due": None,
                "held_since": None,
                "shift": self.shift + (next_at - self.held_due),
            }
        )

    def set(self, next_at: datetime | None, kind: Literal["remind", "escalate"] | None) -> DunningClock:
        return self.model_copy(update={"next_at": next_at, "kind": kind if next_at else None})

    def stop(self) -> DunningClock:
        return self.model_copy(update={"next_at": None, "kind": None, "held_due": None, "held_since": None})


class Settled(_Frozen):
    applied: Money  # reduced the balance
    excess: Money  # left with the customer as credit
    # what the payment was (its id is an idempotency key bound to this; None: recorded before)
    amount: Money | None = None
    received_on: date | None = None
    reference: str | None = None
    small_balance: Money | None = None  # what the tolerance wrote off with it (undone with a reversal)


class Dispute(_Frozen):
    dispute_id: str
    reason: str
    amount: Money
    owner: str
    opened_at: datetime
    resolve_by: datetime
    overdue: bool = False
    escalated_to: Role | None = None  # past its deadline: the tier that owns it now
    escalation_due_at: datetime | None = None  # that tier's SLA (None: at the top, no further deadline)


class Promise(_Frozen):
    promise_id: str
    amount: Money
    promised_date: date
    check_at: datetime
    paid_since: Money


class Escalation(_Frozen):
    escalation_id: str
    reason: str
    tier: Role
    since: datetime
    sla_due_at: datetime | None
    decision: EscalationDecision | None = None
    decided_by: str | None = None
    decided_at: datetime | None = None
    # the balance the decision was about, or when it was withdrawn (later payments do not change it)
    balance_decided: Money | None = None
    # closed with the case before anyone decided it (CaseClosed): no longer waits for anyone
    withdrawn_at: datetime | None = None
    withdrawn_by: str | None = None
    withdrawn_reason: str = ""

    @property
    def pending(self) -> bool:
        return self.decision is None and self.withdrawn_at is None


class Plan(_Frozen):
    plan_id: str
    instalments: tuple[Instalment, ...]
    paid_seqs: tuple[int, ...] = ()
    paid_toward_next: Money
    grace: timedelta
    status: Literal["proposed", "approved", "accepted", "rejected", "defaulted", "completed"]
    requires_approval: bool
    approval_id: str | None
    proposed_by: str
    expires_at: datetime | None = None  # an offer not accepted by then lapses (None: before offers lapsed)

    @property
    def open_offer(self) -> bool:
        return self.status in ("proposed", "approved")

    def next_unpaid(self) -> Instalment | None:
        return next((i for i in self.instalments if i.seq not in self.paid_seqs), None)


class Approval(_Frozen):
    approval_id: str
    kind: Literal["write_off", "plan", "credit", "cancellation", "pause", "waiver"]
    amount: Money
    reason: str
    requested_by: str
    requested_at: datetime
    tier: Role
    sla_due_at: datetime | None
    status: Literal["pending", "approved", "rejected", "withdrawn"] = "pending"
    decided_by: str | None = None
    decided_at: datetime | None = None
    decision_reason: str = ""
    reduced_alone: Money | None = None  # a reduction's: what the case was reduced by alone before it


class Pause(_Frozen):
    """A deliberate dunning pause: no notices until ``until``."""

    pause_id: str
    until: datetime
    reason: str
    scope: Literal["case", "customer"]
    requested_by: str
    since: datetime
    approval_id: str | None = None


class PauseRequest(_Frozen):
    """A pause waiting for a supervisor's approval (beyond the collector's maximum)."""

    approval_id: str
    pause_id: str
    until: datetime
    reason: str
    scope: Literal["case", "customer"]
    requested_by: str


class Insurance(_Frozen):
    """The case's credit insurance: the insurer, the decided deadlines and how far it got."""

    insurer_id: str
    insurer_name: str
    insurer_email: str
    policy_number: str
    indemnity_percent: Decimal
    notify_at: datetime
    notify_by: datetime
    extension_until: date
    claim_waiting: timedelta
    notice_attempts: int = 0
    notified_at: datetime | None = None
    notified_in_time: bool | None = None
    claim_at: datetime | None = None
    claim_id: str | None = None
    claim_amount: Money | None = None
    expected_indemnity: Money | None = None
    indemnity: Money | None = None

    @property
    def cover_lost(self) -> bool:
        return self.notified_in_time is False

    @property
    def claim_pending(self) -> bool:
        """A claim is filed and the insurer has not paid yet."""
        return self.claim_id is not None and self.indemnity is None


class Financing(ev.FactorTerms):
    """The invoice's assignment to a factor (InvoiceAssignedToFactor) and how far it got."""

    assigned_at: datetime
    # assigned: the factor holds it; collected: paid to the factor; defaulted: the factor's loss
    # (without recourse); returned: the factor gave it back (with recourse), the company dunns it
    status: Literal["assigned", "collected", "defaulted", "returned"] = "assigned"
    default_reported: Literal["escalated", "written_off"] | None = None
    default_amount: Money | None = None  # the balance reported in default
    factor_notified: bool = False


class DiscountOffer(ev.DiscountTerms):
    """The early-payment discount a notice offered (EarlyPaymentDiscountOffered)."""

    seq: int


class CaseState(_Frozen):
    case_id: UUID
    version: int
    invoice_id: str
    customer: Customer
    risk_grade: RiskGrade
    currency: str
    original_amount: Money
    balance: Money
    issue_date: date
    due_date: date
    opened_at: datetime
    updated_at: datetime
    reason: OpenReason
    policy_version: str
    ladder_steps: int
    assignee: str | None = None
    level: int = 0  # ladder steps attempted
    notices: int = 0  # notices attempted, including repeats: the next seq
    clock: DunningClock = DunningClock()
    contact_problem: bool = False
    # paid before the case opened and still settling the invoice: an ERP amendment below what was
    # paid can make part of it the customer's credit (InvoiceAmended.credit beyond the payments)
    paid_before_open: Money
    payments: Money
    credits: Money
    write_offs: Money
    fees: Money
    customer_credit: Money  # overpayments left with the customer
    payment_ids: tuple[str, ...] = ()
    reversed_payment_ids: tuple[str, ...] = ()
    settled_by_payment: dict[str, Settled] = {}  # what each payment did (for reversals)
    dispute: Dispute | None = None
    disputes_opened: int = 0
    promise: Promise | None = None
    promises_kept: int = 0
    promises_broken: int = 0
    escalation: Escalation | None = None  # the latest one
    past_escalations: tuple[Escalation, ...] = ()
    escalations: int = 0
    referral: str | None = None
    credit_hold: bool = False
    plan: Plan | None = None
    plans_accepted: int = 0
    approvals: tuple[Approval, ...] = ()
    outcome: Outcome | None = None
    closed_at: datetime | None = None
    plans_defaulted: int = 0
    insurance: Insurance | None = None
    # customer credit applied to this invoice and still settling it (an ERP amendment below it gives
    # part back: InvoiceAmended.credit_applied) (None: none)
    credit_applied: Money | None = None
    indemnity: Money | None = None  # paid by the credit insurer (None: none)
    allocation_ids: tuple[str, ...] = ()
    pause: Pause | None = None  # a deliberate dunning pause in force
    advance: ev.AdvanceFacts | None = None  # a case of kind advance: an overdue advance request
    pause_request: PauseRequest | None = None  # waiting for approval
    pauses: int = 0
    interest: Money | None = None  # interest charged (None: none)
    interest_accrued_to: date | None = None
    compensation: Money | None = None  # fixed compensation charged (None: none)
    interest_waived: Money | None = None  # of interest and compensation, waived (None: none)
    # Reductions without a second person (credits, waivers, the tolerance's write-offs): they add up
    # against the single-person threshold (domain/authority.py). None: none.
    reduced_alone: Money | None = None
    reduction_approved: bool = False  # the last event approved a reduction: the next one is it
    principal_reductions: tuple[Reduction, ...] = ()  # what lowered the principal, dated (interest)
    # What the ERP changed (invoice and customer sync): None until it changes something.
    invoice_amount: Money | None = None  # the ERP's current invoice amount (None: the original)
    credit_note_ids: tuple[str, ...] = ()
    erp_adjustments: Money | None = None  # amendments and credit notes; positive reduced the balance
    # what the ERP booked as paid outside the engine, on the case: its next export's paid is compared
    # with it (with erp_paid_before_open), so nothing lowers it
    paid_outside: Money | None = None
    # of it, what still settles the invoice: what it took off the balance, less what an ERP amendment
    # below it gave back as credit (InvoiceAmended.paid_outside). None: as much as paid_outside (a
    # state carried over from before this figure: on an open case, all it booked took off the balance)
    paid_outside_settling: Money | None = None
    erp_paid_before_open: Money | None = None  # what it had booked before the case opened (in paid_before_open)
    payment_reports: tuple[str, ...] = ()  # what the customer said was paid (payment_report_key)
    # Early-cash instruments (docs/FINANCING.md): None until used.
    financing: Financing | None = None  # the invoice's assignment to a factor
    discount_offer: DiscountOffer | None = None  # the early-payment discount a notice offered
    discounts: Money | None = None  # early-payment discount granted
    factored: Money | None = None  # settled in the factor's hands, or its non-recourse loss

    # -- derived ------------------------------------------------------------
    @property
    def credit_applied_total(self) -> Money:
        return self.credit_applied or Money.zero(self.currency)

    @property
    def current_invoice_amount(self) -> Money:
        return self.invoice_amount or self.original_amount

    @property
    def erp_adjustments_total(self) -> Money:
        return self.erp_adjustments or Money.zero(self.currency)

    @property
    def paid_outside_total(self) -> Money:
        return self.paid_outside or Money.zero(self.currency)

    @property
    def paid_outside_settling_total(self) -> Money:
        return self.paid_outside_total if self.paid_outside_settling is None else self.paid_outside_settling

    @property
    def erp_booked_total(self) -> Money:
        """Everything the ERP has booked as paid on the invoice: before the case opened, and since."""
        return self.paid_outside_total + (self.erp_paid_before_open or Money.zero(self.currency))

    @property
    def indemnity_total(self) -> Money:
        return self.indemnity or Money.zero(self.currency)

    @property
    def kind(self) -> str:
        """``advance`` for an overdue advance request (invoice_id is the request id), else ``invoice``."""
        return "advance" if self.advance is not None else "invoice"

    @property
    def closed(self) -> bool:
        return self.outcome is not None

    @property
    def pending_approvals(self) -> tuple[Approval, ...]:
        return tuple(a for a in self.approvals if a.status == "pending")

    @property
    def escalation_pending(self) -> bool:
        return self.escalation is not None and self.escalation.pending

    @property
    def status(self) -> CaseStatus:
        if self.outcome is not None:
            return CaseStatus(self.outcome.value)
        if self.with_factor:
            return CaseStatus.with_factor
        if self.pending_approvals:
            return CaseStatus.awaiting_approval
        if self.escalation_pending or self.referral:
            return CaseStatus.escalated
        if self.dispute is not None:
            return CaseStatus.disputed
        if self.plan is not None and self.plan.status == "accepted":
            return CaseStatus.on_plan
        if self.promise is not None:
            return CaseStatus.promised
        return CaseStatus.open

    @property
    def undisputed_balance(self) -> Money:
        if self.dispute is None:
            return self.balance
        return self.balance - self.dispute.amount.min(self.balance)

    def dunning_paused(self) -> bool:
        """Reasons to hold the ladder's clock."""
        if self.closed:
            return False
        if self.with_factor:
            return True
        if self.dispute is not None and self.dispute.amount >= self.balance:
            return True
        if self.promise is not None or self.pending_approvals or self.pause is not None:
            return True
        return self.plan is not None and self.plan.status in ("proposed", "approved", "accepted")

    @property
    def with_factor(self) -> bool:
        """Assigned without recourse and not settled: the factor collects it, the ladder waits."""
        f = self.financing
        return f is not None and not f.recourse and f.status == "assigned" and not self.closed

    @property
    def factor_instructions(self) -> Financing | None:
        """The assignment whose payment instructions notices carry (None: pay the company)."""
        f = self.financing
        return f if f is not None and f.status == "assigned" else None

    def approval(self, approval_id: str) -> Approval | None:
        return next((a for a in self.approvals if a.approval_id == approval_id), None)


# -- evolve ------------------------------------------------------------------


def evolve(state: CaseState | None, event: ev.Event) -> CaseState:
    """Apply one event. Raises only on a stream that breaks its own history."""
    if state is None:
        if not isinstance(event, ev.CaseOpened):
            raise ValueError(f"stream must start with CaseOpened, got {type(event).__name__}")
        return _opened(event)
    if event.version != state.version + 1:
        raise ValueError(f"event version {event.version} does not follow {state.version}")
    handler = _HANDLERS.get(type(event))
    changes = handler(state, event) if handler else {}
    if state.reduction_approved and "reduction_approved" not in changes:
        changes["reduction_approved"] = False  # it marks only the event right after the approval
    new = state.model_copy(update={**changes, "version": event.version, "updated_at": event.occurred_at})
    return _normalize_clock(new, event)


def fold(events: Iterable[ev.Event], state: CaseState | None = None) -> CaseState | None:
    return reduce(evolve, events, state)


def _normalize_clock(state: CaseState, event: ev.Event) -> CaseState:
    if state.closed:
        return state.model_copy(update={"clock": state.clock.stop()}) if state.clock.kind else state
    paused = state.dunning_paused()
    clock = state.clock
    if paused and not clock.paused and clock.next_at is not None:
        clock = clock.pause(event.occurred_at)
    elif not paused and clock.paused:
        clock = clock.resume(event.occurred_at, immediately=isinstance(event, ev.PromiseBroken))
    return state if clock is state.clock else state.model_copy(update={"clock": clock})


def _opened(e: ev.CaseOpened) -> CaseState:
    zero = Money.zero(e.original_amount.currency)
    return CaseState(
        case_id=e.case_id,
        version=e.version,
        invoice_id=e.invoice_id,
        customer=e.customer,
        risk_grade=e.risk_grade,
        currency=e.original_amount.currency,
        original_amount=e.original_amount,
        balance=e.opening_balance,
        issue_date=e.issue_date,
        due_date=e.due_date,
        opened_at=e.occurred_at,
        updated_at=e.occurred_at,
        reason=e.reason,
        policy_version=e.policy_version,
        ladder_steps=e.ladder_steps,
        assignee=e.assignee,
        clock=DunningClock(next_at=e.first_reminder_at, kind="remind"),
        advance=e.advance,
        paid_before_open=e.original_amount - e.opening_balance,
        erp_paid_before_open=e.erp_paid,
        payments=zero,
        credits=zero,
        write_offs=zero,
        fees=zero,
        customer_credit=zero,
    )


def _reminder_withdrawn(s: CaseState, e: ev.ReminderWithdrawn) -> dict:
    return {"notices": max(s.notices, e.seq)}


def _reminder(s: CaseState, e: ev.ReminderSent | ev.ReminderFailed) -> dict:
    changes: dict = {"notices": max(s.notices, e.seq), "level": max(s.level, e.level)}
    if isinstance(e, ev.ReminderFailed):
        changes["contact_problem"] = s.contact_problem or e.permanent
    if s.closed or s.escalation_pending:
        return changes
    if e.next_reminder_at is not None:
        changes["clock"] = s.clock.set(e.next_reminder_at, "remind")
    else:
        changes["clock"] = s.clock.set(e.escalate_at, "escalate")
    if s.clock.paused:  # paused while the notice was in flight: hold the new due time
        changes["clock"] = changes["clock"].pause(e.occurred_at)
    return changes


def _fee(s: CaseState, e: ev.LateFeeCharged) -> dict:
    return {"balance": s.balance + e.fee, "fees": s.fees + e.fee}


def _interest(s: CaseState, e: ev.InterestCharged) -> dict:
    changes: dict = {"balance": s.balance + e.fee, "fees": s.fees + e.fee,
                     "interest": (s.interest or Money.zero(s.currency)) + e.interest, "interest_accrued_to": e.accrued_to}
    if e.compensation is not None:
        changes["compensation"] = (s.compensation or Money.zero(s.currency)) + e.compensation
    return changes


def _interest_waived(s: CaseState, e: ev.InterestWaived) -> dict:
    return {"balance": s.balance - e.amount, "fees": s.fees - e.amount,
            "interest_waived": (s.interest_waived or Money.zero(s.currency)) + e.amount,
            **_alone(s, e.amount, e.approval_id is None)}


def _alone(s: CaseState, amount: Money, alone: bool = True) -> dict:
    """A reduction's share of what the case was reduced by without a second person."""
    if not alone or s.reduction_approved:
        return {}
    return {"reduced_alone": (s.reduced_alone or Money.zero(s.currency)) + amount}


# The principal reduction of money the ERP booked as paid outside the engine (no payment id nor
# allocation id is ever this), so that an amendment below it can take it back (_taken_back).
PAID_OUTSIDE_REF = "erp:paid-outside"


def _reduced(s: CaseState, on: date, amount: Money, ref: str = "") -> tuple[Reduction, ...]:
    return s.principal_reductions + (Reduction(on=on, amount=amount.amount, ref=ref),)


def _payment(s: CaseState, e: ev.PaymentReceived) -> dict:
    changes: dict = {
        "principal_reductions": _reduced(s, e.received_on, e.applied, e.payment_id),
        "balance": s.balance - e.applied,
        "payments": s.payments + e.applied,
        "customer_credit": s.customer_credit + e.excess,
        "payment_ids": s.payment_ids + (e.payment_id,),
        "settled_by_payment": {**s.settled_by_payment, e.payment_id: Settled(
            applied=e.applied, excess=e.excess, amount=e.amount, received_on=e.received_on, reference=e.reference)},
    }
    if s.promise is not None:
        changes["promise"] = s.promise.model_copy(update={"paid_since": s.promise.paid_since + e.applied})
    if s.plan is not None and s.plan.status == "accepted":
        changes["plan"] = s.plan.model_copy(update={"paid_toward_next": s.plan.paid_toward_next + e.applied})
    if s.dispute is not None and s.dispute.amount > changes["balance"]:
        changes["dispute"] = s.dispute.model_copy(update={"amount": changes["balance"]})
    return changes


def _small_balance(s: CaseState, e: ev.SmallBalanceWrittenOff) -> dict:
    changes = {"balance": s.balance - e.amount, "write_offs": s.write_offs + e.amount, **_alone(s, e.amount)}
    settled = s.settled_by_payment.get(e.payment_id)
    if settled is not None:
        changes["settled_by_payment"] = {**s.settled_by_payment,
                                         e.payment_id: settled.model_copy(update={"small_balance": e.amount})}
    return changes


def _small_balance_reversed(s: CaseState, e: ev.SmallBalanceWriteOffReversed) -> dict:
    settled = s.settled_by_payment[e.payment_id]
    return {"balance": s.balance + e.amount, "write_offs": s.write_offs - e.amount,
            "reduced_alone": s.reduced_alone - e.amount if s.reduced_alone is not None else None,
            "settled_by_payment": {**s.settled_by_payment,
                                   e.payment_id: settled.model_copy(update={"small_balance": None})}}


def _payment_reversed(s: CaseState, e: ev.PaymentReversed) -> dict:
    return {
        "balance": s.balance + e.applied,
        "payments": s.payments - e.applied,
        "customer_credit": s.customer_credit - e.excess,
        "reversed_payment_ids": s.reversed_payment_ids + (e.payment_id,),
        "principal_reductions": tuple(r for r in s.principal_reductions if r.ref != e.payment_id),
    }


def _reopened(s: CaseState, e: ev.CaseReopened) -> dict:
    clock = DunningClock(shift=s.clock.shift)
    if e.next_reminder_at is not None:
        clock = clock.set(e.next_reminder_at, "remind")
    elif e.escalate_at is not None:
        clock = clock.set(e.escalate_at, "escalate")
    return {"outcome": None, "closed_at": None, "clock": clock}


def _dispute_opened(s: CaseState, e: ev.DisputeOpened) -> dict:
    return {
        "dispute": Dispute(
            dispute_id=e.dispute_id,
            reason=e.reason,
            amount=e.amount,
            owner=e.owner,
            opened_at=e.occurred_at,
            resolve_by=e.resolve_by,
        ),
        "disputes_opened": s.disputes_opened + 1,
    }


def _dispute_resolved(s: CaseState, e: ev.DisputeResolved) -> dict:
    changes: dict = {"dispute": None}
    if e.credit is not None:
        changes["balance"] = s.balance - e.credit
        changes["credits"] = s.credits + e.credit
        changes["principal_reductions"] = _reduced(s, e.occurred_at.date(), e.credit)
        changes.update(_alone(s, e.credit))
    return changes


def _dispute_overdue(s: CaseState, e: ev.DisputeOverdue) -> dict:
    return {"dispute": s.dispute.model_copy(update={"overdue": True})} if s.dispute else {}


def _promise_made(s: CaseState, e: ev.PromiseMade) -> dict:
    return {
        "promise": Promise(
            promise_id=e.promise_id,
            amount=e.amount,
            promised_date=e.promised_date,
            check_at=e.check_at,
            paid_since=Money.zero(s.currency),
        )
    }


def _promise_kept(s: CaseState, e: ev.PromiseKept) -> dict:
    return {"promise": None, "promises_kept": s.promises_kept + 1}


def _promise_broken(s: CaseState, e: ev.PromiseBroken) -> dict:
    return {"promise": None, "promises_broken": s.promises_broken + 1}


def _escalated(s: CaseState, e: ev.EscalatedToSupervisor) -> dict:
    return {
        "past_escalations": s.past_escalations + ((s.escalation,) if s.escalation else ()),
        "escalation": Escalation(
            escalation_id=e.escalation_id,
            reason=e.reason,
            tier=e.tier,
            since=e.occurred_at,
            sla_due_at=e.sla_due_at,
        ),
        "escalations": s.escalations + 1,
        "referral": None,
        "clock": s.clock.stop(),
    }


def _escalation_lapsed(s: CaseState, e: ev.EscalationSlaLapsed) -> dict:
    if s.escalation is None:
        return {}
    return {"escalation": s.escalation.model_copy(update={"tier": e.to_tier, "sla_due_at": e.sla_due_at})}


def _escalation_decided(s: CaseState, e: ev.EscalationDecided) -> dict:
    changes: dict = {}
    if s.escalation is not None:
        changes["escalation"] = s.escalation.model_copy(update={
            "decision": e.decision, "decided_by": e.actor, "decided_at": e.occurred_at, "balance_decided": s.balance})
    if e.decision in (EscalationDecision.agency, EscalationDecision.legal):
        changes["referral"] = e.decision.value
    if e.continue_until is not None:
        changes["clock"] = s.clock.set(e.continue_until, "escalate")
    return changes


def _credit_hold(s: CaseState, e: ev.CreditHoldPlaced) -> dict:
    return {"credit_hold": True}


def _plan_proposed(s: CaseState, e: ev.PaymentPlanProposed) -> dict:
    changes: dict = {
        "plan": Plan(
            plan_id=e.plan_id,
            instalments=e.instalments,
            paid_toward_next=Money.zero(s.currency),
            grace=e.grace,
            status="proposed",
            requires_approval=e.requires_approval,
            approval_id=e.approval_id,
            proposed_by=e.actor,
            expires_at=e.expires_at,
        )
    }
    if e.requires_approval and e.approval_id:
        tier = Role.supervisor
        total = sum((i.amount for i in e.instalments), Money.zero(s.currency))
        changes["approvals"] = s.approvals + (
            Approval(
                approval_id=e.approval_id,
                kind="plan",
                amount=total,
                reason=f"{len(e.instalments)} instalments",
                requested_by=e.actor,
                requested_at=e.occurred_at,
                tier=tier,
                sla_due_at=e.sla_due_at,
            ),
        )
    return changes


def _decide_approval(s: CaseState, approval_id: str, e: ev.Event, approved: bool, reason: str = "") -> dict:
    approvals = tuple(
        a.model_copy(
            update={
                "status": "approved" if approved else "rejected",
                "decided_by": e.actor,
                "decided_at": e.occurred_at,
                "decision_reason": reason,
            }
        )
        if a.approval_id == approval_id
        else a
        for a in s.approvals
    )
    return {"approvals": approvals}


def _withdraw_approval(s: CaseState, approval_id: str | None, e: ev.Event, reason: str) -> dict:
    if approval_id is None:
        return {}
    approvals = tuple(
        a.model_copy(update={"status": "withdrawn", "decided_by": e.actor, "decided_at": e.occurred_at,
                             "decision_reason": reason})
        if a.approval_id == approval_id and a.status == "pending" else a
        for a in s.approvals
    )
    return {"approvals": approvals}


def _plan_expired(s: CaseState, e: ev.PaymentPlanExpired) -> dict:
    return {**_withdraw_approval(s, e.approval_id, e, "offer expired"), "plan": None}


def _plan_withdrawn(s: CaseState, e: ev.PaymentPlanWithdrawn) -> dict:
    return {**_withdraw_approval(s, e.approval_id, e, e.reason), "plan": None}


def _dispute_escalated(s: CaseState, e: ev.DisputeEscalated) -> dict:
    if s.dispute is None:
        return {}
    return {"dispute": s.dispute.model_copy(update={"escalated_to": e.tier, "escalation_due_at": e.sla_due_at})}


def _dunning_paused(s: CaseState, e: ev.DunningPaused) -> dict:
    return {
        "pause": Pause(pause_id=e.pause_id, until=e.until, reason=e.reason, scope=e.scope,
                       requested_by=e.requested_by, since=e.occurred_at, approval_id=e.approval_id),
        "pause_request": None,
        "pauses": s.pauses + 1,
    }


def _pause_requested(s: CaseState, e: ev.PauseRequested) -> dict:
    approval = Approval(
        approval_id=e.approval_id, kind="pause", amount=s.balance, reason=f"{e.reason} until {e.until.isoformat()}",
        requested_by=e.requested_by, requested_at=e.occurred_at, tier=Role.supervisor, sla_due_at=e.sla_due_at,
    )
    return {
        "approvals": s.approvals + (approval,),
        "pause_request": PauseRequest(approval_id=e.approval_id, pause_id=e.pause_id, until=e.until,
                                      reason=e.reason, scope=e.scope, requested_by=e.requested_by),
    }


def _pause_decided(s: CaseState, e: ev.PauseDecided) -> dict:
    changes = _decide_approval(s, e.approval_id, e, e.approved, e.reason)
    if not e.approved:
        changes["pause_request"] = None
    return changes


def _dunning_resumed(s: CaseState, e: ev.DunningResumed) -> dict:
    return {"pause": None}


def _plan_approved(s: CaseState, e: ev.PaymentPlanApproved) -> dict:
    changes = _decide_approval(s, e.approval_id, e, True, e.reason)
    if s.plan is not None:
        changes["plan"] = s.plan.model_copy(update={"status": "approved"})
    return changes


def _plan_rejected(s: CaseState, e: ev.PaymentPlanRejected) -> dict:
    changes = _decide_approval(s, e.approval_id, e, False, e.reason)
    changes["plan"] = None
    return changes


def _plan_accepted(s: CaseState, e: ev.PaymentPlanAccepted) -> dict:
    if s.plan is None:
        return {}
    return {"plan": s.plan.model_copy(update={"status": "accepted"}), "plans_accepted": s.plans_accepted + 1}


def _instalment_paid(s: CaseState, e: ev.InstalmentPaid) -> dict:
    if s.plan is None:
        return {}
    plan = s.plan.model_copy(
        update={"paid_seqs": s.plan.paid_seqs + (e.seq,), "paid_toward_next": s.plan.paid_toward_next - e.amount}
    )
    if plan.next_unpaid() is None:
        plan = plan.model_copy(update={"status": "completed"})
    return {"plan": plan}


def _plan_defaulted(s: CaseState, e: ev.PaymentPlanDefaulted) -> dict:
    return {"plan": s.plan.model_copy(update={"status": "defaulted"}) if s.plan else None,
            "plans_defaulted": s.plans_defaulted + 1}


def _write_off_requested(s: CaseState, e: ev.WriteOffRequested) -> dict:
    approval = Approval(
        approval_id=e.approval_id,
        kind="write_off",
        amount=e.amount,
        reason=e.reason,
        requested_by=e.requested_by,
        requested_at=e.occurred_at,
        tier=Role.supervisor,
        sla_due_at=e.sla_due_at,
    )
    return {"approvals": s.approvals + (approval,)}


def _reduction_requested(s: CaseState, e: ev.ReductionRequested) -> dict:
    approval = Approval(
        approval_id=e.approval_id, kind=e.kind, amount=e.amount, reason=e.reason, requested_by=e.requested_by,
        requested_at=e.occurred_at, tier=Role.supervisor, sla_due_at=e.sla_due_at, reduced_alone=e.reduced_alone,
    )
    return {"approvals": s.approvals + (approval,)}


def _reduction_approved(s: CaseState, e: ev.ReductionApproved) -> dict:
    # the reduction itself follows as its own event (DisputeResolved, CaseCancelled, InterestWaived)
    return {**_decide_approval(s, e.approval_id, e, True, e.reason), "reduction_approved": True}


def _reduction_rejected(s: CaseState, e: ev.ReductionRejected) -> dict:
    return _decide_approval(s, e.approval_id, e, False, e.reason)


def _write_off_approved(s: CaseState, e: ev.WriteOffApproved) -> dict:
    changes = _decide_approval(s, e.approval_id, e, True, e.reason)
    changes["balance"] = s.balance - e.amount
    changes["write_offs"] = s.write_offs + e.amount
    return changes


def _write_off_rejected(s: CaseState, e: ev.WriteOffRejected) -> dict:
    return _decide_approval(s, e.approval_id, e, False, e.reason)


def _approval_lapsed(s: CaseState, e: ev.ApprovalSlaLapsed) -> dict:
    approvals = tuple(
        a.model_copy(update={"tier": e.to_tier, "sla_due_at": e.sla_due_at}) if a.approval_id == e.approval_id else a
        for a in s.approvals
    )
    return {"approvals": approvals}


def _policy_migrated(s: CaseState, e: ev.PolicyMigrated) -> dict:
    changes: dict = {"policy_version": e.to_version, "ladder_steps": e.ladder_steps}
    if s.clock.kind is not None and not s.clock.paused:
        if e.next_reminder_at is not None:
            changes["clock"] = s.clock.set(e.next_reminder_at, "remind")
        elif e.escalate_at is not None:
            changes["clock"] = s.clock.set(e.escalate_at, "escalate")
    return changes


def payment_report_key(amount: Money, paid_on: date, reference: str) -> str:
    """One customer report of a payment: the same amount, day and reference is the same report."""
    return f"{amount.amount} {amount.currency} {paid_on.isoformat()} {reference.strip().lower()}"


def _payment_reported(s: CaseState, e: ev.PaymentReported) -> dict:
    return {"payment_reports": s.payment_reports + (payment_report_key(e.amount, e.paid_on, e.reference),)}


def _contact_corrected(s: CaseState, e: ev.ContactCorrected) -> dict:
    return {"customer": s.customer.model_copy(update={"email": e.email}), "contact_problem": False}


def _assigned(s: CaseState, e: ev.CaseAssigned) -> dict:
    return {"assignee": e.assignee}


def _cancelled(s: CaseState, e: ev.CaseCancelled) -> dict:
    return {"balance": s.balance - e.amount, "credits": s.credits + e.amount}


def _closed(s: CaseState, e: ev.CaseClosed) -> dict:
    """A closed case accepts no decision: what still waited for one (an escalation, a write-off,
    plan, credit, cancellation, pause or waiver approval) is withdrawn with it, by whoever closed
    it, and leaves the approvals inbox (status ``withdrawn``)."""
    reason = f"case closed ({e.outcome.value})"
    changes: dict = {
        "outcome": e.outcome,
        "closed_at": e.occurred_at,
        "promise": None,
        "pause": None,
        "pause_request": None,
        "clock": s.clock.stop(),
        "approvals": tuple(
            a.model_copy(update={"status": "withdrawn", "decided_by": e.actor, "decided_at": e.occurred_at,
                                 "decision_reason": reason}) if a.status == "pending" else a
            for a in s.approvals),
    }
    if s.escalation_pending:
        changes["escalation"] = s.escalation.model_copy(update={
            "withdrawn_at": e.occurred_at, "withdrawn_by": e.actor, "withdrawn_reason": reason,
            "balance_decided": s.balance})
    return changes


def _insured(s: CaseState, e: ev.CaseInsured) -> dict:
    return {"insurance": Insurance(
        insurer_id=e.insurer_id, insurer_name=e.insurer_name, insurer_email=e.insurer_email,
        policy_number=e.policy_number, indemnity_percent=e.indemnity_percent, notify_at=e.notify_at,
        notify_by=e.notify_by, extension_until=e.extension_until, claim_waiting=e.claim_waiting,
    )}


def _insurance(s: CaseState, **update) -> dict:
    return {"insurance": s.insurance.model_copy(update=update)} if s.insurance else {}


def _insurer_notified(s: CaseState, e: ev.InsurerNotified) -> dict:
    attempts = s.insurance.notice_attempts + 1 if s.insurance else 1
    return _insurance(s, notified_at=e.occurred_at, notified_in_time=e.in_time, claim_at=e.claim_at,
                      notice_attempts=attempts)


def _insurer_notice_failed(s: CaseState, e: ev.InsurerNotificationFailed) -> dict:
    attempts = s.insurance.notice_attempts + 1 if s.insurance else 1
    return _insurance(s, notify_at=e.retry_at, notice_attempts=attempts)


def _claim_filed(s: CaseState, e: ev.ClaimFiled) -> dict:
    return _insurance(s, claim_id=e.claim_id, claim_amount=e.amount, expected_indemnity=e.expected_indemnity)


def _indemnity(s: CaseState, e: ev.IndemnityReceived) -> dict:
    changes = _insurance(s, indemnity=e.amount)
    changes["balance"] = s.balance - e.amount
    changes["indemnity"] = s.indemnity_total + e.amount
    changes["principal_reductions"] = _reduced(s, e.occurred_at.date(), e.amount)
    if s.dispute is not None and s.dispute.amount > changes["balance"]:
        changes["dispute"] = s.dispute.model_copy(update={"amount": changes["balance"]})
    return changes


def _credit_applied(s: CaseState, e: ev.CustomerCreditApplied) -> dict:
    changes: dict = {
        "balance": s.balance - e.amount,
        "credit_applied": s.credit_applied_total + e.amount,
        "allocation_ids": s.allocation_ids + (e.allocation_id,),
        "principal_reductions": _reduced(s, e.occurred_at.date(), e.amount, e.allocation_id),
    }
    if s.promise is not None:
        changes["promise"] = s.promise.model_copy(update={"paid_since": s.promise.paid_since + e.amount})
    if s.plan is not None and s.plan.status == "accepted":
        changes["plan"] = s.plan.model_copy(update={"paid_toward_next": s.plan.paid_toward_next + e.amount})
    if s.dispute is not None and s.dispute.amount > changes["balance"]:
        changes["dispute"] = s.dispute.model_copy(update={"amount": changes["balance"]})
    return changes


def _rebalanced(s: CaseState, balance: Money) -> dict:
    """The new balance; a dispute is never for more than the balance."""
    changes: dict = {"balance": balance}
    if s.dispute is not None and s.dispute.amount > balance:
        changes["dispute"] = s.dispute.model_copy(update={"amount": balance})
    return changes


def _invoice_amended(s: CaseState, e: ev.InvoiceAmended) -> dict:
    changes = {**_rebalanced(s, s.balance + e.balance_change), "invoice_amount": e.amount,
               "erp_adjustments": s.erp_adjustments_total - e.change}
    if e.credit is not None:
        zero = Money.zero(s.currency)
        changes.update(_paid_beyond_amendment(s, e.credit, e.credit_applied or zero, e.paid_outside or zero))
    return changes


def _paid_beyond_amendment(s: CaseState, credit: Money, credit_applied: Money, paid_outside: Money) -> dict:
    """Of what was paid, ``credit`` no longer settles the invoice: it is the customer's credit.
    It comes off the payments on the case first (``domain.decider.amendment``), taken from the
    latest payments first, each keeping what it did (applied / excess), so that reversing one
    takes back what it still settles and the credit it left; then ``credit_applied`` (the event
    says how much) off the customer credit applied to the case, the latest allocation first; then
    ``paid_outside`` (the event says how much) off what the ERP booked as paid outside the engine
    and still settles the invoice (``paid_outside_settling``; what the ERP booked, ``paid_outside``,
    stays as it was, so that its next export books nothing again), the latest booking first; the
    rest off what was paid before the case opened. Each is lowered by what it gave, so that a later
    amendment cannot make the same money credit again. (Events recorded before those rules have
    no ``credit_applied`` nor ``paid_outside``, and no rest beyond the payments before money paid
    before the case counted.)"""
    on_case = credit.min(s.payments)
    settled = dict(s.settled_by_payment)
    moved_from: dict[str, Decimal] = {}
    left = on_case
    for payment_id in reversed(s.payment_ids):
        if not left.is_positive:
            break
        if payment_id in s.reversed_payment_ids or payment_id not in settled:
            continue
        paid = settled[payment_id]
        moved = left.min(paid.applied)
        if not moved.is_positive:
            continue
        settled[payment_id] = paid.model_copy(update={"applied": paid.applied - moved, "excess": paid.excess + moved})
        moved_from[payment_id] = moved.amount
        left -= moved
    reductions = tuple(r.model_copy(update={"amount": r.amount - moved_from[r.ref]}) if r.ref in moved_from else r
                       for r in s.principal_reductions)
    if credit_applied.is_positive:
        reductions = _taken_back(reductions, set(s.allocation_ids), credit_applied.amount)
    changes = {"payments": s.payments - on_case,
               "paid_before_open": s.paid_before_open - (credit - on_case - credit_applied - paid_outside),
               "customer_credit": s.customer_credit + credit, "settled_by_payment": settled,
               "principal_reductions": reductions}
    if credit_applied.is_positive:
        changes["credit_applied"] = s.credit_applied_total - credit_applied
    if paid_outside.is_positive:
        changes.update(paid_outside_settling=s.paid_outside_settling_total - paid_outside,
                       principal_reductions=_taken_back(reductions, {PAID_OUTSIDE_REF}, paid_outside.amount))
    return changes


def _taken_back(reductions: tuple[Reduction, ...], refs: set[str], amount: Decimal) -> tuple[Reduction, ...]:
    """The reductions of the principal, with ``amount`` of the money they name by ``refs`` no
    longer settling the invoice (the customer credit applied: its allocations, as
    ``_credit_applied`` recorded them; money paid outside the engine: ``PAID_OUTSIDE_REF``, as
    ``_paid_outside`` recorded it): taken off those reductions, the latest first."""
    out = list(reductions)
    for i in reversed(range(len(out))):
        if amount <= 0:
            break
        if out[i].ref in refs and out[i].amount > 0:
            moved = min(amount, out[i].amount)
            out[i] = out[i].model_copy(update={"amount": out[i].amount - moved})
            amount -= moved
    return tuple(out)


def _credit_note(s: CaseState, e: ev.CreditNoteApplied) -> dict:
    return {**_rebalanced(s, s.balance - e.applied), "credit_note_ids": s.credit_note_ids + (e.document_id,),
            "erp_adjustments": s.erp_adjustments_total + e.applied,
            "principal_reductions": _reduced(s, e.occurred_at.date(), e.applied, e.document_id)}


def _paid_outside(s: CaseState, e: ev.PaidOutsideEngine) -> dict:
    # booked on the case: the ERP's total (e.total) less what it had booked before the case opened;
    # of it, what took off the balance settles the invoice
    return {**_rebalanced(s, s.balance - e.applied), "paid_outside": s.paid_outside_total + e.amount,
            "paid_outside_settling": s.paid_outside_settling_total + e.applied,
            "principal_reductions": _reduced(s, e.occurred_at.date(), e.applied, PAID_OUTSIDE_REF)}


def _due_date_moved(s: CaseState, e: ev.DueDateMoved) -> dict:
    changes: dict = {"due_date": e.due_date}
    clock = s.clock
    if clock.kind == "remind" and e.next_reminder_at is not None:
        if clock.paused:
            clock = clock.model_copy(update={"held_due": e.next_reminder_at})
        else:
            clock = clock.set(e.next_reminder_at, "remind")
    changes["clock"] = clock.model_copy(update={"shift": clock.shift + e.shift})
    return changes


def _customer_changed(s: CaseState, e: ev.CustomerDetailsChanged) -> dict:
    changes: dict = {"customer": e.customer}
    if "email" in e.changed:
        changes["contact_problem"] = False  # a new address: the bounce was about the old one
    return changes


# -- early-cash instruments (docs/FINANCING.md) ----------------------------------------------------


def _assigned_to_factor(s: CaseState, e: ev.InvoiceAssignedToFactor) -> dict:
    terms = e.model_dump(include=set(ev.FactorTerms.model_fields))
    return {"financing": Financing(**terms, assigned_at=e.occurred_at)}


def _financing(s: CaseState, **update) -> dict:
    return {"financing": s.financing.model_copy(update=update)} if s.financing else {}


def _factored(s: CaseState, e: ev.Event, amount: Money) -> dict:
    return {**_rebalanced(s, s.balance - amount), "factored": (s.factored or Money.zero(s.currency)) + amount,
            "principal_reductions": _reduced(s, e.occurred_at.date(), amount)}


def _factor_collected(s: CaseState, e: ev.FactorCollected) -> dict:
    return {**_financing(s, status="collected"), **_factored(s, e, e.amount)}


def _factor_defaulted(s: CaseState, e: ev.FactorDefaulted) -> dict:
    if e.recourse:
        return _financing(s, status="returned")
    changes = _financing(s, status="defaulted")
    if e.derecognized is not None:
        changes.update(_factored(s, e, e.derecognized))
    return changes


def _factor_default_reported(s: CaseState, e: ev.FactorDefaultReported) -> dict:
    return _financing(s, default_reported=e.trigger, default_amount=e.amount)


def _factor_notified(s: CaseState, e: ev.FactorNotified) -> dict:
    return _financing(s, factor_notified=True)


def _discount_offered(s: CaseState, e: ev.EarlyPaymentDiscountOffered) -> dict:
    return {"discount_offer": DiscountOffer(seq=e.seq, percent=e.percent, discount=e.discount, pay=e.pay,
                                            pay_by=e.pay_by)}


def _discount_granted(s: CaseState, e: ev.EarlyPaymentDiscountGranted) -> dict:
    return {**_rebalanced(s, s.balance - e.amount),
            "discounts": (s.discounts or Money.zero(s.currency)) + e.amount}


_HANDLERS = {
    ev.InvoiceAssignedToFactor: _assigned_to_factor,
    ev.FactorCollected: _factor_collected,
    ev.FactorDefaulted: _factor_defaulted,
    ev.FactorDefaultReported: _factor_default_reported,
    ev.FactorNotified: _factor_notified,
    ev.EarlyPaymentDiscountOffered: _discount_offered,
    ev.EarlyPaymentDiscountGranted: _discount_granted,
    ev.CaseInsured: _insured,
    ev.InsurerNotified: _insurer_notified,
    ev.InsurerNotificationFailed: _insurer_notice_failed,
    ev.ClaimFiled: _claim_filed,
    ev.IndemnityReceived: _indemnity,
    ev.CustomerCreditApplied: _credit_applied,
    ev.ReminderSent: _reminder,
    ev.ReminderFailed: _reminder,
    ev.ReminderWithdrawn: _reminder_withdrawn,
    ev.LateFeeCharged: _fee,
    ev.InterestCharged: _interest,
    ev.InterestWaived: _interest_waived,
    ev.PaymentReceived: _payment,
    ev.SmallBalanceWrittenOff: _small_balance,
    ev.SmallBalanceWriteOffReversed: _small_balance_reversed,
    ev.PaymentReversed: _payment_reversed,
    ev.CaseReopened: _reopened,
    ev.DisputeOpened: _dispute_opened,
    ev.DisputeResolved: _dispute_resolved,
    ev.DisputeOverdue: _dispute_overdue,
    ev.PromiseMade: _promise_made,
    ev.PromiseKept: _promise_kept,
    ev.PromiseBroken: _promise_broken,
    ev.EscalatedToSupervisor: _escalated,
    ev.EscalationSlaLapsed: _escalation_lapsed,
    ev.EscalationDecided: _escalation_decided,
    ev.CreditHoldPlaced: _credit_hold,
    ev.PaymentPlanProposed: _plan_proposed,
    ev.PaymentPlanApproved: _plan_approved,
    ev.PaymentPlanRejected: _plan_rejected,
    ev.PaymentPlanAccepted: _plan_accepted,
    ev.InstalmentPaid: _instalment_paid,
    ev.PaymentPlanDefaulted: _plan_defaulted,
    ev.WriteOffRequested: _write_off_requested,
    ev.WriteOffApproved: _write_off_approved,
    ev.WriteOffRejected: _write_off_rejected,
    ev.ReductionRequested: _reduction_requested,
    ev.ReductionApproved: _reduction_approved,
    ev.ReductionRejected: _reduction_rejected,
    ev.ApprovalSlaLapsed: _approval_lapsed,
    ev.PolicyMigrated: _policy_migrated,
    ev.CaseAssigned: _assigned,
    ev.ContactCorrected: _contact_corrected,
    ev.PaymentReported: _payment_reported,
    ev.CaseCancelled: _cancelled,
    ev.CaseClosed: _closed,
    ev.PaymentPlanExpired: _plan_expired,
    ev.PaymentPlanWithdrawn: _plan_withdrawn,
    ev.DisputeEscalated: _dispute_escalated,
    ev.DunningPaused: _dunning_paused,
    ev.PauseRequested: _pause_requested,
    ev.PauseDecided: _pause_decided,
    ev.DunningResumed: _dunning_resumed,
    ev.InvoiceAmended: _invoice_amended,
    ev.CreditNoteApplied: _credit_note,
    ev.PaidOutsideEngine: _paid_outside,
    ev.DueDateMoved: _due_date_moved,
    ev.CustomerDetailsChanged: _customer_changed,
}
