"""Given events / when command / then events: every transition and rejection."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from uuid import uuid4

import pytest

from domain import commands as cmd
from domain.agenda import next_action, notice_due
from domain.decider import case_uuid, decide
from domain.errors import DomainError
from domain.events import DisputeOutcome, EscalationDecision, OpenReason, Outcome
from domain.money import Money
from domain.policy import RiskGrade, Role
from domain.state import CaseStatus
from domain.users import SYSTEM_ACTOR
from tests.domain.scenario import (
    COLLECTOR,
    MANAGER,
    SUPERVISOR,
    SUPERVISOR_2,
    T0,
    Case,
    default_policy,
    invoice,
    types,
    usd,
)


def rejected(case: Case, command_type, match: str, actor=COLLECTOR, **data) -> None:
    before = list(case.events)
    with pytest.raises(DomainError, match=match):
        case.when(command_type, actor=actor, **data)
    assert case.events == before


# -- opening -------------------------------------------------------------------


def test_open_schedules_first_reminder_from_the_ladder():
    case = Case().open()
    s = case.state
    assert types(case.events) == ["CaseOpened"]
    assert s.status == CaseStatus.open and s.balance == usd("1000.00") and s.version == 1
    assert next_action(s).kind == "remind"
    assert next_action(s).at == T0 + timedelta(days=3)  # grade B: friendly at P3D


def test_a_case_opened_before_the_due_date_reminds_only_from_it():
    """Given an invoice due in 20 days, when a collector opens its case (reminders after due),
    then the first reminder counts from the due date; an opening recorded before the rule
    (the flag unset, as in old histories) still counts from the opening."""
    due = T0.date() + timedelta(days=20)
    early = invoice().model_copy(update={"due_date": due})
    case = Case()
    case.when(cmd.OpenCase, actor=COLLECTOR, case_id=case_uuid(early.invoice_id), invoice=early,
              reason=OpenReason.manual, reminders_after_due=True)
    first = next_action(case.state).at  # within the customer's send window of that day
    assert first.date() == due + timedelta(days=3) and first >= datetime.combine(due, time(0), timezone.utc)
    recorded = Case()
    recorded.when(cmd.OpenCase, actor=COLLECTOR, case_id=case_uuid(early.invoice_id), invoice=early,
                  reason=OpenReason.manual)
    assert next_action(recorded.state).at == T0 + timedelta(days=3)
    late = Case()  # opened after the due date: from the opening, flag or not
    late.when(cmd.OpenCase, actor=SYSTEM_ACTOR, case_id=case_uuid("INV-1"), invoice=invoice(), reminders_after_due=True)
    assert next_action(late.state).at == T0 + timedelta(days=3)


def test_open_twice_is_rejected():
    case = Case().open()
    with pytest.raises(DomainError, match="already open"):
        case.open()


def test_open_paid_invoice_is_rejected():
    with pytest.raises(DomainError, match="already paid"):
        Case().open(invoice(amount="100.00", paid="100.00"))


def test_open_partially_paid_invoice_starts_with_the_rest():
    case = Case().open(invoice(amount="100.00", paid="30.00"))
    assert case.state.balance == usd("70.00")


def test_open_as_dispute_opens_a_dispute():
    case = Case().open(reason=OpenReason.dispute)
    assert types(case.events) == ["CaseOpened", "DisputeOpened"]
    assert case.state.status == CaseStatus.disputed
    assert case.state.clock.paused


def test_risk_grade_chooses_the_ladder():
    case = Case().open(invoice(grade=RiskGrade.D))
    assert case.state.ladder_steps == 2
    assert next_action(case.state).at == T0 + timedelta(days=1)


def test_event_ids_derive_from_the_command():
    case = Case().open()
    command = cmd.RecordPayment(command_id=uuid4(), actor=COLLECTOR, payment_id="p1", amount=usd("10"), received_on=T0.date())
    first = decide(case.state, command, T0, case.policy)
    again = decide(case.state, command, T0, case.policy)
    assert first == again and first[0].event_id != case.events[0].event_id


# -- ladder ----------------------------------------------------------------------


def test_ladder_sends_each_step_then_escalates():
    case = Case().open()
    case.at(T0 + timedelta(days=3))
    assert types(case.remind()) == ["ReminderSent"]
    assert next_action(case.state).at == T0 + timedelta(days=14)
    case.at(T0 + timedelta(days=14))
    case.remind()
    case.at(T0 + timedelta(days=30))
    fee = notice_due(case.state, case.policy).fee
    assert fee == usd("40.00")
    assert types(case.remind(fee=fee)) == ["ReminderSent", "LateFeeCharged"]
    assert case.state.balance == usd("1040.00")
    action = next_action(case.state)
    assert action.kind == "tick" and action.at == T0 + timedelta(days=37)
    assert case.tick() == []  # too early: nothing is due
    case.at(T0 + timedelta(days=37))
    escalated = case.tick()
    assert types(escalated) == ["EscalatedToSupervisor"]
    assert escalated[0].tier == Role.supervisor and escalated[0].reason == "ladder_exhausted"
    assert case.state.status == CaseStatus.escalated


def test_each_notice_gives_the_time_to_the_ladders_next_step():
    """A notice states how long the customer has: to the next reminder, after the final one to
    escalation (the policy's after_final), not a fixed seven days."""
    case = Case().open()  # grade B: 3, 14 and 30 days; escalation 7 days after the final notice
    waits = []
    for day in (3, 14, 30):
        case.at(T0 + timedelta(days=day))
        notice = notice_due(case.state, case.policy)
        waits.append(notice.respond_within)
        case.remind(fee=notice.fee)
    assert waits == [timedelta(days=11), timedelta(days=16), case.policy.escalation.after_final]


def test_recording_the_same_reminder_twice_is_a_no_op():
    case = Case().open().at(timedelta(days=3))
    seq = case.state.notices + 1
    case.remind()
    again = case.when(cmd.RecordReminder, actor=SYSTEM_ACTOR, seq=seq, level=1, message_id="m", recipient="r", delivered=True)
    assert again == []


def test_reminder_out_of_sequence_is_rejected():
    case = Case().open()
    rejected(case, cmd.RecordReminder, "not the one due", actor=SYSTEM_ACTOR, seq=3, level=1, message_id="m", recipient="r", delivered=True)


def test_permanent_rejection_is_recorded_and_flags_the_contact():
    case = Case().open().at(timedelta(days=3))
    events = case.remind(delivered=False, permanent=True, error="550 no such user")
    assert types(events) == ["ReminderFailed"]
    assert case.state.contact_problem and case.state.level == 1
    assert next_action(case.state).label == "send reminder 2"


def test_fee_percent_is_of_the_undisputed_balance():
    case = Case().open(invoice(grade=RiskGrade.C, amount="2000.00"))
    case.at(T0 + timedelta(days=1)).remind()
    case.at(T0 + timedelta(days=10)).remind()
    case.at(T0 + timedelta(days=11)).when(cmd.OpenDispute, reason="quality", amount=usd("1000.00"))
    notice = notice_due(case.state, case.policy)
    assert notice.final and notice.fee == usd("15.00") and notice.amount_due == usd("1015.00")


# -- payments --------------------------------------------------------------------


def test_partial_payment_reduces_the_balance():
    case = Case().open()
    assert types(case.pay("400.00")) == ["PaymentReceived"]
    assert case.state.balance == usd("600.00") and case.state.status == CaseStatus.open


def test_full_payment_closes_as_paid_and_keeps_the_invariant():
    case = Case().open()
    case.pay("400.00")
    assert types(case.pay("600.00")) == ["PaymentReceived", "CaseClosed"]
    s = case.state
    assert s.status == CaseStatus.paid and s.closed_at == T0
    assert s.original_amount + s.fees == s.paid_before_open + s.payments + s.credits + s.write_offs


def test_overpayment_leaves_customer_credit():
    case = Case().open()
    events = case.pay("1250.00")
    assert events[0].applied == usd("1000.00") and events[0].excess == usd("250.00")
    assert case.state.customer_credit == usd("250.00") and case.state.status == CaseStatus.paid


def test_same_payment_twice_is_applied_once():
    case = Case().open()
    case.pay("100.00", payment_id="bank-77")
    assert case.pay("100.00", payment_id="bank-77") == []
    assert case.state.balance == usd("900.00")


@pytest.mark.parametrize(
    "amount, currency, match",
    [("-5", "USD", "must be positive"), ("0", "USD", "must be positive"), ("10", "EUR", "does not match")],
)
def test_bad_payments_are_rejected(amount, currency, match):
    case = Case().open()
    rejected(case, cmd.RecordPayment, match, payment_id="x", amount=Money.of(amount, currency), received_on=T0.date())


def test_payment_received_in_the_future_is_rejected():
    case = Case().open()
    rejected(case, cmd.RecordPayment, "in the future", payment_id="x", amount=usd("5"), received_on=date(2027, 1, 1))


def test_closed_case_accepts_nothing():
    case = Case().open()
    case.pay("1000.00")
    rejected(case, cmd.RecordPayment, "closed", payment_id="late", amount=usd("5"), received_on=T0.date())
    rejected(case, cmd.OpenDispute, "closed", reason="quality")
    assert case.tick() == []


# -- disputes ----------------------------------------------------------------------


def test_dispute_pauses_the_ladder_and_rejection_resumes_where_it_stopped():
    case = Case().open()
    case.at(T0 + timedelta(days=3)).remind()  # next step due at day 14
    case.at(T0 + timedelta(days=10)).when(cmd.OpenDispute, reason="quality")  # 4 days left
    assert case.state.status == CaseStatus.disputed
    assert next_action(case.state).label == "dispute resolution due"
    case.at(T0 + timedelta(days=25))
    events = case.when(cmd.ResolveDispute, outcome=DisputeOutcome.rejected, note="goods were fine")
    assert types(events) == ["DisputeResolved"]
    assert next_action(case.state).at == T0 + timedelta(days=29)  # 25 + the 4 days left
    # later steps move by the same 15 days the dispute took
    case.at(T0 + timedelta(days=29)).remind()
    assert next_action(case.state).at == T0 + timedelta(days=30 + 15)


def test_upheld_dispute_credits_and_may_resolve_the_case():
    case = Case().open()
    case.when(cmd.OpenDispute, reason="pricing")
    # a 1,000.00 credit is above the policy's single-person threshold: it waits for four eyes
    requested = case.when(cmd.ResolveDispute, outcome=DisputeOutcome.upheld)
    assert types(requested) == ["ReductionRequested"] and requested[0].kind == "credit"
    assert case.state.balance == usd("1000.00") and case.state.dispute is not None
    events = case.when(cmd.DecideApproval, actor=SUPERVISOR, approval_id=requested[0].approval_id, approve=True,
                       reason="price list was wrong")
    assert types(events) == ["ReductionApproved", "DisputeResolved", "CaseClosed"]
    assert events[2].outcome == Outcome.resolved and case.state.credits == usd("1000.00")


def test_partial_dispute_keeps_dunning_the_rest():
    case = Case().open()
    case.when(cmd.OpenDispute, reason="pricing", amount=usd("300.00"))
    assert not case.state.clock.paused
    assert notice_due(case.state, case.policy).amount_due == usd("700.00")
    case.when(cmd.ResolveDispute, outcome=DisputeOutcome.upheld, credit=usd("80.00"))  # within one person's authority
    assert case.state.balance == usd("920.00") and case.state.status == CaseStatus.open


def test_dispute_rejections():
    case = Case().open()
    rejected(case, cmd.ResolveDispute, "no open dispute", outcome=DisputeOutcome.rejected)
    rejected(case, cmd.OpenDispute, "not a reason code", reason="Bad Reason!")
    rejected(case, cmd.OpenDispute, "exceeds the open balance", reason="pricing", amount=usd("5000"))
    case.when(cmd.OpenDispute, reason="pricing")
    rejected(case, cmd.OpenDispute, "already open", reason="quality")
    rejected(case, cmd.ResolveDispute, "grants no credit", outcome=DisputeOutcome.rejected, credit=usd("10"))


def test_dispute_past_its_deadline_is_flagged_once_and_escalated():
    case = Case().open()
    case.when(cmd.OpenDispute, reason="pricing")
    case.at(timedelta(days=31))
    assert types(case.tick()) == ["DisputeOverdue", "DisputeEscalated"]  # no silent stall: docs/CONTROLS.md
    assert case.tick() == []


# -- promises ------------------------------------------------------------------------


def test_promise_kept_when_paid_by_the_date():
    case = Case().open()
    case.when(cmd.MakePromise, amount=usd("1000.00"), promised_date=date(2026, 3, 10))
    assert case.state.status == CaseStatus.promised and case.state.clock.paused
    case.at(T0 + timedelta(days=5))
    assert types(case.pay("1000.00")) == ["PaymentReceived", "PromiseKept", "CaseClosed"]


def test_partial_promise_kept_resumes_dunning_for_the_rest():
    case = Case().open()
    case.when(cmd.MakePromise, amount=usd("400.00"), promised_date=date(2026, 3, 10))
    case.at(T0 + timedelta(days=5))
    assert types(case.pay("400.00")) == ["PaymentReceived", "PromiseKept"]
    assert case.state.status == CaseStatus.open
    assert next_action(case.state).at == T0 + timedelta(days=5 + 3)


def test_broken_promise_resumes_at_the_next_step_at_once():
    case = Case().open()
    case.when(cmd.MakePromise, amount=usd("500.00"), promised_date=date(2026, 3, 10))
    check = next_action(case.state)
    assert check.label == "promise to pay due"
    case.at(check.at)
    assert types(case.tick()) == ["PromiseBroken"]
    s = case.state
    assert s.promises_broken == 1 and s.status == CaseStatus.open
    assert next_action(s).kind == "remind" and next_action(s).at == check.at


def test_a_promised_day_is_the_customers_day():
    """A customer in Los Angeles promises at 18:00 their time (02:00 UTC the next day) to pay
    "today": the promise stands, and it is kept until their midnight, not UTC's."""
    facts = invoice()
    facts = facts.model_copy(update={"customer": facts.customer.model_copy(
        update={"country": "US", "timezone": "America/Los_Angeles"})})
    evening = datetime(2026, 3, 3, 2, 0, tzinfo=timezone.utc)  # 18:00 on 2 March in Los Angeles
    case = Case().open(facts).at(evening)
    [made] = case.when(cmd.MakePromise, amount=usd("500.00"), promised_date=date(2026, 3, 2))
    assert made.check_at == datetime(2026, 3, 3, 8, 0, tzinfo=timezone.utc) + case.policy.promise.grace
    case.at(made.check_at - timedelta(minutes=1))
    assert case.tick() == []  # still 2 March in Los Angeles
    case.at(made.check_at)
    assert types(case.tick()) == ["PromiseBroken"]

    # workflow runs recorded before the rule keep deciding by UTC's day
    before = Case(default_policy().before_promise_in_customer_day()).open(facts).at(evening)
    rejected(before, cmd.MakePromise, "in the past", amount=usd("500.00"), promised_date=date(2026, 3, 2))


def test_promise_rejections():
    case = Case().open()
    rejected(case, cmd.MakePromise, "in the past", amount=usd("10"), promised_date=date(2026, 3, 1))
    rejected(case, cmd.MakePromise, "beyond the longest", amount=usd("10"), promised_date=date(2026, 12, 1))
    rejected(case, cmd.MakePromise, "exceeds the open balance", amount=usd("10000"), promised_date=date(2026, 3, 5))
    case.when(cmd.MakePromise, amount=usd("10"), promised_date=date(2026, 3, 5))
    rejected(case, cmd.MakePromise, "already open", amount=usd("10"), promised_date=date(2026, 3, 6))


# -- escalation ------------------------------------------------------------------------


def escalated_case() -> Case:
    case = Case().open()
    for day in (3, 14, 30):
        case.at(T0 + timedelta(days=day)).remind()
    case.at(T0 + timedelta(days=37)).tick()
    assert case.state.status == CaseStatus.escalated
    return case


def test_escalation_sla_lapse_goes_to_the_finance_manager_then_stops():
    case = escalated_case()
    case.at(timedelta(days=2))
    lapsed = case.tick()
    assert types(lapsed) == ["EscalationSlaLapsed"] and lapsed[0].to_tier == Role.finance_manager
    rejected(case, cmd.DecideEscalation, "only a finance_manager", actor=SUPERVISOR, decision=EscalationDecision.agency)
    case.at(timedelta(days=2))
    top = case.tick()
    assert top[0].to_tier == Role.finance_manager and top[0].sla_due_at is None
    assert case.at(timedelta(days=10)).tick() == []
    case.when(cmd.DecideEscalation, actor=MANAGER, decision=EscalationDecision.legal)
    assert case.state.referral == "legal" and case.state.status == CaseStatus.escalated


def test_collector_cannot_decide_an_escalation():
    case = escalated_case()
    rejected(case, cmd.DecideEscalation, "only a supervisor or finance_manager", decision=EscalationDecision.agency)


def test_continue_decision_comes_back_after_continue_for():
    case = escalated_case()
    case.when(cmd.DecideEscalation, actor=SUPERVISOR, decision=EscalationDecision.continue_)
    assert case.state.status == CaseStatus.open
    case.at(timedelta(days=14))
    events = case.tick()
    assert types(events) == ["EscalatedToSupervisor"] and events[0].reason == "follow_up"


def test_credit_hold_decision_places_the_customer_on_hold():
    case = escalated_case()
    events = case.when(cmd.DecideEscalation, actor=SUPERVISOR, decision=EscalationDecision.credit_hold)
    assert types(events) == ["EscalationDecided", "CreditHoldPlaced"] and case.state.credit_hold


def test_write_off_decision_needs_four_eyes():
    case = escalated_case()
    events = case.when(cmd.DecideEscalation, actor=SUPERVISOR, decision=EscalationDecision.write_off)
    assert types(events) == ["EscalationDecided", "WriteOffRequested"]
    approval_id = events[1].approval_id
    rejected(case, cmd.DecideApproval, "four eyes", actor=SUPERVISOR, approval_id=approval_id, approve=True)
    done = case.when(cmd.DecideApproval, actor=SUPERVISOR_2, approval_id=approval_id, approve=True)
    assert types(done) == ["WriteOffApproved", "CaseClosed"] and case.state.status == CaseStatus.written_off
    s = case.state
    assert s.original_amount + s.fees == s.payments + s.credits + s.write_offs



def test_a_decided_escalation_keeps_the_balance_and_the_time_it_was_decided_on():
    case = escalated_case()
    owed = case.state.balance
    decided = case.when(cmd.DecideEscalation, actor=SUPERVISOR, decision=EscalationDecision.write_off)
    case.when(cmd.DecideApproval, actor=SUPERVISOR_2, approval_id=decided[1].approval_id, approve=True)
    escalation = case.state.escalation
    assert case.state.balance.is_zero and owed.is_positive
    assert escalation.balance_decided == owed and escalation.decided_at == decided[0].occurred_at


def test_an_escalation_and_approvals_still_waiting_when_the_case_closes_are_withdrawn_with_it():
    """Given an escalated case with a write-off request waiting, when the customer pays in full,
    then the case closes and neither waits for anyone any more: both are withdrawn, by whoever
    closed the case, when it closed, saying why (they stayed pending: a supervisor could never
    clear them, a closed case accepts no decision)."""
    case = escalated_case()
    request = case.when(cmd.RequestWriteOff, amount=usd("100.00"), reason="small_balance")
    assert case.state.escalation_pending and case.state.pending_approvals
    closed = case.at(timedelta(hours=1)).pay("1000.00")
    assert types(closed) == ["PaymentReceived", "CaseClosed"]
    s = case.state
    assert s.status == CaseStatus.paid and not s.escalation_pending and s.pending_approvals == ()
    esc = s.escalation
    assert (esc.decision, esc.withdrawn_at, esc.withdrawn_by, esc.withdrawn_reason) == (
        None, closed[1].occurred_at, COLLECTOR.name, "case closed (paid)")
    write_off = s.approval(request[0].approval_id)
    assert (write_off.status, write_off.decided_at, write_off.decision_reason) == (
        "withdrawn", closed[1].occurred_at, "case closed (paid)")
    rejected(case, cmd.DecideEscalation, "closed", actor=SUPERVISOR, decision=EscalationDecision.continue_)


def test_an_escalation_withdrawn_when_written_off_stays_withdrawn_and_a_reopened_case_escalates_anew():
    """Written off while escalated: withdrawn ('case closed (written_off)'). Paid in full, the
    payment reversed: the case reopens, the old escalation stays withdrawn, the next escalation is
    a new item."""
    written = escalated_case()
    request = written.when(cmd.RequestWriteOff, amount=usd("1000.00"), reason="insolvency")
    assert types(written.when(cmd.DecideApproval, actor=SUPERVISOR, approval_id=request[0].approval_id,
                              approve=True)) == ["WriteOffApproved", "CaseClosed"]
    assert written.state.approval(request[0].approval_id).status == "approved"  # decided before the close
    assert written.state.escalation.withdrawn_reason == "case closed (written_off)"

    case = escalated_case()
    first = case.state.escalation.escalation_id
    case.pay("1000.00", payment_id="P-1")
    reopened = case.when(cmd.ReversePayment, payment_id="P-1", reason="bounced")
    assert "CaseReopened" in types(reopened) and not case.state.escalation_pending
    again = case.tick()
    assert types(again) == ["EscalatedToSupervisor"] and again[0].escalation_id != first
    s = case.state
    assert s.escalation_pending and [e.escalation_id for e in s.past_escalations] == [first]
    assert s.past_escalations[0].withdrawn_reason == "case closed (paid)"

# -- payment plans ------------------------------------------------------------------------


def test_plan_within_collector_authority_needs_no_approval():
    case = Case().open()
    events = case.when(cmd.ProposePlan, instalments=3, every=timedelta(days=30))
    plan = events[0]
    assert not plan.requires_approval and [i.amount for i in plan.instalments] == [usd("333.33"), usd("333.33"), usd("333.34")]
    case.when(cmd.AcceptPlan)
    assert case.state.status == CaseStatus.on_plan
    case.at(timedelta(days=30))
    assert types(case.pay("333.33")) == ["PaymentReceived", "InstalmentPaid"]
    case.at(timedelta(days=30))
    case.pay("333.33")
    case.at(timedelta(days=30))
    assert types(case.pay("333.34")) == ["PaymentReceived", "InstalmentPaid", "CaseClosed"]


def test_long_plan_by_a_collector_needs_approval():
    case = Case().open()
    events = case.when(cmd.ProposePlan, instalments=6, every=timedelta(days=30))
    assert events[0].requires_approval
    assert case.state.status == CaseStatus.awaiting_approval
    rejected(case, cmd.AcceptPlan, "waiting for approval")
    case.when(cmd.DecideApproval, actor=SUPERVISOR, approval_id=events[0].approval_id, approve=True)
    assert types(case.when(cmd.AcceptPlan)) == ["PaymentPlanAccepted"]


def test_rejected_plan_is_discarded():
    case = Case().open()
    events = case.when(cmd.ProposePlan, instalments=6, every=timedelta(days=30))
    rejected(case, cmd.DecideApproval, "must not be empty", actor=SUPERVISOR, approval_id=events[0].approval_id, approve=False)
    case.when(cmd.DecideApproval, actor=SUPERVISOR, approval_id=events[0].approval_id, approve=False, reason="too long")
    assert case.state.plan is None and case.state.status == CaseStatus.open


def test_missed_instalment_past_grace_defaults_and_re_escalates():
    case = Case().open()
    case.when(cmd.ProposePlan, actor=SUPERVISOR, instalments=4, every=timedelta(days=30))
    case.when(cmd.AcceptPlan)
    case.at(timedelta(days=30)).pay("250.00")
    due = next_action(case.state)
    assert due.label == "instalment 2 due" and due.at == T0 + timedelta(days=60 + 5)
    case.at(due.at)
    events = case.tick()
    assert types(events) == ["PaymentPlanDefaulted", "EscalatedToSupervisor"]
    assert events[1].reason == "plan_defaulted" and case.state.status == CaseStatus.escalated


def test_renegotiation_is_bounded_by_policy():
    case = Case().open()
    for _ in range(2):  # first plan + one renegotiation (max_renegotiations = 1)
        case.when(cmd.ProposePlan, actor=SUPERVISOR, instalments=2, every=timedelta(days=30))
        case.when(cmd.AcceptPlan)
        case.at(timedelta(days=40)).tick()
        case.when(cmd.DecideEscalation, actor=SUPERVISOR, decision=EscalationDecision.plan)
    rejected(case, cmd.ProposePlan, "at most 1 renegotiation", actor=SUPERVISOR, instalments=2, every=timedelta(days=30))


def test_plan_rejections():
    case = Case().open()
    rejected(case, cmd.ProposePlan, "between 1 and 12", instalments=0, every=timedelta(days=30))
    rejected(case, cmd.ProposePlan, "between 1 and 12", instalments=13, every=timedelta(days=30))
    rejected(case, cmd.ProposePlan, "between P7D and P31D", instalments=2, every=timedelta(days=1))
    rejected(case, cmd.ProposePlan, "in the past", instalments=2, every=timedelta(days=30), first_due=T0 - timedelta(days=9))
    rejected(case, cmd.AcceptPlan, "no proposed plan")


# -- write-offs ---------------------------------------------------------------------------


def test_write_off_above_a_supervisors_limit_needs_a_manager():
    case = Case().open(invoice(amount="50000.00"))
    events = case.when(cmd.RequestWriteOff, amount=usd("50000.00"), reason="insolvency")
    approval_id = events[0].approval_id
    assert case.state.status == CaseStatus.awaiting_approval
    rejected(case, cmd.DecideApproval, "exceeds sam's write-off authority", actor=SUPERVISOR, approval_id=approval_id, approve=True)
    rejected(case, cmd.DecideApproval, "only a supervisor or finance_manager", actor=COLLECTOR, approval_id=approval_id, approve=True)
    done = case.when(cmd.DecideApproval, actor=MANAGER, approval_id=approval_id, approve=True)
    assert types(done) == ["WriteOffApproved", "CaseClosed"]


def test_partial_write_off_leaves_the_rest_open():
    case = Case().open()
    events = case.when(cmd.RequestWriteOff, amount=usd("100.00"), reason="small_balance")
    case.when(cmd.DecideApproval, actor=SUPERVISOR, approval_id=events[0].approval_id, approve=True)
    assert case.state.balance == usd("900.00") and case.state.status == CaseStatus.open


def test_write_off_rejection_and_rules():
    case = Case().open()
    rejected(case, cmd.RequestWriteOff, "exceeds the open balance", amount=usd("2000"), reason="x")
    rejected(case, cmd.RequestWriteOff, "must be positive", amount=usd("0"), reason="x")
    events = case.when(cmd.RequestWriteOff, amount=usd("100.00"), reason="small_balance")
    rejected(case, cmd.RequestWriteOff, "already waiting", amount=usd("10.00"), reason="x")
    rejected(case, cmd.DecideApproval, "unknown approval", actor=SUPERVISOR, approval_id="WO-nope", approve=True)
    case.when(cmd.DecideApproval, actor=SUPERVISOR, approval_id=events[0].approval_id, approve=False, reason="collect it")
    assert case.state.status == CaseStatus.open
    rejected(case, cmd.DecideApproval, "already rejected", actor=SUPERVISOR, approval_id=events[0].approval_id, approve=True)


def test_approval_sla_lapse_moves_it_to_the_finance_manager():
    case = Case().open()
    events = case.when(cmd.RequestWriteOff, amount=usd("100.00"), reason="small_balance")
    case.at(timedelta(days=2))
    assert types(case.tick()) == ["ApprovalSlaLapsed"]
    rejected(case, cmd.DecideApproval, "only a finance_manager", actor=SUPERVISOR, approval_id=events[0].approval_id, approve=True)


# -- cancel, assign ------------------------------------------------------------------------


def test_cancel_needs_a_supervisor_and_closes_with_credit():
    case = Case().open(invoice(amount="90.00"))  # within the single-person threshold (100 USD)
    rejected(case, cmd.CancelCase, "only a supervisor", reason="invoice_voided")
    events = case.when(cmd.CancelCase, actor=SUPERVISOR, reason="invoice_voided")
    assert types(events) == ["CaseCancelled", "CaseClosed"] and case.state.status == CaseStatus.cancelled


def test_assign():
    case = Case().open()
    case.when(cmd.AssignCase, assignee="cora")
    assert case.state.assignee == "cora"


# -- reversals ---------------------------------------------------------------------------------


def test_reversed_payment_puts_the_balance_back():
    case = Case().open()
    case.pay("300.00", payment_id="chq-1")
    events = case.when(cmd.ReversePayment, payment_id="chq-1", reason="cheque bounced")
    assert types(events) == ["PaymentReversed"] and case.state.balance == usd("1000.00")
    assert case.when(cmd.ReversePayment, payment_id="chq-1", reason="again") == []


def test_reversal_reopens_a_paid_case_and_dunning_resumes():
    case = Case().open()
    case.at(timedelta(days=3)).remind()
    case.pay("1100.00", payment_id="chq-2")  # 100.00 over: customer credit
    assert case.state.status == CaseStatus.paid and case.state.customer_credit == usd("100.00")
    case.at(timedelta(days=2))
    events = case.when(cmd.ReversePayment, payment_id="chq-2", reason="cheque bounced")
    assert types(events) == ["PaymentReversed", "CaseReopened"]
    s = case.state
    assert s.status == CaseStatus.open and s.balance == usd("1000.00") and s.customer_credit == usd("0.00")
    assert next_action(s).kind == "remind" and next_action(s).label == "send reminder 2"


def test_reversal_rules():
    case = Case().open()
    rejected(case, cmd.ReversePayment, "was not applied", payment_id="nope", reason="x")
    case.pay("10.00", payment_id="p")
    rejected(case, cmd.ReversePayment, "must not be empty", payment_id="p", reason=" ")
    requested = case.when(cmd.CancelCase, actor=SUPERVISOR, reason="invoice_voided")
    case.when(cmd.DecideApproval, actor=MANAGER, approval_id=requested[0].approval_id, approve=True, reason="voided")
    rejected(case, cmd.ReversePayment, "closed", payment_id="p", reason="bounced")


def test_policy_migration_keeps_the_step_and_uses_the_new_offsets():
    case = Case().open()
    case.at(timedelta(days=3)).remind()
    faster = case.policy.model_copy(update={
        "version": "faster-1",
        "ladders": {**case.policy.ladders, RiskGrade.B: tuple(
            s.model_copy(update={"after": s.after / 2}) for s in case.policy.ladders[RiskGrade.B])},
    })
    rejected(case, cmd.MigratePolicy, "only a supervisor", policy=faster, reason="faster ladder")
    events = case.when(cmd.MigratePolicy, actor=SUPERVISOR, policy=faster, reason="faster ladder")
    assert types(events) == ["PolicyMigrated"] and case.state.policy_version == "faster-1"
    assert next_action(case.state).at == T0 + timedelta(days=7)  # firm step: P14D halved
    rejected(case, cmd.MigratePolicy, "already runs under", actor=SUPERVISOR, policy=faster, reason="again")
