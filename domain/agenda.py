"""What a case waits for next, and what its next notice says. Pure reads of state."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from typing import Literal

from pydantic import BaseModel, ConfigDict

from domain.calendar import next_send_moment
from domain.events import DiscountTerms
from domain.interest import Accrual, InterestDue, accrue
from domain.money import Money
from domain.policy import LadderStep, Policy
from domain.state import CaseState


class NextAction(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: Literal["remind", "tick", "notify_insurer", "notify_factor"]  # remind: send a notice; tick: apply deadlines
    at: datetime
    label: str


def next_action(state: CaseState, policy: Policy | None = None) -> NextAction | None:
    """The earliest deadline of the case, or None when it only waits for people.

    With the policy, a reminder is moved to the customer's next business day and
    send window (a resumed clock can land outside them)."""
    if state.closed:
        return None
    candidates: list[NextAction] = []
    clock = state.clock
    if clock.next_at is not None and clock.kind == "remind":
        at = clock.next_at
        if policy is not None:
            at = next_send_moment(at, state.customer.country, state.customer.timezone, policy.notices)
        candidates.append(NextAction(kind="remind", at=at, label=f"send reminder {state.level + 1}"))
    elif clock.next_at is not None and clock.kind == "escalate":
        candidates.append(NextAction(kind="tick", at=clock.next_at, label="escalate to supervisor"))
    esc = state.escalation
    if state.escalation_pending and esc.sla_due_at is not None:
        candidates.append(NextAction(kind="tick", at=esc.sla_due_at, label=f"{esc.tier.value} decision due"))
    for approval in state.pending_approvals:
        if approval.sla_due_at is not None:
            label = f"{approval.kind.replace('_', '-')} approval due"
            candidates.append(NextAction(kind="tick", at=approval.sla_due_at, label=label))
    if state.promise is not None:
        candidates.append(NextAction(kind="tick", at=state.promise.check_at, label="promise to pay due"))
    plan = state.plan
    if plan is not None and plan.status == "accepted" and (nxt := plan.next_unpaid()) is not None:
        candidates.append(NextAction(kind="tick", at=nxt.due_at + plan.grace, label=f"instalment {nxt.seq} due"))
    if state.dispute is not None and not state.dispute.overdue:
        candidates.append(NextAction(kind="tick", at=state.dispute.resolve_by, label="dispute resolution due"))
    elif state.dispute is not None and state.dispute.escalated_to and state.dispute.escalation_due_at is not None:
        label = f"{state.dispute.escalated_to.value} dispute decision due"
        candidates.append(NextAction(kind="tick", at=state.dispute.escalation_due_at, label=label))
    if plan is not None and plan.open_offer and plan.expires_at is not None:
        candidates.append(NextAction(kind="tick", at=plan.expires_at, label="plan offer expires"))
    if state.pause is not None:
        candidates.append(NextAction(kind="tick", at=state.pause.until,
                                     label=f"paused ({state.pause.reason}): dunning resumes"))
    ins = state.insurance
    if ins is not None and ins.notified_at is None:
        candidates.append(NextAction(kind="notify_insurer", at=ins.notify_at, label="notify the insurer"))
    elif ins is not None and ins.claim_at is not None and ins.claim_id is None:
        candidates.append(NextAction(kind="tick", at=ins.claim_at, label="file the insurance claim"))
    if (notice := factor_notice_due(state)) is not None:
        candidates.append(notice)
    return min(candidates, key=lambda a: (a.at, a.kind != "remind"), default=None)


def waiting_for(state: CaseState) -> str:
    """A plain-words summary of who or what the case is waiting on."""
    if state.closed:
        return f"closed ({state.outcome.value})"
    if state.with_factor:
        return f"with factor {state.financing.factor}"
    if state.pause is not None:
        return f"paused until {state.pause.until.isoformat()[:16]} ({state.pause.reason})"
    if state.pending_approvals:
        first = state.pending_approvals[0]
        return f"{first.kind.replace('_', '-')} approval by a {first.tier.value}"
    if state.escalation_pending:
        return f"{state.escalation.tier.value} decision"
    if state.referral:
        return f"with {state.referral}"
    action = next_action(state)
    if action is not None:
        return action.label
    if state.plan is not None and state.plan.status in ("proposed", "approved"):
        return "customer to accept the plan"
    return "collector"


class HumanItem(BaseModel):
    """Something a person must do on a case: who owns it and by when (None: no further deadline)."""

    model_config = ConfigDict(frozen=True)

    what: str
    owner: str  # a role or a user name
    due_at: datetime | None


def human_items(state: CaseState) -> list[HumanItem]:
    """The pending human items of an open case, each with its owner."""
    if state.closed:
        return []
    items = [HumanItem(what=f"{a.kind.replace('_', '-')} approval {a.approval_id}", owner=a.tier.value,
                       due_at=a.sla_due_at) for a in state.pending_approvals]
    if state.escalation_pending:
        esc = state.escalation
        items.append(HumanItem(what=f"escalation {esc.escalation_id}", owner=esc.tier.value, due_at=esc.sla_due_at))
    d = state.dispute
    if d is not None:
        owner = d.escalated_to.value if d.escalated_to else d.owner
        due = d.escalation_due_at if d.escalated_to else (None if d.overdue else d.resolve_by)
        items.append(HumanItem(what=f"dispute {d.dispute_id}", owner=owner, due_at=due))
    if state.referral:
        items.append(HumanItem(what=f"referral to {state.referral}", owner=state.referral, due_at=None))
    if state.with_factor:  # the factor collects it and reports back (financing settle / default)
        name = state.financing.factor
        items.append(HumanItem(what=f"with factor {name}", owner=f"factor {name}", due_at=None))
    return [i for i in items if i.owner]


def stuck_reason(state: CaseState, policy: Policy | None = None) -> str | None:
    """None when the open case waits on something (a timer, or a pending human item with an owner);
    else what it waits for, in words: a case that waits on nobody is stuck (``report stuck``)."""
    if state.closed or next_action(state, policy) is not None or human_items(state):
        return None
    return f"no timer and no owned pending item ({waiting_for(state)})"


def accrued_interest(state: CaseState, policy: Policy, to: date) -> Accrual | None:
    """Interest accrued on the case's principal to ``to`` under its policy (None: no regime)."""
    if policy.interest is None:
        return None
    name, regime = policy.interest.regime_for(state.customer.country)
    if regime is None:
        return None
    principal = state.current_invoice_amount - state.paid_before_open  # an ERP amendment corrects it from the start
    return accrue(name, regime, principal, state.due_date, state.principal_reductions, to)


