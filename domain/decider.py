"""The case decider: ``decide(state, command, now, policy) -> events``.

Business rules live here and only here. ``decide`` is pure: it raises
``DomainError`` with a clear message for an invalid command and otherwise
returns the events to append (possibly none, for a repeated command).
Event ids derive from the command id, so deciding the same command twice on
the same state gives the same events, byte for byte.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Callable
from uuid import UUID, uuid5

from domain import commands as cmd
from domain import events as ev
from domain.agenda import accrued_interest
from domain.authority import (
    ROLE_RANK,
    approval_authority,
    counted_alone,
    in_approval_currency,
    may_act_alone,
    reduced_of,
)
from domain.calendar import next_send_moment, zone
from domain.durations import format_duration
from domain.errors import DomainError, shown
from domain.inputs import check_same_payment
from domain.money import Money
from domain.policy import APPROVER_ROLES, Policy, Role
from domain.state import CaseState, evolve, payment_report_key
from domain.users import CUSTOMER_PREFIX

NOTICE_RETRY = timedelta(days=1)  # a notice to the insurer that could not be delivered is tried again


class _Emitter:
    """Collects events, applying each so later rules see the updated state."""

    def __init__(self, state: CaseState | None, command: cmd.Command, now: datetime) -> None:
        self.state = state
        self.command = command
        self.now = now
        self.events: list[ev.Event] = []

    def __call__(self, event_type: type[ev.Event], **data: object) -> ev.Event:
        case_id = self.state.case_id if self.state else data.pop("case_id")
        event = event_type(
            event_id=uuid5(self.command.command_id, str(len(self.events))),
            case_id=case_id,
            version=(self.state.version if self.state else 0) + 1,
            occurred_at=self.now,
            actor=self.command.actor.name,
            **data,
        )
        self.state = evolve(self.state, event)
        self.events.append(event)
        return event

    def new_id(self, prefix: str) -> str:
        """A short, globally unique id for a dispute, plan, approval..."""
        return f"{prefix}-{uuid5(self.command.command_id, prefix).hex[:16]}"


def decide(state: CaseState | None, command: cmd.Command, now: datetime, policy: Policy) -> list[ev.Event]:
    return decide_and_evolve(state, command, now, policy)[0]


def decide_and_evolve(state: CaseState | None, command: cmd.Command, now: datetime,
                      policy: Policy) -> tuple[list[ev.Event], CaseState | None]:
    """``decide``, and the state after its events: ``fold(events, state)``, which the decider
    has already computed while applying each event (a caller need not fold them again)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if isinstance(command, cmd.OpenCase):
        emit = _open(state, command, now, policy.for_case(command.invoice.advance is not None))
        return emit.events, emit.state
    if state is None:
        raise DomainError("case has not been opened yet", "case")
    # A closed case accepts nothing, except the record of a notice already in flight
    # and the reversal of a payment that closed it (the money never arrived).
    reversing = isinstance(command, cmd.ReversePayment) and state.outcome == ev.Outcome.paid
    in_flight = (cmd.RecordReminder, cmd.RecordInsurerNotice, cmd.RecordFactorNotice, cmd.Tick)
    if state.closed and not isinstance(command, in_flight) and not reversing:
        raise DomainError(f"case is closed ({state.outcome.value}); it accepts no further commands", "case")
    if command.actor.is_customer and not isinstance(command, CUSTOMER_COMMANDS):
        raise DomainError(f"a customer may not {type(command).__name__} (only the self-service page's actions)", "as")
    emit = _Emitter(state, command, now)
    _HANDLERS[type(command)](emit, command, policy.for_case(state.advance is not None))
    return emit.events, emit.state


# What a customer may do through the self-service link (docs/SELFSERVICE.md); nothing else.
CUSTOMER_COMMANDS = (cmd.MakePromise, cmd.OpenDispute, cmd.ProposePlan, cmd.ReportPayment, cmd.CorrectContact)


# -- helpers -----------------------------------------------------------------


def _same_currency(state: CaseState, amount: Money, field: str = "amount") -> None:
    if amount.currency != state.currency:
        raise DomainError(f"currency {amount.currency} does not match the invoice currency {state.currency}", field)


def _positive_within_balance(state: CaseState, amount: Money, field: str = "amount") -> None:
    _same_currency(state, amount, field)
    if not amount.is_positive:
        raise DomainError(f"must be positive, got {amount.amount}", field)
    if amount > state.balance:
        raise DomainError(f"{amount} exceeds the open balance {state.balance}", field)


def _require_role(actor_role: Role | None, allowed: tuple[Role, ...], what: str) -> None:
    if actor_role not in allowed:
        names = " or ".join(r.value for r in allowed)
        raise DomainError(f"only a {names} may {what}", "as")


def _end_of_day(day, timezone_name: str = "UTC") -> datetime:
    """The moment ``day`` ends in the named time zone, in UTC."""
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone(timezone_name)).astimezone(timezone.utc)


def _send_moment(due: datetime, customer: ev.Customer, policy: Policy) -> datetime:
    return next_send_moment(due, customer.country, customer.timezone, policy.notices)


def _next_tier(policy: Policy, tier: Role) -> Role | None:
    tiers = policy.escalation.tiers
    index = tiers.index(tier) if tier in tiers else -1
    return tiers[index + 1] if index + 1 < len(tiers) else None


def _closing_totals(s: CaseState) -> dict:
    """What a CaseClosed records: every way the balance went down, and the fees it went up by.
    original + fees = paid before opening + payments + credit applied + indemnity + credits + write-offs
    + ERP adjustments + paid outside the engine + discounts + factored (paid before opening,
    payments, credit applied and paid outside the engine: what still settles the invoice, net of
    an amendment's credit)."""
    totals = dict(payments=s.payments, credits=s.credits, write_offs=s.write_offs, fees=s.fees,
                  credit_applied=s.credit_applied, indemnity=s.indemnity)
    if s.erp_adjustments is not None or s.paid_outside is not None:  # only then: older events stay as they were
        totals.update(erp_adjustments=s.erp_adjustments,
                      paid_outside=None if s.paid_outside is None else s.paid_outside_settling_total)
    if s.discounts is not None or s.factored is not None:  # likewise (docs/FINANCING.md)
        totals.update(discounts=s.discounts, factored=s.factored)
    if s.paid_before_open.is_positive:  # likewise
        totals.update(paid_before_open=s.paid_before_open)
    return totals


def _close_if_settled(emit: _Emitter, outcome: ev.Outcome) -> None:
    s = emit.state
    if s is not None and not s.closed and not s.balance.is_positive:
        emit(ev.CaseClosed, outcome=outcome, **_closing_totals(s))


# -- commands ----------------------------------------------------------------


def _open(state: CaseState | None, c: cmd.OpenCase, now: datetime, policy: Policy) -> _Emitter:
    if state is not None:
        raise DomainError(f"a case is already open for invoice {state.invoice_id}", "invoice_id")
    inv = c.invoice
    if not inv.amount.is_positive:
        raise DomainError(f"invoice amount must be positive, got {inv.amount.amount}", "amount")
    if inv.paid.currency != inv.amount.currency:
        raise DomainError("payments and invoice are in different currencies", "currency")
    balance = inv.amount - inv.paid
    if not balance.is_positive:
        raise DomainError(f"invoice {inv.invoice_id} is already paid", "invoice_id")
    ladder = policy.ladder(inv.risk_grade)
    emit = _Emitter(None, c, now)
    emit(
        ev.CaseOpened,
        case_id=c.case_id,
        invoice_id=inv.invoice_id,
        customer=inv.customer,
        risk_grade=inv.risk_grade,
        original_amount=inv.amount,
        opening_balance=balance,
        issue_date=inv.issue_date,
        due_date=inv.due_date,
        reason=c.reason,
        policy_version=policy.version,
        ladder_steps=len(ladder),
        first_reminder_at=_send_moment(_reminders_from(c, now) + ladder[0].after, inv.customer, policy),
        assignee=c.assignee,
        erp_paid=inv.erp_paid,
        advance=inv.advance,
    )
    if inv.insurance is not None:
        _emit_insured(emit, inv, policy)
    if c.reason == ev.OpenReason.dispute:
        _emit_dispute(emit, "opened_as_dispute", balance, c.actor.name, policy)
    if c.customer_pause is not None and c.customer_pause.until > now:
        _emit_pause(emit, c.customer_pause.until, c.customer_pause.reason, "customer", c.customer_pause.requested_by,
                    c.customer_pause.requested_by_role, policy)
    return emit


