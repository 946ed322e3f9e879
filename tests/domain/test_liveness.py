"""No silent stall and dunning pauses (issue 13, item 6): given events, when command, then events."""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain import commands as cmd
from domain.agenda import human_items, next_action, stuck_reason, waiting_for
from domain.errors import DomainError
from domain.events import EscalationDecision
from domain.policy import Role
from domain.state import CaseStatus
from tests.domain.scenario import COLLECTOR, MANAGER, SUPERVISOR, SUPERVISOR_2, T0, Case, types

DAY = timedelta(days=1)


def rejected(case: Case, command_type, match: str, actor=COLLECTOR, **data) -> None:
    before = list(case.events)
    with pytest.raises(DomainError, match=match):
        case.when(command_type, actor=actor, **data)
    assert case.events == before


# -- plan offers lapse ---------------------------------------------------------------------


def test_a_proposed_plan_carries_its_expiry_and_the_agenda_waits_for_it():
    case = Case().open()
    case.at(DAY)
    case.when(cmd.ProposePlan, instalments=2, every=timedelta(days=14))
    plan = case.state.plan
    assert plan.expires_at == T0 + DAY + timedelta(days=14)  # default policy: P14D
    action = next_action(case.state)
    assert (action.label, action.at) == ("plan offer expires", plan.expires_at)


def test_an_offer_nobody_accepts_expires_and_dunning_resumes_where_it_stopped():
    case = Case().open()
    first_due = case.state.clock.next_at  # the friendly reminder
    case.at(DAY)
    case.when(cmd.ProposePlan, instalments=2, every=timedelta(days=14))
    assert case.state.clock.paused
    case.at(case.state.plan.expires_at)
    events = case.tick()
    assert types(events) == ["PaymentPlanExpired"]
    assert events[0].actor == "system" and events[0].expired_at == case.now
    s = case.state
    assert s.plan is None and not s.clock.paused
    # what was left of the wait at the proposal is left after the expiry
    assert s.clock.next_at == case.now + (first_due - (T0 + DAY))
    assert s.status == CaseStatus.open


def test_an_accepted_plan_does_not_expire():
    case = Case().open()
    case.when(cmd.ProposePlan, instalments=2, every=timedelta(days=14))
    case.when(cmd.AcceptPlan)
    case.at(timedelta(days=14, hours=1))
    assert "PaymentPlanExpired" not in types(case.tick())
    assert case.state.plan.status == "accepted"


def test_an_offer_waiting_for_approval_expires_with_its_approval_withdrawn():
    case = Case().open()
    case.when(cmd.ProposePlan, instalments=6, every=timedelta(days=14))  # beyond the collector's 3
    approval_id = case.state.plan.approval_id
    case.at(timedelta(days=14))
    case.tick()
    s = case.state
    assert s.plan is None and s.approval(approval_id).status == "withdrawn" and not s.pending_approvals


def test_the_collector_withdraws_an_offer_with_a_reason():
    case = Case().open()
    case.when(cmd.ProposePlan, instalments=2, every=timedelta(days=14))
    rejected(case, cmd.WithdrawPlan, "must not be empty", reason="  ")
    events = case.when(cmd.WithdrawPlan, reason="customer asked for other terms")
    assert types(events) == ["PaymentPlanWithdrawn"]
    assert (events[0].actor, events[0].reason) == ("cora", "customer asked for other terms")
    assert case.state.plan is None and not case.state.clock.paused
    rejected(case, cmd.WithdrawPlan, "no proposed plan", reason="again")


def test_an_accepted_plan_cannot_be_withdrawn():
    case = Case().open()
    case.when(cmd.ProposePlan, instalments=2, every=timedelta(days=14))
    case.when(cmd.AcceptPlan)
    rejected(case, cmd.WithdrawPlan, "no proposed plan", reason="changed my mind")


# -- disputes past their deadline ------------------------------------------------------------------


