"""Given events / when command / then events: credit insurance and customer credit on a case."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from domain import commands as cmd
from domain.agenda import next_action
from domain.errors import DomainError
from domain.events import EscalationDecision, InsuranceCover, Outcome
from domain.users import SYSTEM_ACTOR
from tests.domain.scenario import COLLECTOR, MANAGER, SUPERVISOR, T0, Case, invoice, types, usd

UTC = timezone.utc
COVER = InsuranceCover(
    insurer_id="ATR", insurer_name="Atradius Test", insurer_email="claims@insurer.test", policy_number="POL-7",
    notify_within=timedelta(days=60), max_extension=timedelta(days=45), claim_waiting=timedelta(days=90),
    indemnity_percent=Decimal("90"),
)


def insured(amount: str = "1000.00", cover: InsuranceCover = COVER, at: datetime = T0) -> Case:
    case = Case().at(at)
    case.open(invoice(amount).model_copy(update={"insurance": cover}))  # due 2026-02-14
    return case


def notice(case: Case, delivered: bool = True) -> list:
    return case.when(cmd.RecordInsurerNotice, actor=SYSTEM_ACTOR, message_id="<insurer@test>",
                     recipient="claims@insurer.test", delivered=delivered, error="" if delivered else "421 busy")


def rejected(case: Case, command_type, match: str, actor=COLLECTOR, **data) -> None:
    before = list(case.events)
    with pytest.raises(DomainError, match=match):
        case.when(command_type, actor=actor, **data)
    assert case.events == before


def invariant(case: Case) -> None:
    s = case.state
    assert s.original_amount + s.fees == (s.paid_before_open + s.payments + s.credit_applied_total + s.indemnity_total
                                          + s.credits + s.write_offs + s.balance)


# -- credit insurance --------------------------------------------------------------------------------


def test_an_insured_case_carries_the_insurers_deadlines():
    case = insured()
    assert types(case.events) == ["CaseOpened", "CaseInsured"]
    e = case.events[1]
    # due 2026-02-14: the deadline is 60 days after the due date; the policy notifies 30 days after it
    assert e.notify_by == datetime(2026, 4, 16, tzinfo=UTC)
    assert e.notify_at == datetime(2026, 3, 17, tzinfo=UTC)
    assert e.extension_until == date(2026, 3, 31)
    assert e.indemnity_percent == Decimal("90") and e.insurer_email == "claims@insurer.test"


def test_a_case_opened_after_the_policys_notice_date_notifies_at_once():
    case = insured(at=datetime(2026, 4, 1, 9, 0, tzinfo=UTC))
    assert case.state.insurance.notify_at == datetime(2026, 4, 1, 9, 0, tzinfo=UTC)
    assert next_action(case.state).kind == "notify_insurer"


def test_the_insurer_notice_is_due_at_its_date():
    case = insured()
    for _ in range(3):  # the ladder's reminders come first
        case.at(next_action(case.state).at).remind()
    case.at(datetime(2026, 3, 16, tzinfo=UTC))
    action = next_action(case.state)
    assert action.kind == "notify_insurer" and action.at == datetime(2026, 3, 17, tzinfo=UTC)


def test_notified_in_time_then_unpaid_after_the_waiting_period_files_a_claim():
    case = insured()
    case.at(datetime(2026, 3, 17, tzinfo=UTC))
    [notified] = notice(case)
    assert notified.in_time and notified.claim_at == datetime(2026, 6, 15, tzinfo=UTC)
    assert notice(case) == []  # recorded once
    case.pay("100.00")
    case.at(datetime(2026, 6, 14, tzinfo=UTC))
    assert "ClaimFiled" not in types(case.tick())
    case.at(datetime(2026, 6, 15, tzinfo=UTC))
    claim = [e for e in case.tick() if type(e).__name__ == "ClaimFiled"][0]
    assert claim.amount == usd("900.00") and claim.expected_indemnity == usd("810.00")
    assert case.state.insurance.claim_pending


def test_a_write_off_is_net_of_the_expected_indemnity():
    case = insured()
    case.at(datetime(2026, 3, 17, tzinfo=UTC))
    notice(case)
    case.at(datetime(2026, 6, 16, tzinfo=UTC)).tick()  # claim of 1000.00, 900.00 expected
    rejected(case, cmd.RequestWriteOff, "net of the indemnity", amount=usd("1000.00"), reason="insolvency")
    rejected(case, cmd.RecordIndemnity, "only a supervisor or finance_manager", amount=usd("900.00"))
    case.when(cmd.RecordIndemnity, actor=MANAGER, amount=usd("900.00"), reference="ATR-123")
    assert case.state.balance == usd("100.00") and case.state.indemnity == usd("900.00")
    rejected(case, cmd.RecordIndemnity, "already recorded", actor=MANAGER, amount=usd("50.00"))
    [requested] = case.when(cmd.RequestWriteOff, amount=usd("100.00"), reason="insolvency")
    events = case.when(cmd.DecideApproval, actor=MANAGER, approval_id=requested.approval_id, approve=True)
    closed = events[-1]
    assert types(events) == ["WriteOffApproved", "CaseClosed"] and closed.outcome == Outcome.written_off
    assert closed.indemnity == usd("900.00") and closed.write_offs == usd("100.00")
    invariant(case)


def test_an_escalation_write_off_is_requested_net_of_the_indemnity():
    case = insured()
    case.at(datetime(2026, 3, 17, tzinfo=UTC))
    notice(case)
    case.at(datetime(2026, 6, 16, tzinfo=UTC)).tick()
    while not case.state.escalation_pending:
        action = next_action(case.state)
        case.at(max(case.now, action.at))
        case.remind() if action.kind == "remind" else case.tick()
    events = case.when(cmd.DecideEscalation, actor=SUPERVISOR, decision=EscalationDecision.write_off)
    assert events[-1].amount == usd("100.00")  # 1000.00 less the 900.00 the insurer will pay


def test_an_indemnity_that_settles_everything_resolves_the_case():
    case = insured()
    case.at(datetime(2026, 3, 17, tzinfo=UTC))
    notice(case)
    case.at(datetime(2026, 6, 16, tzinfo=UTC)).tick()
    events = case.when(cmd.RecordIndemnity, actor=MANAGER, amount=usd("1000.00"))
    assert types(events) == ["IndemnityReceived", "CaseClosed"] and events[-1].outcome == Outcome.resolved
    invariant(case)


def test_a_late_notification_loses_the_cover_and_no_claim_is_filed():
    case = insured()
    case.at(datetime(2026, 4, 20, tzinfo=UTC))
    [notified] = notice(case)
    assert not notified.in_time and notified.claim_at is None
    case.at(datetime(2026, 9, 1, tzinfo=UTC))
    assert "ClaimFiled" not in types(case.tick())
    assert case.state.insurance.cover_lost


def test_an_undelivered_notice_is_tried_again_next_day():
    case = insured()
    case.at(datetime(2026, 3, 17, tzinfo=UTC))
    [failed] = notice(case, delivered=False)
    assert types([failed]) == ["InsurerNotificationFailed"]
    assert case.state.insurance.notify_at == datetime(2026, 3, 18, tzinfo=UTC)
    case.at(datetime(2026, 3, 18, tzinfo=UTC))
    assert types(notice(case)) == ["InsurerNotified"]


def test_promises_and_plans_may_not_go_beyond_the_insurers_maximum_extension():
    case = insured()  # extension until 2026-03-31
    rejected(case, cmd.MakePromise, "maximum extension", amount=usd("500.00"), promised_date=date(2026, 4, 1))
    rejected(case, cmd.ProposePlan, "maximum extension", instalments=3, every=timedelta(days=14))
    assert types(case.when(cmd.MakePromise, amount=usd("500.00"), promised_date=date(2026, 3, 31))) == ["PromiseMade"]


def test_paid_in_full_before_the_claim_means_no_claim():
    case = insured()
    case.at(datetime(2026, 3, 17, tzinfo=UTC))
    notice(case)
    case.pay("1000.00")
    assert case.state.outcome == Outcome.paid
    case.at(datetime(2026, 7, 1, tzinfo=UTC))
    assert case.tick() == []


def test_an_uninsured_case_refuses_insurance_commands():
    case = Case().open()
    rejected(case, cmd.RecordInsurerNotice, "not insured", actor=SYSTEM_ACTOR, message_id="<x>", recipient="a@b.test",
             delivered=True)
    rejected(case, cmd.RecordIndemnity, "no insurance claim", actor=MANAGER, amount=usd("10.00"))


# -- customer credit applied to a case -------------------------------------------------------------


def test_customer_credit_settles_part_of_the_balance_once_per_allocation():
    case = Case().open()
    [applied] = case.when(cmd.ApplyCustomerCredit, allocation_id="AL-1", amount=usd("300.00"))
    assert types([applied]) == ["CustomerCreditApplied"] and case.state.balance == usd("700.00")
    assert case.when(cmd.ApplyCustomerCredit, allocation_id="AL-1", amount=usd("300.00")) == []
    rejected(case, cmd.ApplyCustomerCredit, "exceeds the open balance", allocation_id="AL-2", amount=usd("700.01"))
    rejected(case, cmd.ApplyCustomerCredit, "currency", allocation_id="AL-3",
             amount=usd("1.00").model_copy(update={"currency": "EUR"}))
    events = case.when(cmd.ApplyCustomerCredit, allocation_id="AL-4", amount=usd("700.00"))
    assert types(events) == ["CustomerCreditApplied", "CaseClosed"]
    assert events[-1].outcome == Outcome.paid and events[-1].credit_applied == usd("1000.00")
    invariant(case)


def test_customer_credit_keeps_a_promise():
    case = Case().open()
    case.when(cmd.MakePromise, amount=usd("400.00"), promised_date=T0.date() + timedelta(days=10))
    events = case.when(cmd.ApplyCustomerCredit, allocation_id="AL-1", amount=usd("400.00"))
    assert types(events) == ["CustomerCreditApplied", "PromiseKept"]