def _reminders_from(c: cmd.OpenCase, now: datetime) -> datetime:
    """The moment the ladder's first step counts from: the opening, or the due date's start for a
    case opened before it (a reminder must not reach a customer before the money is due)."""
    if not c.reminders_after_due:
        return now
    return max(now, datetime.combine(c.invoice.due_date, time(0), tzinfo=timezone.utc))


def _emit_insured(emit: _Emitter, inv: cmd.InvoiceFacts, policy: Policy) -> None:
    """The insurer's deadlines for this case, decided once: notify the insurer
    ``notify_after`` past the due date (the policy), never later than the insurer's
    deadline (``notify_within`` past the due date), and at once if the case opens later."""
    cover = inv.insurance
    due_end = _end_of_day(inv.due_date)
    notify_by = due_end + cover.notify_within
    notify_at = max(emit.now, min(due_end + policy.insurance.notify_after, notify_by - timedelta(days=1)))
    emit(
        ev.CaseInsured,
        insurer_id=cover.insurer_id,
        insurer_name=cover.insurer_name,
        insurer_email=cover.insurer_email,
        policy_number=cover.policy_number,
        indemnity_percent=cover.indemnity_percent,
        notify_at=notify_at,
        notify_by=notify_by,
        extension_until=inv.due_date + cover.max_extension,
        claim_waiting=cover.claim_waiting,
    )


def _pay(emit: _Emitter, c: cmd.RecordPayment, policy: Policy) -> None:
    s = emit.state
    if c.payment_id in s.payment_ids:
        _same_payment(s, c)
        return  # the same payment again: already applied
    _same_currency(s, c.amount)
    if not c.amount.is_positive:
        raise DomainError(f"must be positive, got {c.amount.amount}", "amount")
    if c.received_on > emit.now.date():
        raise DomainError(f"{c.received_on} is in the future", "received_on")
    applied = c.amount.min(s.balance)
    emit(
        ev.PaymentReceived,
        payment_id=c.payment_id,
        amount=c.amount,
        applied=applied,
        excess=c.amount - applied,
        reference=c.reference,
        received_on=c.received_on,
        payer=c.payer,
        matched_by=c.matched_by,
    )
    _discount_if_in_time(emit, c)
    if c.within_tolerance:
        _small_balance(emit, c.payment_id, policy)
    _after_settlement(emit, policy)


def _small_balance(emit: _Emitter, payment_id: str, policy: Policy) -> None:
    """What a bank receipt left open, written off when it is within the policy's tolerance for
    the currency and one person may make such a reduction alone; else it stays open."""
    left = emit.state.balance
    tolerance = policy.matching.tolerance_for(left.currency)
    if not left.is_positive or left.amount > tolerance:
        return
    try:
        if not may_act_alone(policy, left, emit.state.reduced_alone):
            return
        converted = in_approval_currency(policy.approval, left)
    except DomainError:  # no rate to the approval currency: no authority can be checked
        return
    emit(ev.SmallBalanceWrittenOff, payment_id=payment_id, amount=left, tolerance=Money.of(tolerance, left.currency),
         authority_amount=converted.amount, rate=converted.rate)


def _same_payment(s: CaseState, c: cmd.RecordPayment) -> None:
    """A payment id is an idempotency key bound to what it paid: the same content again is a
    repeat, anything else under that id is a conflict (never silently taken as a repeat)."""
    settled = s.settled_by_payment.get(c.payment_id)
    if settled is None or settled.amount is None:  # recorded before payments kept their content
        return
    check_same_payment(c.payment_id,
                       {"amount": settled.amount, "received_on": settled.received_on, "reference": settled.reference},
                       {"amount": c.amount, "received_on": c.received_on, "reference": c.reference})


def _after_settlement(emit: _Emitter, policy: Policy) -> None:
    """Money came in (a payment or customer credit): promise, instalments, closing."""
    s = emit.state
    if s.promise is not None and s.promise.paid_since >= s.promise.amount:
        emit(ev.PromiseKept, promise_id=s.promise.promise_id)
    _mark_instalments(emit)
    if not emit.state.balance.is_positive:
        _interest_at_close(emit, policy)
    _close_if_settled(emit, ev.Outcome.paid)


def _interest_at_close(emit: _Emitter, policy: Policy) -> None:
    """Settled: the interest accrued since the last notice charged it, to today, is charged too
    (once a notice has stated interest); the case stays open for it. Nothing accrues once the
    principal is paid, so paying that closes the case."""
    s = emit.state
    if policy.interest is None or s.closed or s.level < policy.interest.from_level:
        return
    accrual = accrued_interest(s, policy, emit.now.date())
    charged = s.interest or Money.zero(s.currency)
    if accrual is not None and accrual.interest > charged:
        emit(ev.InterestCharged, level=0, regime=accrual.regime, accrued_to=emit.now.date(), accrued=accrual.interest,
             interest=accrual.interest - charged, compensation=None, basis=accrual.describe())


def _apply_credit(emit: _Emitter, c: cmd.ApplyCustomerCredit, policy: Policy) -> None:
    s = emit.state
    if c.allocation_id in s.allocation_ids:
        return  # this allocation is already applied
    _positive_within_balance(s, c.amount)
    emit(ev.CustomerCreditApplied, allocation_id=c.allocation_id, amount=c.amount)
    _after_settlement(emit, policy)


def _check_extension(s: CaseState, last_day, field: str) -> None:
    """An insured invoice may not be put off beyond the insurer's maximum extension."""
    ins = s.insurance
    if ins is not None and not ins.cover_lost and last_day > ins.extension_until:
        raise DomainError(
            f"{last_day} is beyond the insurer's maximum extension ({ins.extension_until}, "
            f"{ins.insurer_name} policy {ins.policy_number})", field)


def _insurer_notice(emit: _Emitter, c: cmd.RecordInsurerNotice, policy: Policy) -> None:
    s = emit.state
    ins = s.insurance
    if ins is None:
        raise DomainError("the invoice of this case is not insured", "case")
    if ins.notified_at is not None:
        return  # already recorded
    if not c.delivered:
        if s.closed:
            return  # nothing more to do: the case closed while the notice was in flight
        emit(ev.InsurerNotificationFailed, message_id=c.message_id, recipient=c.recipient,
             error=c.error or "not delivered", retry_at=emit.now + NOTICE_RETRY)
        return
    in_time = emit.now <= ins.notify_by
    emit(ev.InsurerNotified, message_id=c.message_id, recipient=c.recipient, notify_by=ins.notify_by,
         in_time=in_time, claim_at=emit.now + ins.claim_waiting if in_time else None)


def _record_indemnity(emit: _Emitter, c: cmd.RecordIndemnity, policy: Policy) -> None:
    s = emit.state
    ins = s.insurance
    _require_role(c.actor.role, APPROVER_ROLES, "record an insurer's indemnity")
    if ins is None or ins.claim_id is None:
        raise DomainError("no insurance claim has been filed on this case", "case")
    if ins.indemnity is not None:
        raise DomainError(f"the indemnity of claim {ins.claim_id} is already recorded ({ins.indemnity})", "case")
    _positive_within_balance(s, c.amount)
    cmd.check_text(c.reference, "reference")
    emit(ev.IndemnityReceived, claim_id=ins.claim_id, amount=c.amount, reference=c.reference)
    _close_if_settled(emit, ev.Outcome.resolved)