def test_an_overdue_dispute_goes_to_a_supervisor_with_an_sla_and_then_upward():
    case = Case().open()
    case.when(cmd.OpenDispute, reason="pricing")
    case.at(timedelta(days=31))
    events = case.tick()
    assert types(events) == ["DisputeOverdue", "DisputeEscalated"]
    escalated = events[1]
    sla = case.policy.escalation.sla
    assert (escalated.tier, escalated.sla_due_at) == (Role.supervisor, case.now + sla)
    items = human_items(case.state)
    assert [(i.owner, i.due_at) for i in items] == [("supervisor", case.now + sla)]
    assert next_action(case.state).label == "supervisor dispute decision due"
    case.at(sla)
    lapsed = case.tick()
    assert types(lapsed) == ["DisputeEscalated"]
    assert (lapsed[0].from_tier, lapsed[0].tier, lapsed[0].sla_due_at) == (Role.supervisor, Role.finance_manager,
                                                                            case.now + sla)
    case.at(sla)
    top = case.tick()
    assert (top[0].tier, top[0].sla_due_at) == (Role.finance_manager, None)
    assert case.tick() == []
    assert [i.owner for i in human_items(case.state)] == ["finance_manager"]  # owned, never ownerless
    assert stuck_reason(case.state) is None


def test_the_old_rule_only_flags_the_dispute():
    case = Case(Case().policy.model_copy(update={"dispute": Case().policy.dispute.model_copy(
        update={"escalate_overdue": False})})).open()
    case.when(cmd.OpenDispute, reason="pricing")
    case.at(timedelta(days=31))
    assert types(case.tick()) == ["DisputeOverdue"]


# -- dunning pauses ---------------------------------------------------------------------------------


def test_a_pause_within_the_collectors_maximum_stops_notices_until_its_end_date():
    case = Case().open()
    first_due = case.state.clock.next_at
    until = T0 + timedelta(days=10)
    events = case.when(cmd.PauseDunning, until=until, reason="customer_holiday")
    assert types(events) == ["DunningPaused"]
    assert (events[0].actor, events[0].reason, events[0].until) == ("cora", "customer_holiday", until)
    s = case.state
    assert s.clock.paused and s.pause.until == until
    assert next_action(s).label == "paused (customer_holiday): dunning resumes" and next_action(s).at == until
    assert waiting_for(s).startswith("paused until 2026-03-12")
    case.at(until)
    resumed = case.tick()
    assert types(resumed) == ["DunningResumed"] and resumed[0].ended == "end_date"
    assert case.state.pause is None
    assert case.state.clock.next_at == until + (first_due - T0)  # the ladder continues where it stopped
    assert next_action(case.state).kind == "remind"


def test_resume_ends_a_pause_early_with_actor_and_reason():
    case = Case().open()
    case.when(cmd.PauseDunning, until=T0 + timedelta(days=10), reason="customer_holiday")
    case.at(DAY)
    rejected(case, cmd.ResumeDunning, "must not be empty", reason="")
    events = case.when(cmd.ResumeDunning, reason="customer back early")
    assert types(events) == ["DunningResumed"] and events[0].ended == "resumed" and events[0].actor == "cora"
    assert case.state.pause is None and not case.state.clock.paused
    rejected(case, cmd.ResumeDunning, "not paused", reason="again")


@pytest.mark.parametrize("until, match", [
    (T0 - DAY, "not in the future"),
    (T0 + timedelta(days=91), "beyond the longest pause"),
])
def test_a_pause_must_end_in_the_future_and_within_the_policy_maximum(until, match):
    case = Case().open()
    rejected(case, cmd.PauseDunning, match, until=until, reason="customer_holiday")
    rejected(case, cmd.PauseDunning, match, actor=SUPERVISOR, until=until, reason="customer_holiday")