def interest_due(state: CaseState, policy: Policy, level: int, on: date) -> InterestDue | None:
    """What the notice of ``level`` sent ``on`` states and charges (None: nothing)."""
    if policy.interest is None or level < policy.interest.from_level:
        return None
    accrual = accrued_interest(state, policy, on)
    if accrual is None:
        return None
    charged = state.interest or Money.zero(state.currency)
    interest = accrual.interest - charged if accrual.interest > charged else Money.zero(state.currency)
    compensation = None
    if state.compensation is None:
        name, regime = policy.interest.regime_for(state.customer.country)
        compensation = regime.compensation_for(state.original_amount - state.paid_before_open)
    if not accrual.interest.is_positive and compensation is None and state.compensation is None:
        return None  # nothing accrued nor charged: the notice says nothing of interest
    return InterestDue(regime=accrual.regime, accrued_to=on, accrued=accrual.interest, interest=interest,
                       compensation=compensation, basis=accrual.describe(), compensation_before=state.compensation)


class NoticeDue(BaseModel):
    model_config = ConfigDict(frozen=True)

    seq: int
    level: int
    step: str
    amount_due: Money
    fee: Money | None
    final: bool
    interest: InterestDue | None = None
    # what the notice gives the customer before the next step (the next reminder, or escalation)
    respond_within: timedelta | None = None


def notice_due(state: CaseState, policy: Policy, level: int | None = None, on: date | None = None) -> NoticeDue:
    """The reminder the ladder asks for now (or at ``level``), with any late fee it announces,
    and the interest accrued to ``on`` (the notice's date) where the policy charges it."""
    policy = policy.for_case(state.advance is not None)
    ladder = policy.ladder(state.risk_grade)
    level = min(level or state.level + 1, len(ladder))
    step = ladder[level - 1]
    fee = None
    flat = step.flat_fee(state.currency)
    if flat is not None:
        fee = Money.of(flat, state.currency)
    elif step.fee_percent is not None:
        fee = state.undisputed_balance.percent(step.fee_percent)
    due = state.undisputed_balance + fee if fee is not None else state.undisputed_balance
    interest = interest_due(state, policy, level, on) if on is not None else None
    if interest is not None:
        due = due + interest.total
    return NoticeDue(
        seq=state.notices + 1,
        level=level,
        step=step.name,
        amount_due=due,
        fee=fee if fee is not None and fee.is_positive else None,
        final=level == len(ladder),
        interest=interest,
        respond_within=_respond_within(policy, ladder, level),
    )


def _respond_within(policy: Policy, ladder: tuple[LadderStep, ...], level: int) -> timedelta | None:
    """The time to the ladder's next step; after the final notice, to escalation."""
    wait = policy.escalation.after_final if level == len(ladder) else ladder[level].after - ladder[level - 1].after
    return wait if wait > timedelta(0) else None


# -- early-cash instruments (docs/FINANCING.md) ----------------------------------------------------


def factor_notice_due(state: CaseState) -> NextAction | None:
    """A default reported to the factor and not yet e-mailed to its contact (due at once; also
    after the case closed, when a write-off reported it)."""
    f = state.financing
    if f is None or f.default_reported is None or f.factor_notified:
        return None
    return NextAction(kind="notify_factor", at=f.assigned_at, label=f"report the default to {f.factor}")


def discount_offer(state: CaseState, policy: Policy, notice: NoticeDue, at: datetime) -> DiscountTerms | None:
    """The early-payment discount the notice sent ``at`` offers (None: none). Offered once per case,
    to the policy's risk grades, on a balance of at least the currency's minimum, not while the
    invoice is disputed or with a factor; the amount to pay is the notice's amount less the discount."""
    terms = policy.discounts
    if terms.percent is None or state.discount_offer is not None or state.risk_grade not in terms.grades:
        return None
    minimum = terms.minimum.get(state.currency)
    if minimum is None or state.dispute is not None or state.financing is not None or state.closed:
        return None
    due = notice.amount_due
    if due.amount < minimum or not due.is_positive:
        return None
    discount = due.percent(terms.percent)
    if not discount.is_positive:
        return None
    whole_days = terms.within % timedelta(days=1) == timedelta(0)
    pay_by = (datetime.combine(at.date() + terms.within + timedelta(days=1), time(0), tzinfo=timezone.utc)
              if whole_days else at + terms.within)
    return DiscountTerms(percent=terms.percent, discount=discount, pay=due - discount, pay_by=pay_by)