def _net_of_indemnity(s: CaseState) -> Money:
    """The most that may be written off: the balance less any indemnity still expected."""
    ins = s.insurance
    if ins is not None and ins.claim_pending and ins.expected_indemnity is not None:
        return s.balance - ins.expected_indemnity.min(s.balance)
    return s.balance


def _reverse_payment(emit: _Emitter, c: cmd.ReversePayment, policy: Policy) -> None:
    s = emit.state
    if c.payment_id in s.reversed_payment_ids:
        return  # already reversed
    settled = s.settled_by_payment.get(c.payment_id)
    if settled is None:
        raise DomainError(f"payment {shown(c.payment_id)} was not applied to this case", "payment_id")
    cmd.check_text(c.reason, "reason", required=True)
    emit(ev.PaymentReversed, payment_id=c.payment_id, applied=settled.applied, excess=settled.excess,
         reason=c.reason)
    if settled.small_balance is not None:  # the tolerance's write-off stood on this receipt
        emit(ev.SmallBalanceWriteOffReversed, payment_id=c.payment_id, amount=settled.small_balance)
    s = emit.state
    if s.closed and s.balance.is_positive:
        remind = s.level < s.ladder_steps
        emit(
            ev.CaseReopened,
            reason="payment reversed",
            next_reminder_at=_send_moment(emit.now, s.customer, policy) if remind else None,
            escalate_at=None if remind else emit.now,
        )


def _mark_instalments(emit: _Emitter) -> None:
    while True:
        plan = emit.state.plan
        if plan is None or plan.status != "accepted":
            return
        nxt = plan.next_unpaid()
        settled = not emit.state.balance.is_positive
        if nxt is None or (plan.paid_toward_next < nxt.amount and not settled):
            return
        emit(ev.InstalmentPaid, plan_id=plan.plan_id, seq=nxt.seq, amount=nxt.amount.min(plan.paid_toward_next))


def _emit_dispute(emit: _Emitter, reason: str, amount: Money, owner: str, policy: Policy, note: str = "",
                  attachment: ev.Attachment | None = None) -> None:
    emit(
        ev.DisputeOpened,
        dispute_id=emit.new_id("DS"),
        reason=reason,
        amount=amount,
        owner=owner,
        resolve_by=emit.now + policy.dispute.resolution_sla,
        **({"note": note} if note else {}),
        **({"attachment": attachment} if attachment else {}),
    )


def _dispute_open(emit: _Emitter, c: cmd.OpenDispute, policy: Policy) -> None:
    s = emit.state
    if s.dispute is not None:
        raise DomainError(f"dispute {s.dispute.dispute_id} is already open on this case", "case")
    cmd.check_code(c.reason, "reason")
    cmd.check_text(c.note, "comment")
    owner = c.owner or c.actor.name
    if c.actor.is_customer:  # from the self-service page: a reason of the policy's list; the team owns it
        reasons = policy.self_service.dispute_reasons
        if c.reason not in reasons:
            raise DomainError(f"{c.reason!r} is not one of the reasons you may give ({', '.join(reasons)})", "reason")
        owner = c.owner or s.assignee or Role.collector.value
    if c.attachment is not None:
        check_attachment(c.attachment, policy)
    amount = c.amount or s.balance
    _positive_within_balance(s, amount)
    _emit_dispute(emit, c.reason, amount, owner, policy, c.note, c.attachment)


def check_attachment(a: ev.Attachment, policy: Policy) -> None:
    rules = policy.self_service
    if a.content_type not in rules.attachment_types:
        raise DomainError(f"{a.name!r} is {a.content_type}; send one of: {', '.join(rules.attachment_types)}",
                          "attachment")
    if not 0 < a.size <= rules.attachment_max_bytes:
        raise DomainError(f"{a.name!r} has {a.size} bytes; at most {rules.attachment_max_bytes} allowed",
                          "attachment")
    if len(a.sha256) != 64 or any(ch not in "0123456789abcdef" for ch in a.sha256):
        raise DomainError("the attachment's SHA-256 must be 64 hexadecimal digits", "attachment")


def _dispute_resolve(emit: _Emitter, c: cmd.ResolveDispute, policy: Policy) -> None:
    s = emit.state
    if s.dispute is None:
        raise DomainError("there is no open dispute on this case", "case")
    cmd.check_text(c.note, "note")
    pending = next((a for a in s.pending_approvals if a.kind == "credit"), None)
    if pending is not None:
        raise DomainError(f"a credit of {pending.amount} for this dispute is waiting for approval "
                          f"{pending.approval_id}", "case")
    credit = None
    if c.outcome == ev.DisputeOutcome.upheld:
        credit = c.credit or s.dispute.amount.min(s.balance)
        _positive_within_balance(s, credit, "credit")
        if not may_act_alone(policy, credit, s.reduced_alone):  # four eyes: the credit waits for a second person
            _request_reduction(emit, "credit", credit, "dispute_upheld", c.note, policy, s.dispute.dispute_id)
            return
    elif c.credit is not None:
        raise DomainError("a rejected dispute grants no credit", "credit")
    emit(ev.DisputeResolved, dispute_id=s.dispute.dispute_id, outcome=c.outcome, credit=credit, note=c.note)
    _close_if_settled(emit, ev.Outcome.resolved)


def _request_reduction(emit: _Emitter, kind: str, amount: Money, reason: str, note: str, policy: Policy,
                       dispute_id: str | None = None) -> None:
    if emit.command.actor.is_system:
        raise DomainError("a reduction beyond the single-person threshold must be requested by a person", "as")
    emit(ev.ReductionRequested, approval_id=emit.new_id("RD"), kind=kind, amount=amount, reason=reason, note=note,
         requested_by=emit.command.actor.name, sla_due_at=emit.now + policy.approval.sla, dispute_id=dispute_id,
         reduced_alone=counted_alone(policy, emit.state.reduced_alone))


def _promise(emit: _Emitter, c: cmd.MakePromise, policy: Policy) -> None:
    s = emit.state
    if s.promise is not None:
        raise DomainError(f"a promise to pay by {s.promise.promised_date} is already open", "case")
    if s.escalation_pending:
        raise DomainError("the case is waiting for a supervisor decision", "case")
    if s.plan is not None and s.plan.status == "accepted":
        raise DomainError("the case is on a payment plan; renegotiate the plan instead", "case")
    _positive_within_balance(s, c.amount)
    # the customer's day: a promise for "today" made late in their evening is still today
    day_zone = s.customer.timezone if policy.promise.in_customer_day else "UTC"
    today = emit.now.astimezone(zone(day_zone)).date()
    if c.promised_date < today:
        raise DomainError(f"{c.promised_date} is in the past", "date")
    latest = (emit.now + policy.promise.max_horizon).date()
    if c.promised_date > latest:
        raise DomainError(f"{c.promised_date} is beyond the longest promise allowed ({latest})", "date")
    _check_extension(s, c.promised_date, "date")
    emit(
        ev.PromiseMade,
        promise_id=emit.new_id("PR"),
        amount=c.amount,
        promised_date=c.promised_date,
        check_at=_end_of_day(c.promised_date, day_zone) + policy.promise.grace,
    )


def _report_payment(emit: _Emitter, c: cmd.ReportPayment, policy: Policy) -> None:
    s = emit.state
    _same_currency(s, c.amount, "amount")
    if not c.amount.is_positive:
        raise DomainError(f"must be positive, got {c.amount.amount}", "amount")
    if c.paid_on > emit.now.date():
        raise DomainError(f"{c.paid_on} is in the future", "paid_on")
    cmd.check_text(c.reference, "reference")
    if payment_report_key(c.amount, c.paid_on, c.reference) in s.payment_reports:  # a form sent twice
        raise DomainError(f"this payment ({c.amount} on {c.paid_on}) was already reported", "reference")
    emit(ev.PaymentReported, report_id=emit.new_id("PT"), amount=c.amount, paid_on=c.paid_on,
         reference=c.reference)