def test_a_pause_needs_a_reason_code_and_only_one_at_a_time():
    case = Case().open()
    rejected(case, cmd.PauseDunning, "reason code", until=T0 + DAY, reason="Because!")
    case.when(cmd.PauseDunning, until=T0 + DAY, reason="customer_holiday")
    rejected(case, cmd.PauseDunning, "already paused", until=T0 + 2 * DAY, reason="customer_holiday")


def test_a_collectors_long_pause_waits_for_a_supervisor_who_is_not_the_requester():
    case = Case().open()
    until = T0 + timedelta(days=60)  # beyond the collector's 30 days, within the policy's 90
    events = case.when(cmd.PauseDunning, until=until, reason="insolvency_talks")
    assert types(events) == ["PauseRequested"]
    s = case.state
    approval = s.pending_approvals[0]
    assert (approval.kind, approval.tier, approval.requested_by) == ("pause", Role.supervisor, "cora")
    assert s.pause is None and s.status == CaseStatus.awaiting_approval
    rejected(case, cmd.DecideApproval, "only a supervisor", approval_id=approval.approval_id, approve=True,
             reason="ok")
    decided = case.when(cmd.DecideApproval, actor=SUPERVISOR, approval_id=approval.approval_id, approve=True,
                        reason="talks are real")
    assert types(decided) == ["PauseDecided", "DunningPaused"]
    assert decided[1].approval_id == approval.approval_id and decided[1].requested_by == "cora"
    assert case.state.pause.until == until


def test_a_supervisors_long_pause_is_four_eyes_too_when_a_collector_asked():
    case = Case().open()
    events = case.when(cmd.PauseDunning, actor=SUPERVISOR, until=T0 + timedelta(days=60), reason="insolvency_talks")
    assert types(events) == ["DunningPaused"]  # within a supervisor's own authority (the policy maximum)


def test_the_requester_cannot_approve_their_own_pause_and_a_rejection_resumes_dunning():
    case = Case().open()
    case.when(cmd.AssignCase, assignee="sam")
    from domain.users import Actor

    boss = Actor(name="sam", role=Role.collector)
    case.when(cmd.PauseDunning, actor=boss, until=T0 + timedelta(days=45), reason="insolvency_talks")
    approval_id = case.state.pending_approvals[0].approval_id
    rejected(case, cmd.DecideApproval, "four eyes", actor=SUPERVISOR, approval_id=approval_id, approve=True,
             reason="mine")
    events = case.when(cmd.DecideApproval, actor=SUPERVISOR_2, approval_id=approval_id, approve=False,
                       reason="too long")
    assert types(events) == ["PauseDecided"]
    s = case.state
    assert s.pause is None and s.pause_request is None and not s.clock.paused


def test_an_unanswered_pause_request_escalates_like_any_approval():
    case = Case().open()
    case.when(cmd.PauseDunning, until=T0 + timedelta(days=45), reason="insolvency_talks")
    case.at(case.policy.approval.sla)
    assert types(case.tick()) == ["ApprovalSlaLapsed"]
    assert case.state.pending_approvals[0].tier == Role.finance_manager
    case.when(cmd.DecideApproval, actor=MANAGER, approval_id=case.state.pending_approvals[0].approval_id,
              approve=True, reason="fine")
    assert case.state.pause is not None


def test_a_pause_over_a_notice_in_flight_holds_the_next_due_time():
    case = Case().open()
    case.at(case.state.clock.next_at)
    case.when(cmd.PauseDunning, until=case.now + timedelta(days=5), reason="customer_holiday")
    case.remind()  # the notice that was already going out is recorded
    s = case.state
    assert s.clock.paused and s.clock.next_at is None and s.level == 1


def test_closing_ends_a_pause():
    case = Case().open()
    case.when(cmd.PauseDunning, until=T0 + timedelta(days=5), reason="customer_holiday")
    case.pay("1000.00")
    assert case.state.closed and case.state.pause is None and next_action(case.state) is None


# -- who the case waits on ----------------------------------------------------------------------------