def _correct_contact(emit: _Emitter, c: cmd.CorrectContact, policy: Policy) -> None:
    from domain.inputs import check_email

    email = check_email(c.email.strip(), "email")
    previous = emit.state.customer.email
    if email.lower() == previous.lower():
        raise DomainError(f"{email} is already the billing contact", "email")
    emit(ev.ContactCorrected, email=email, previous=previous)


def _plan_propose(emit: _Emitter, c: cmd.ProposePlan, policy: Policy) -> None:
    s = emit.state
    rules = policy.plan
    if s.plan is not None and s.plan.status in ("proposed", "approved", "accepted"):
        raise DomainError(f"plan {s.plan.plan_id} is already {s.plan.status}", "case")
    if s.plans_accepted > rules.max_renegotiations:
        raise DomainError(
            f"the policy allows at most {rules.max_renegotiations} renegotiation(s); this case has had "
            f"{s.plans_accepted} plan(s)",
            "case",
        )
    if s.dispute is not None:
        raise DomainError("resolve the open dispute before proposing a plan", "case")
    if not 1 <= c.instalments <= rules.max_instalments:
        raise DomainError(f"must be between 1 and {rules.max_instalments}, got {c.instalments}", "instalments")
    if not rules.min_interval <= c.every <= rules.max_interval:
        raise DomainError(
            f"must be between {format_duration(rules.min_interval)} and {format_duration(rules.max_interval)}, got {format_duration(c.every)}", "every"
        )
    first = c.first_due or emit.now + c.every
    if first < emit.now - timedelta(days=1):
        raise DomainError(f"{first.date()} is in the past", "first")
    latest = emit.now + rules.max_horizon
    if first > latest:
        raise DomainError(f"{first.date()} is beyond the plan horizon ({latest.date()})", "first")
    if first + (c.instalments - 1) * c.every > latest:
        raise DomainError(f"the last instalment would fall due after the plan horizon ({latest.date()})",
                          "instalments")
    amounts = s.balance.split(c.instalments)
    instalments = tuple(
        ev.Instalment(seq=i + 1, due_at=first + i * c.every, amount=amount) for i, amount in enumerate(amounts)
    )
    _check_extension(s, instalments[-1].due_at.date(), "instalments")
    # a customer asking on the self-service page has a collector's authority: beyond it, approval
    needs_approval = ((c.actor.role == Role.collector or c.actor.is_customer)
                      and c.instalments > rules.collector_max_instalments)
    emit(
        ev.PaymentPlanProposed,
        plan_id=emit.new_id("PL"),
        instalments=instalments,
        every=c.every,
        grace=rules.instalment_grace,
        requires_approval=needs_approval,
        approval_id=emit.new_id("AP") if needs_approval else None,
        sla_due_at=emit.now + policy.approval.sla if needs_approval else None,
        expires_at=emit.now + rules.offer_valid_for if rules.offer_valid_for is not None else None,
    )
    if c.actor.is_customer and not needs_approval:  # the customer asked for it: offered and taken at once
        emit(ev.PaymentPlanAccepted, plan_id=emit.state.plan.plan_id)


def _plan_accept(emit: _Emitter, c: cmd.AcceptPlan, policy: Policy) -> None:
    plan = emit.state.plan
    if plan is None or plan.status not in ("proposed", "approved"):
        raise DomainError("there is no proposed plan to accept", "case")
    if plan.requires_approval and plan.status != "approved":
        raise DomainError(f"plan {plan.plan_id} is waiting for approval {plan.approval_id}", "case")
    emit(ev.PaymentPlanAccepted, plan_id=plan.plan_id)


def _plan_withdraw(emit: _Emitter, c: cmd.WithdrawPlan, policy: Policy) -> None:
    plan = emit.state.plan
    if plan is None or not plan.open_offer:
        raise DomainError("there is no proposed plan to withdraw (an accepted plan is not an offer)", "case")
    cmd.check_text(c.reason, "reason", required=True)
    pending = plan.approval_id if emit.state.approval(plan.approval_id or "") is not None else None
    emit(ev.PaymentPlanWithdrawn, plan_id=plan.plan_id, approval_id=pending, reason=c.reason)


def _pause(emit: _Emitter, c: cmd.PauseDunning, policy: Policy) -> None:
    s = emit.state
    if s.pause is not None:
        raise DomainError(f"dunning is already paused until {s.pause.until.isoformat()} ({s.pause.reason}); "
                          "resume it first", "case")
    if s.pause_request is not None:
        raise DomainError(f"a pause is already waiting for approval {s.pause_request.approval_id}", "case")
    if c.actor.is_system:
        raise DomainError("a pause must be asked for by a person", "as")
    cmd.check_code(c.reason, "reason")
    if c.until.tzinfo is None:
        raise DomainError("must carry a time zone", "until")
    if c.until <= emit.now:
        raise DomainError(f"{c.until.isoformat()} is not in the future", "until")
    rules = policy.pause
    if c.until - emit.now > rules.max:
        raise DomainError(f"{c.until.isoformat()} is beyond the longest pause the policy allows "
                          f"({format_duration(rules.max)}: until {(emit.now + rules.max).isoformat()})", "until")
    _emit_pause(emit, c.until, c.reason, c.scope, c.actor.name, c.actor.role, policy)


def _emit_pause(emit: _Emitter, until: datetime, reason: str, scope: str, requested_by: str, role: Role | None,
                policy: Policy) -> None:
    """Paused at once, or (a collector's pause beyond their maximum) a supervisor's approval item."""
    pause_id = emit.new_id("PA")
    if role not in APPROVER_ROLES and until - emit.now > policy.pause.collector_max:
        emit(ev.PauseRequested, approval_id=emit.new_id("AP"), pause_id=pause_id, until=until, reason=reason,
             scope=scope, requested_by=requested_by, sla_due_at=emit.now + policy.approval.sla)
        return
    emit(ev.DunningPaused, pause_id=pause_id, until=until, reason=reason, scope=scope, requested_by=requested_by)


def _resume(emit: _Emitter, c: cmd.ResumeDunning, policy: Policy) -> None:
    s = emit.state
    if s.pause is None:
        raise DomainError("dunning is not paused on this case", "case")
    cmd.check_text(c.reason, "reason", required=True)
    emit(ev.DunningResumed, pause_id=s.pause.pause_id, reason=c.reason, ended="resumed")


def _escalation_decide(emit: _Emitter, c: cmd.DecideEscalation, policy: Policy) -> None:
    s = emit.state
    if not s.escalation_pending:
        raise DomainError("the case is not waiting for an escalation decision", "case")
    tier = s.escalation.tier
    _require_role(c.actor.role, tuple(r for r in APPROVER_ROLES if ROLE_RANK[r] >= ROLE_RANK[tier]), "decide it")
    cmd.check_text(c.note, "note")
    referral = c.decision in (ev.EscalationDecision.agency, ev.EscalationDecision.legal)
    emit(
        ev.EscalationDecided,
        escalation_id=s.escalation.escalation_id,
        decision=c.decision,
        note=c.note,
        continue_until=None if referral else emit.now + policy.escalation.continue_for,
    )
    if c.decision == ev.EscalationDecision.credit_hold:
        emit(ev.CreditHoldPlaced, customer_id=s.customer.customer_id, reason="escalation decision")
    elif c.decision == ev.EscalationDecision.write_off:
        net = _net_of_indemnity(emit.state)
        if net.is_positive:
            _emit_write_off(emit, net, "escalation", policy)


def _emit_write_off(emit: _Emitter, amount: Money, reason: str, policy: Policy) -> None:
    emit(
        ev.WriteOffRequested,
        approval_id=emit.new_id("WO"),
        amount=amount,
        reason=reason,
        requested_by=emit.command.actor.name,
        sla_due_at=emit.now + policy.approval.sla,
    )