def test_a_referral_is_owned_by_the_agency():
    case = Case().open()
    ladder = case.policy.ladder(case.state.risk_grade)
    for _ in ladder:
        case.at(case.state.clock.next_at)
        case.remind()
    case.at(case.state.clock.next_at)
    case.tick()
    case.when(cmd.DecideEscalation, actor=SUPERVISOR, decision=EscalationDecision.agency, note="send it")
    s = case.state
    assert next_action(s) is None
    assert [i.owner for i in human_items(s)] == ["agency"]
    assert stuck_reason(s) is None


def test_stuck_reason_names_a_case_that_waits_on_nobody():
    case = Case().open()
    # an offer from before offers lapsed: no expiry, nobody owns it
    old = Case(case.policy.model_copy(update={"plan": case.policy.plan.model_copy(update={"offer_valid_for": None})}))
    old.open()
    old.when(cmd.ProposePlan, instalments=2, every=timedelta(days=14))
    assert next_action(old.state) is None and human_items(old.state) == []
    assert "customer to accept the plan" in stuck_reason(old.state)
    case.when(cmd.ProposePlan, instalments=2, every=timedelta(days=14))
    assert stuck_reason(case.state) is None


# -- customer pauses ------------------------------------------------------------------------------------


def test_a_case_opened_during_its_customers_pause_opens_paused():
    from uuid import uuid4

    from domain.decider import case_uuid
    from domain.users import SYSTEM_ACTOR
    from tests.domain.scenario import invoice

    case = Case()
    facts = invoice()
    pause = cmd.CustomerPauseFacts(pause_id="CP-1", until=T0 + timedelta(days=10), reason="customer_holiday",
                                   requested_by="cora", requested_by_role=Role.collector)
    case.when(cmd.OpenCase, actor=SYSTEM_ACTOR, case_id=case_uuid(facts.invoice_id), invoice=facts,
              customer_pause=pause)
    assert types(case.events) == ["CaseOpened", "DunningPaused"]
    paused = case.events[1]
    assert (paused.scope, paused.requested_by, paused.until) == ("customer", "cora", T0 + timedelta(days=10))
    assert case.state.clock.paused
    # a pause that ended before the case opened does nothing; a collector's long one waits for approval
    ended = Case().at(T0 + timedelta(days=11))
    ended.when(cmd.OpenCase, actor=SYSTEM_ACTOR, case_id=uuid4(), invoice=facts, customer_pause=pause)
    assert types(ended.events) == ["CaseOpened"]
    long = Case()
    long.when(cmd.OpenCase, actor=SYSTEM_ACTOR, case_id=uuid4(), invoice=facts,
              customer_pause=pause.model_copy(update={"until": T0 + timedelta(days=40)}))
    assert types(long.events) == ["CaseOpened", "PauseRequested"]


def test_the_customer_stream_records_a_pause_within_the_policy_maximum_and_its_resume():
    from uuid import uuid4

    from domain import customer as cu

    policy = Case().policy
    pause = cu.PauseCustomerDunning(command_id=uuid4(), actor=COLLECTOR, customer_id="C-1",
                                    until=T0 + timedelta(days=10), reason="customer_holiday")
    events = cu.decide_customer(None, pause, T0, policy)
    assert [e.type for e in events] == ["CustomerDunningPaused"] and events[0].actor == "cora"
    state = cu.fold_customer(events)
    assert state.pause_in_force(T0).until == T0 + timedelta(days=10)
    assert state.pause_in_force(T0 + timedelta(days=10)) is None
    with pytest.raises(DomainError, match="beyond the longest pause"):
        cu.decide_customer(None, pause.model_copy(update={"until": T0 + timedelta(days=91)}), T0, policy)
    resume = cu.ResumeCustomerDunning(command_id=uuid4(), actor=COLLECTOR, customer_id="C-1", reason="back")
    resumed = cu.decide_customer(state, resume, T0 + DAY, policy)
    assert [e.type for e in resumed] == ["CustomerDunningResumed"]
    assert cu.fold_customer(resumed, state).dunning_pause is None