def _write_off_request(emit: _Emitter, c: cmd.RequestWriteOff, policy: Policy) -> None:
    s = emit.state
    if c.actor.is_system:
        raise DomainError("a write-off must be requested by a person", "as")
    if any(a.kind == "write_off" for a in s.pending_approvals):
        raise DomainError("a write-off request is already waiting for approval", "case")
    cmd.check_code(c.reason, "reason")
    _positive_within_balance(s, c.amount)
    net = _net_of_indemnity(s)
    if c.amount > net:
        raise DomainError(f"{c.amount} exceeds the balance net of the indemnity expected from "
                          f"{s.insurance.insurer_name} ({net}): write off only what the insurer will not pay",
                          "amount")
    _emit_write_off(emit, c.amount, c.reason, policy)


def _approval_decide(emit: _Emitter, c: cmd.DecideApproval, policy: Policy) -> None:
    s = emit.state
    approval = s.approval(c.approval_id)
    if approval is None:
        raise DomainError(f"unknown approval {shown(c.approval_id)} on this case", "approval_id")
    if approval.status != "pending":
        raise DomainError(f"approval {c.approval_id} was already {approval.status}", "approval_id")
    allowed = tuple(r for r in APPROVER_ROLES if ROLE_RANK[r] >= ROLE_RANK[approval.tier])
    _require_role(c.actor.role, allowed, f"decide a {approval.kind.replace('_', '-')} at {approval.tier.value} level")
    # A reason is required to reject here; to approve, at the entry (app.services): approvals
    # recorded before that rule carry none and must still replay.
    cmd.check_text(c.reason, "reason", required=not c.approve)
    # a reduction's approver needs authority for what the case was reduced by in all (domain/authority.py)
    authority = approval_authority(c.actor, approval.kind, approval.tier, approval.requested_by, approval.amount,
                                   policy, reduced_of(s))
    if not (authority.approve if c.approve else authority.reject):
        raise DomainError(authority.reason, "as")
    if approval.kind == "pause":
        emit(ev.PauseDecided, approval_id=approval.approval_id, approved=c.approve, reason=c.reason)
        req = emit.state.pause_request
        if c.approve and req is not None and req.approval_id == approval.approval_id:
            if req.until <= emit.now:  # decided after the asked end date: nothing left to pause
                return
            emit(ev.DunningPaused, pause_id=req.pause_id, until=req.until, reason=req.reason, scope=req.scope,
                 requested_by=req.requested_by, approval_id=approval.approval_id)
        return
    if approval.kind == "plan":
        kind = ev.PaymentPlanApproved if c.approve else ev.PaymentPlanRejected
        emit(kind, plan_id=s.plan.plan_id, approval_id=approval.approval_id, reason=c.reason)
        if c.approve and s.plan.proposed_by.startswith(CUSTOMER_PREFIX):  # the customer asked for it
            emit(ev.PaymentPlanAccepted, plan_id=s.plan.plan_id)
        return
    if approval.kind in ("credit", "cancellation", "waiver"):
        _decide_reduction(emit, approval, c, policy)
        return
    if not c.approve:
        emit(ev.WriteOffRejected, approval_id=approval.approval_id, reason=c.reason)
        return
    converted = in_approval_currency(policy.approval, approval.amount)
    amount = approval.amount.min(s.balance)
    emit(ev.WriteOffApproved, approval_id=approval.approval_id, amount=amount, reason=c.reason,
         authority_amount=converted.amount, rate=converted.rate)
    _report_default_to_factor(emit, "written_off", amount)
    _close_if_settled(emit, ev.Outcome.written_off)


def _decide_reduction(emit: _Emitter, approval, c: cmd.DecideApproval, policy: Policy) -> None:
    if not c.approve:
        emit(ev.ReductionRejected, approval_id=approval.approval_id, kind=approval.kind, reason=c.reason)
        return
    s = emit.state
    converted = in_approval_currency(policy.approval, approval.amount)
    amount = approval.amount.min(s.balance)  # a payment since the request lowered what is left
    emit(ev.ReductionApproved, approval_id=approval.approval_id, kind=approval.kind, amount=amount, reason=c.reason,
         authority_amount=converted.amount, rate=converted.rate)
    if approval.kind == "credit":
        emit(ev.DisputeResolved, dispute_id=s.dispute.dispute_id, outcome=ev.DisputeOutcome.upheld,
             credit=amount if amount.is_positive else None, note=c.reason)
        _close_if_settled(emit, ev.Outcome.resolved)
    elif approval.kind == "waiver":
        waived = approval.amount.min(_waivable(s)).min(s.balance)
        if waived.is_positive:
            emit(ev.InterestWaived, amount=waived, reason=approval.reason, approval_id=approval.approval_id)
        _close_if_settled(emit, ev.Outcome.resolved)
    else:
        _emit_cancellation(emit, approval.reason)


def _migrate_policy(emit: _Emitter, c: cmd.MigratePolicy, policy: Policy) -> None:
    """Move the case to another policy: the ladder continues at the same step,
    timed by the new policy's offsets."""
    s = emit.state
    new = c.policy.for_case(s.advance is not None)
    _require_role(c.actor.role, APPROVER_ROLES, "move a case to another policy")
    cmd.check_text(c.reason, "reason", required=True)
    if new.version == s.policy_version:
        raise DomainError(f"the case already runs under policy {new.version}", "to")
    ladder = new.ladder(s.risk_grade)
    next_at = escalate_at = None
    if s.clock.kind == "remind" and s.level < len(ladder):
        next_at = _send_moment(s.opened_at + ladder[s.level].after + s.clock.shift, s.customer, new)
    elif s.clock.kind is not None:
        escalate_at = emit.now + new.escalation.after_final
    emit(ev.PolicyMigrated, from_version=s.policy_version, to_version=new.version, ladder_steps=len(ladder),
         next_reminder_at=next_at, escalate_at=escalate_at, reason=c.reason)


def _assign(emit: _Emitter, c: cmd.AssignCase, policy: Policy) -> None:
    emit(ev.CaseAssigned, assignee=c.assignee)


def _cancel(emit: _Emitter, c: cmd.CancelCase, policy: Policy) -> None:
    _require_role(c.actor.role, APPROVER_ROLES, "cancel a case")
    cmd.check_code(c.reason, "reason")
    s = emit.state
    pending = next((a for a in s.pending_approvals if a.kind == "cancellation"), None)
    if pending is not None:
        raise DomainError(f"the cancellation is already waiting for approval {pending.approval_id}", "case")
    if s.balance.is_positive and not may_act_alone(policy, s.balance, s.reduced_alone):
        _request_reduction(emit, "cancellation", s.balance, c.reason, "", policy)
        return
    _emit_cancellation(emit, c.reason)


def _emit_cancellation(emit: _Emitter, reason: str) -> None:
    emit(ev.CaseCancelled, reason=reason, amount=emit.state.balance)
    emit(ev.CaseClosed, outcome=ev.Outcome.cancelled, **_closing_totals(emit.state))


# -- the ERP's changes (invoice and customer sync) -------------------------------------------

CUSTOMER_FIELDS = ("name", "email", "language", "country", "timezone")


def erp_differences(s: CaseState, c: cmd.SyncInvoice) -> list[str]:
    """What the ERP's view of the invoice changes on the case (empty: nothing to record)."""
    found = [f"customer {name}" for name in CUSTOMER_FIELDS
             if getattr(s.customer, name) != getattr(c.customer, name)]
    if c.amount != s.current_invoice_amount:
        found.append("amount")
    found += [f"credit note {n.document_id}" for n in c.credit_notes if n.document_id not in s.credit_note_ids]
    if c.paid is not None and c.paid > s.erp_booked_total:
        found.append("paid outside")
    if c.due_date != s.due_date:
        found.append("due date")
    if c.cancelled:
        found.append("cancelled")
    return found


def _erp_sync(emit: _Emitter, c: cmd.SyncInvoice, policy: Policy) -> None:
    """Each difference is its own event, in a fixed order; the same facts again record nothing.
    Reductions are the ERP's documents: no approval, recorded with their source."""
    s = emit.state
    _same_currency(s, c.amount)
    if not c.amount.is_positive:
        raise DomainError(f"must be positive, got {c.amount.amount}", "amount")
    for note in c.credit_notes:
        _same_currency(s, note.amount, "credit_note")
        if not note.amount.is_positive:
            raise DomainError(f"credit note {note.document_id} must be positive, got {note.amount.amount}",
                              "credit_note")
    if c.paid is not None:
        _same_currency(s, c.paid, "paid")
        if c.paid < s.erp_booked_total:
            raise DomainError(f"{c.paid} is less than the {s.erp_booked_total} the ERP already booked as paid",
                              "paid")
    why = f"ERP export {c.source}"
    changed = tuple(name for name in CUSTOMER_FIELDS if getattr(s.customer, name) != getattr(c.customer, name))
    if c.customer.customer_id != s.customer.customer_id:
        raise DomainError(f"the invoice belongs to customer {s.customer.customer_id}, not "
                          f"{shown(c.customer.customer_id)}", "customer_id")
    if changed:
        emit(ev.CustomerDetailsChanged, customer=c.customer, changed=changed, reason=why)
    if c.amount != s.current_invoice_amount:
        _amend(emit, c.amount, why, policy)
    for note in c.credit_notes:
        if note.document_id not in emit.state.credit_note_ids:
            emit(ev.CreditNoteApplied, document_id=note.document_id, amount=note.amount,
                 applied=note.amount.min(emit.state.balance),
                 reason=f"ERP export {note.source}" if note.source else why)
    if c.paid is not None and c.paid > emit.state.erp_booked_total:
        booked = c.paid - emit.state.erp_booked_total
        emit(ev.PaidOutsideEngine, amount=booked, applied=booked.min(emit.state.balance), total=c.paid,
             reason=why)
        if not emit.state.balance.is_positive:
            _close_if_settled(emit, ev.Outcome.paid)
            return
    if c.due_date != emit.state.due_date:
        _move_due_date(emit, c.due_date, why, policy)
    if c.cancelled:
        if not emit.state.closed:
            emit(ev.CaseCancelled, reason=f"cancelled in the ERP ({why})", amount=emit.state.balance)
            emit(ev.CaseClosed, outcome=ev.Outcome.cancelled, **_closing_totals(emit.state))
        return
    _close_if_settled(emit, ev.Outcome.resolved)


def amendment(s: CaseState, amount: Money, below_paid_is_credit: bool = True,
              before_case_is_credit: bool = True, credit_applied_is_credit: bool = True,
              paid_outside_is_credit: bool = True) -> tuple[Money, Money | None]:
    """(change, credit) of the ERP amending the invoice to ``amount``. A reduction takes the
    balance to zero, not below; what it takes off beyond the open balance comes off what was
    paid: first the payments on the case (net of reversals), then the customer credit applied to
    the case (``credit_applied``), then what the ERP booked as paid outside the engine since the
    case opened and still settles the invoice (``paid_outside_settling``), then what was paid
    before the case opened and still settles the invoice (``paid_before_open``); each net of what
    an earlier amendment already made credit (``credit_taken_back`` and ``paid_outside_taken_back``
    say how much of the credit is the customer credit applied and the money paid outside). That
    part stays with the customer as credit (unapplied cash), as an overpayment's excess does.
    Credit notes, write-offs and other reductions are no money the customer paid: beyond them, the
    reduction stops.
    ``below_paid_is_credit`` False: as decided before that rule (no credit, the reduction stopped
    at the open balance). ``before_case_is_credit`` False: as decided before money paid before
    the case counted (only the payments on the case became credit). ``credit_applied_is_credit``
    False: as decided before the customer credit applied counted. ``paid_outside_is_credit``
    False: as decided before the money paid outside the engine counted. Credit None: none."""
    change = amount - s.current_invoice_amount
    floor = -s.balance  # the open balance
    if change >= floor:
        return change, None
    zero = Money.zero(s.currency)
    paid = s.payments
    paid += s.credit_applied_total if credit_applied_is_credit else zero
    paid += s.paid_outside_settling_total if paid_outside_is_credit else zero
    paid += s.paid_before_open if before_case_is_credit else zero
    credit = (floor - change).min(paid) if below_paid_is_credit else Money.zero(s.currency)
    if not credit.is_positive:
        return floor, None
    return (change if change >= floor - credit else floor - credit), credit


def credit_taken_back(s: CaseState, credit: Money, credit_applied_is_credit: bool = True) -> Money | None:
    """Of an amendment's ``credit``, what comes off the customer credit applied to the case: what
    the payments on the case do not cover, up to the credit applied (None: none)."""
    if not credit_applied_is_credit:
        return None
    back = (credit - s.payments).min(s.credit_applied_total)
    return back if back.is_positive else None


def paid_outside_taken_back(s: CaseState, credit: Money, credit_applied: Money | None,
                            paid_outside_is_credit: bool = True) -> Money | None:
    """Of an amendment's ``credit``, what comes off the money the ERP booked as paid outside the
    engine and still settling the invoice: what the payments on the case and the customer credit
    applied (``credit_applied``, as ``credit_taken_back`` decided it) do not cover, up to that money
    (None: none). What the ERP booked stays as it was: its next export's ``paid`` is compared with it."""
    if not paid_outside_is_credit:
        return None
    back = (credit - s.payments - (credit_applied or Money.zero(s.currency))).min(s.paid_outside_settling_total)
    return back if back.is_positive else None


def _amend(emit: _Emitter, amount: Money, why: str, policy: Policy) -> None:
    s = emit.state
    rules = policy.credit
    change, credit = amendment(s, amount, rules.amended_below_paid, rules.amended_below_paid_before_case,
                               rules.amended_below_credit_applied, rules.amended_below_paid_outside)
    extra: dict = {"credit": credit} if credit is not None else {}
    if credit is not None:
        back = credit_taken_back(s, credit, rules.amended_below_credit_applied)
        outside = paid_outside_taken_back(s, credit, back, rules.amended_below_paid_outside)
        extra.update({k: v for k, v in (("credit_applied", back), ("paid_outside", outside)) if v is not None})
    emit(ev.InvoiceAmended, previous=s.current_invoice_amount, amount=amount, change=change, reason=why, **extra)


def _move_due_date(emit: _Emitter, due, why: str, policy: Policy) -> None:
    """The ladder keeps its step and moves by as many days as the due date did; a notice
    already due by the new plan goes out at the next send moment, never in the past."""
    s = emit.state
    shift = timedelta(days=(due - s.due_date).days)
    next_at = None
    ladder = policy.ladder(s.risk_grade)
    if s.clock.kind == "remind" and s.level < len(ladder):
        planned = s.opened_at + ladder[s.level].after + s.clock.shift + shift
        next_at = _send_moment(max(planned, emit.now), s.customer, policy)
    emit(ev.DueDateMoved, previous=s.due_date, due_date=due, shift=shift, next_reminder_at=next_at, reason=why)


def _reminder(emit: _Emitter, c: cmd.RecordReminder, policy: Policy) -> None:
    s = emit.state
    if c.seq <= s.notices:
        return  # this notice's outcome is already recorded
    if c.seq != s.notices + 1 or not 1 <= c.level <= s.ladder_steps:
        raise DomainError(f"notice {c.seq} (level {c.level}) is not the one due", "seq")
    ladder = policy.ladder(s.risk_grade)
    step = ladder[min(c.level, len(ladder)) - 1]
    next_at = escalate_at = None
    if c.level < len(ladder):
        next_at = _send_moment(s.opened_at + ladder[c.level].after + s.clock.shift, s.customer, policy)
    else:
        escalate_at = emit.now + policy.escalation.after_final
    if c.withdrawn:  # no demand went out: the ladder stays where it was, the seq is used
        emit(ev.ReminderWithdrawn, seq=c.seq, level=c.level, reason=c.error or "the case closed before it was sent")
        return
    common = dict(seq=c.seq, level=c.level, step=step.name, message_id=c.message_id, recipient=c.recipient,
                  next_reminder_at=next_at, escalate_at=escalate_at)
    if not c.delivered:
        emit(ev.ReminderFailed, error=c.error or "not delivered", permanent=c.permanent, **common)
        return
    letter = dict(letter_sha256=c.letter_sha256, letter=c.letter) if c.letter_sha256 else {}
    emit(ev.ReminderSent, **common, **letter)
    if c.discount is not None and not s.closed:
        _discount_offered(emit, c.seq, c.discount)
    if c.fee is not None and c.fee.is_positive and not s.closed:
        _same_currency(s, c.fee, "fee")
        emit(ev.LateFeeCharged, level=c.level, fee=c.fee)
    due = c.interest
    if due is not None and not s.closed and (due.interest.is_positive or due.compensation is not None):
        _same_currency(s, due.interest, "interest")
        if due.compensation is not None and s.compensation is not None:
            raise DomainError("the fixed compensation was already charged on this case", "interest")
        emit(ev.InterestCharged, level=c.level, regime=due.regime, accrued_to=due.accrued_to, accrued=due.accrued,
             interest=due.interest, compensation=due.compensation, basis=due.basis)


def _waivable(s: CaseState) -> Money:
    """Interest and compensation charged and not yet waived."""
    zero = Money.zero(s.currency)
    return (s.interest or zero) + (s.compensation or zero) - (s.interest_waived or zero)


def _waive_interest(emit: _Emitter, c: cmd.WaiveInterest, policy: Policy) -> None:
    s = emit.state
    cmd.check_code(c.reason, "reason")
    if c.actor.is_system:
        raise DomainError("only a person may waive interest", "as")
    pending = next((a for a in s.pending_approvals if a.kind == "waiver"), None)
    if pending is not None:
        raise DomainError(f"a waiver of {pending.amount} is already waiting for approval {pending.approval_id}", "case")
    waivable = _waivable(s).min(s.balance)
    if not waivable.is_positive:
        raise DomainError("no interest or compensation is charged on this case", "case")
    amount = c.amount or waivable
    _positive_within_balance(s, amount)
    if amount > waivable:
        raise DomainError(f"{amount} exceeds the interest and compensation charged and not waived ({waivable})",
                          "amount")
    if not may_act_alone(policy, amount, s.reduced_alone):  # four eyes: the waiver waits for a second person
        _request_reduction(emit, "waiver", amount, c.reason, "", policy)
        return
    emit(ev.InterestWaived, amount=amount, reason=c.reason)
    _close_if_settled(emit, ev.Outcome.resolved)


def _tick(emit: _Emitter, c: cmd.Tick, policy: Policy) -> None:
    for rule in _DEADLINES:
        if emit.state.closed:
            return
        rule(emit, policy)


# -- deadlines (applied by Tick) -----------------------------------------------


def _escalate_when_due(emit: _Emitter, policy: Policy) -> None:
    s = emit.state
    clock = s.clock
    if clock.kind == "escalate" and clock.next_at is not None and clock.next_at <= emit.now:
        reason = "follow_up" if s.escalations else "ladder_exhausted"
        _emit_escalation(emit, reason, policy)


def _emit_escalation(emit: _Emitter, reason: str, policy: Policy) -> None:
    emit(
        ev.EscalatedToSupervisor,
        escalation_id=emit.new_id(f"ES{emit.state.escalations + 1}"),
        reason=reason,
        tier=policy.escalation.tiers[0],
        sla_due_at=emit.now + policy.escalation.sla,
    )
    _report_default_to_factor(emit, "escalated", emit.state.balance)


def _escalation_sla(emit: _Emitter, policy: Policy) -> None:
    s = emit.state
    esc = s.escalation
    if not s.escalation_pending or esc.sla_due_at is None or esc.sla_due_at > emit.now:
        return
    upward = _next_tier(policy, esc.tier)
    emit(
        ev.EscalationSlaLapsed,
        escalation_id=esc.escalation_id,
        from_tier=esc.tier,
        to_tier=upward or esc.tier,
        sla_due_at=emit.now + policy.escalation.sla if upward else None,
    )


def _approval_sla(emit: _Emitter, policy: Policy) -> None:
    for approval in emit.state.pending_approvals:
        if approval.sla_due_at is None or approval.sla_due_at > emit.now:
            continue
        upward = _next_tier(policy, approval.tier)
        emit(
            ev.ApprovalSlaLapsed,
            approval_id=approval.approval_id,
            to_tier=upward or approval.tier,
            sla_due_at=emit.now + policy.approval.sla if upward else None,
        )


def _promise_due(emit: _Emitter, policy: Policy) -> None:
    p = emit.state.promise
    if p is not None and p.check_at <= emit.now:
        emit(ev.PromiseBroken, promise_id=p.promise_id, paid=p.paid_since)


def _instalment_due(emit: _Emitter, policy: Policy) -> None:
    plan = emit.state.plan
    if plan is None or plan.status != "accepted":
        return
    nxt = plan.next_unpaid()
    if nxt is not None and nxt.due_at + plan.grace <= emit.now:
        emit(ev.PaymentPlanDefaulted, plan_id=plan.plan_id, missed_seq=nxt.seq)
        _emit_escalation(emit, "plan_defaulted", policy)


def _dispute_due(emit: _Emitter, policy: Policy) -> None:
    d = emit.state.dispute
    if d is not None and not d.overdue and d.resolve_by <= emit.now:
        emit(ev.DisputeOverdue, dispute_id=d.dispute_id, resolve_by=d.resolve_by)
        if policy.dispute.escalate_overdue:
            emit(ev.DisputeEscalated, dispute_id=d.dispute_id, from_tier=None, tier=policy.escalation.tiers[0],
                 sla_due_at=emit.now + policy.escalation.sla)


def _dispute_escalation_sla(emit: _Emitter, policy: Policy) -> None:
    """An escalated dispute nobody resolved within the tier's SLA goes upward."""
    d = emit.state.dispute
    if d is None or d.escalated_to is None or d.escalation_due_at is None or d.escalation_due_at > emit.now:
        return
    upward = _next_tier(policy, d.escalated_to)
    emit(ev.DisputeEscalated, dispute_id=d.dispute_id, from_tier=d.escalated_to, tier=upward or d.escalated_to,
         sla_due_at=emit.now + policy.escalation.sla if upward else None)


def _offer_lapsed(emit: _Emitter, policy: Policy) -> None:
    plan = emit.state.plan
    if plan is None or not plan.open_offer or plan.expires_at is None or plan.expires_at > emit.now:
        return
    pending = plan.approval_id if emit.state.approval(plan.approval_id or "") is not None else None
    emit(ev.PaymentPlanExpired, plan_id=plan.plan_id, approval_id=pending, expired_at=plan.expires_at)


def _pause_ends(emit: _Emitter, policy: Policy) -> None:
    p = emit.state.pause
    if p is not None and p.until <= emit.now:
        emit(ev.DunningResumed, pause_id=p.pause_id, reason=f"pause ended ({p.reason})", ended="end_date")


def _claim_due(emit: _Emitter, policy: Policy) -> None:
    """The claim waiting period ended and the invoice is still unpaid: file the claim."""
    s = emit.state
    ins = s.insurance
    if ins is None or ins.claim_at is None or ins.claim_id is not None or ins.claim_at > emit.now:
        return
    if not s.balance.is_positive:
        return
    emit(ev.ClaimFiled, claim_id=emit.new_id("CL"), amount=s.balance,
         expected_indemnity=s.balance.percent(ins.indemnity_percent))


_DEADLINES: tuple[Callable[[_Emitter, Policy], None], ...] = (
    _pause_ends,
    _offer_lapsed,
    _promise_due,
    _instalment_due,
    _escalate_when_due,
    _escalation_sla,
    _approval_sla,
    _dispute_due,
    _dispute_escalation_sla,
    _claim_due,
)

# -- early-cash instruments: factoring and early-payment discounts (docs/FINANCING.md) -------------


def _rate(value: Decimal, field: str, low_inclusive: bool, high: Decimal, high_inclusive: bool) -> Decimal:
    if not value.is_finite() or value != value.quantize(Decimal("0.0001")):
        raise DomainError(f"{value} is not a rate with at most 4 decimals", field)
    low_ok = value >= 0 if low_inclusive else value > 0
    high_ok = value <= high if high_inclusive else value < high
    if not (low_ok and high_ok):
        lower = "from 0" if low_inclusive else "above 0"
        upper = f"to {high}" if high_inclusive else f"below {high}"
        raise DomainError(f"must be {lower} {upper}, got {value}", field)
    return value


def _factor_assign(emit: _Emitter, c: cmd.AssignToFactor, policy: Policy) -> None:
    """Assign the invoice to a factor named in the policy; the factor's payment instructions are
    decided into the event, so notices carry them however the policy changes later."""
    s = emit.state
    f = s.financing
    if f is not None:
        if f.assignment_id == c.assignment_id:
            return  # the same assignment again
        raise DomainError(f"invoice {s.invoice_id} is already assigned to {f.factor} ({f.status})", "invoice_id")
    factor = policy.financing.factor(c.factor)
    if factor is None:
        known = ", ".join(x.name for x in policy.financing.factors) or "none in the policy"
        raise DomainError(f"{shown(c.factor)} is not a factor of the policy ({known})", "to")
    advance_rate = _rate(c.advance_rate, "advance_rate", False, Decimal(1), True)
    fee_rate = _rate(c.fee_rate, "fee_rate", True, Decimal(1), False)
    cmd.check_text(c.reason, "reason", required=True)
    if s.dispute is not None:
        raise DomainError(f"invoice {s.invoice_id} is disputed; a factor takes undisputed invoices", "invoice_id")
    if not c.recourse and (s.escalation_pending or s.referral or s.pending_approvals):
        raise DomainError("the case waits for an escalation decision or an approval; decide it before passing "
                          "the case to a factor without recourse", "recourse")
    hundred = Decimal(100)
    emit(ev.InvoiceAssignedToFactor, assignment_id=c.assignment_id, factor=factor.name,
         account_name=factor.account_name, iban=factor.iban, bic=factor.bic, factor_email=factor.email,
         recourse=c.recourse, assigned=s.balance, advance_rate=advance_rate,
         advanced=s.balance.percent(advance_rate * hundred), fee_rate=fee_rate,
         fee=s.balance.percent(fee_rate * hundred), reason=c.reason)


def _factor_outcome(emit: _Emitter, c: cmd.RecordFactorOutcome, policy: Policy) -> None:
    """The factor reports the invoice paid to it (the case closes as paid) or defaulted: without
    recourse the factor bears the loss (closed as resolved), with recourse the company dunns it again."""
    s = emit.state
    f = s.financing
    cmd.check_text(c.reason, "reason", required=True)
    if f is None or f.status != "assigned":
        state = "is not assigned to a factor" if f is None else f"is no longer with {f.factor} ({f.status})"
        raise DomainError(f"invoice {s.invoice_id} {state}", "invoice_id")
    if c.outcome == "collected":
        emit(ev.FactorCollected, assignment_id=f.assignment_id, amount=s.balance, reason=c.reason)
        _close_if_settled(emit, ev.Outcome.paid)
        return
    emit(ev.FactorDefaulted, assignment_id=f.assignment_id, recourse=f.recourse, amount=s.balance,
         derecognized=None if f.recourse else s.balance, reason=c.reason)
    _close_if_settled(emit, ev.Outcome.resolved)


def _report_default_to_factor(emit: _Emitter, trigger: str, amount: Money) -> None:
    """A case assigned with recourse escalated or was written off: the factor is told (once)."""
    f = emit.state.financing
    if f is None or not f.recourse or f.status != "assigned" or f.default_reported is not None:
        return
    emit(ev.FactorDefaultReported, assignment_id=f.assignment_id, trigger=trigger, amount=amount,
         recipient=f.factor_email)


def _factor_notice(emit: _Emitter, c: cmd.RecordFactorNotice, policy: Policy) -> None:
    f = emit.state.financing
    if f is None or f.default_reported is None:
        raise DomainError("no default has been reported to a factor on this case", "case")
    if f.factor_notified:
        return  # already recorded
    emit(ev.FactorNotified, assignment_id=f.assignment_id, message_id=c.message_id, recipient=c.recipient,
         delivered=c.delivered, error=c.error)


def _discount_offered(emit: _Emitter, seq: int, terms: ev.DiscountTerms) -> None:
    s = emit.state
    _same_currency(s, terms.pay, "discount")
    _same_currency(s, terms.discount, "discount")
    if s.discount_offer is not None:
        return  # one offer per case
    emit(ev.EarlyPaymentDiscountOffered, seq=seq, percent=terms.percent, discount=terms.discount, pay=terms.pay,
         pay_by=terms.pay_by)


def receipt_moment(received_on, now: datetime) -> datetime:
    """When a payment counts as received: when it is recorded, or the end of the day the bank
    received it if that day is over (a receipt recorded the next morning was in time)."""
    return min(now, _end_of_day(received_on))


def _discount_if_in_time(emit: _Emitter, c: cmd.RecordPayment) -> None:
    """A payment within the offer that leaves no more than the discount open: the rest is granted."""
    s = emit.state
    offer = s.discount_offer
    if offer is None or s.closed or s.discounts is not None or not s.balance.is_positive:
        return
    if s.balance > offer.discount or receipt_moment(c.received_on, emit.now) > offer.pay_by:
        return
    emit(ev.EarlyPaymentDiscountGranted, payment_id=c.payment_id, amount=s.balance, percent=offer.percent,
         pay_by=offer.pay_by)


_HANDLERS: dict[type, Callable[[_Emitter, cmd.Command, Policy], None]] = {
    cmd.RecordPayment: _pay,
    cmd.ReversePayment: _reverse_payment,
    cmd.OpenDispute: _dispute_open,
    cmd.ResolveDispute: _dispute_resolve,
    cmd.MakePromise: _promise,
    cmd.ReportPayment: _report_payment,
    cmd.CorrectContact: _correct_contact,
    cmd.ProposePlan: _plan_propose,
    cmd.AcceptPlan: _plan_accept,
    cmd.WithdrawPlan: _plan_withdraw,
    cmd.PauseDunning: _pause,
    cmd.ResumeDunning: _resume,
    cmd.DecideEscalation: _escalation_decide,
    cmd.RequestWriteOff: _write_off_request,
    cmd.DecideApproval: _approval_decide,
    cmd.MigratePolicy: _migrate_policy,
    cmd.AssignCase: _assign,
    cmd.CancelCase: _cancel,
    cmd.WaiveInterest: _waive_interest,
    cmd.RecordReminder: _reminder,
    cmd.RecordInsurerNotice: _insurer_notice,
    cmd.RecordIndemnity: _record_indemnity,
    cmd.ApplyCustomerCredit: _apply_credit,
    cmd.SyncInvoice: _erp_sync,
    cmd.Tick: _tick,
    cmd.AssignToFactor: _factor_assign,
    cmd.RecordFactorOutcome: _factor_outcome,
    cmd.RecordFactorNotice: _factor_notice,
}


def case_uuid(invoice_id: str) -> UUID:
    """The case id of an invoice: stable, so opening twice finds the same case."""
    return uuid5(_CASE_NAMESPACE, invoice_id)


_CASE_NAMESPACE = UUID("6f1d2a8e-4c1b-5e0f-9a3d-7b2c8e4f1a90")
