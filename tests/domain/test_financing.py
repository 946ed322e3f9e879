"""Given events / when command / then events: factoring (assignment to a factor, with and without
recourse) and early-payment discount offers (docs/FINANCING.md)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from uuid import uuid4

import pytest

from domain import commands as cmd
from domain.agenda import discount_offer, human_items, next_action, notice_due, stuck_reason, waiting_for
from domain.decider import decide
from domain.errors import DomainError
from domain.policy import RiskGrade
from domain.state import CaseStatus
from domain.users import SYSTEM_ACTOR
from tests.domain.scenario import MANAGER, SUPERVISOR, Case, default_policy, invoice, types, usd

FACTOR = {"name": "northbank", "account_name": "Northbank Factoring Ltd", "iban": "GB33BUKB20201555555555",
          "bic": "BUKBGB22", "email": "factoring@northbank.test"}


def policy(percent: str | None = "2", within=timedelta(days=10)):
    base = default_policy()
    return base.model_copy(update={
        "financing": base.financing.model_validate({"factors": [FACTOR]}),
        "discounts": base.discounts.model_validate({"percent": percent, "within": within,
                                                    "minimum": {"USD": "100.00"}}),
    })


def assign(case: Case, recourse: bool, rate: str = "0.9", fee: str = "0.02", factor: str = "northbank",
           assignment_id: str = "FA-1"):
    return case.when(cmd.AssignToFactor, actor=SUPERVISOR, assignment_id=assignment_id, factor=factor,
                     recourse=recourse, advance_rate=Decimal(rate), fee_rate=Decimal(fee), reason="q1 financing")


def outcome(case: Case, what: str):
    return case.when(cmd.RecordFactorOutcome, actor=SUPERVISOR, outcome=what, reason="factor statement 12")


def test_assignment_records_the_factor_its_instructions_and_what_it_advances():
    case = Case(policy()).open()
    case.pay("100.00")
    [event] = assign(case, recourse=True)
    assert types([event]) == ["InvoiceAssignedToFactor"] and event.actor == "sam" and event.reason == "q1 financing"
    assert event.assigned == usd("900.00") and event.advanced == usd("810.00") and event.fee == usd("18.00")
    assert (event.iban, event.bic, event.account_name, event.factor_email) == (
        FACTOR["iban"], FACTOR["bic"], FACTOR["account_name"], FACTOR["email"])
    assert case.state.factor_instructions.factor == "northbank"
    assert assign(case, recourse=True) == []  # the same assignment again


@pytest.mark.parametrize(("change", "field"), [
    (dict(factor="nobody"), "to"), (dict(rate="0"), "advance_rate"), (dict(rate="1.5"), "advance_rate"),
    (dict(rate="0.12345"), "advance_rate"), (dict(fee="1"), "fee_rate"), (dict(fee="-0.1"), "fee_rate"),
])
def test_invalid_assignments_name_the_field(change, field):
    case = Case(policy()).open()
    with pytest.raises(DomainError) as error:
        assign(case, recourse=False, **change)
    assert error.value.field == field and case.state.financing is None


def test_an_assigned_invoice_is_not_assigned_again_and_a_closed_case_takes_no_assignment():
    case = Case(policy()).open()
    assign(case, recourse=True)
    with pytest.raises(DomainError, match="already assigned to northbank") as error:
        assign(case, recourse=False, assignment_id="FA-2")
    assert error.value.field == "invoice_id"
    closed = Case(policy()).open()
    closed.pay("1000.00")
    with pytest.raises(DomainError, match="closed"):
        assign(closed, recourse=True)


def test_without_recourse_the_ladder_waits_with_the_factor_until_it_reports_paid():
    case = Case(policy()).open()
    due = case.state.clock.next_at
    assign(case, recourse=False)
    state = case.state
    assert state.status == CaseStatus.with_factor and state.dunning_paused() and state.clock.next_at is None
    assert next_action(state) is None and waiting_for(state) == "with factor northbank"
    assert [i.owner for i in human_items(state)] == ["factor northbank"] and stuck_reason(state) is None
    case.at(due + timedelta(days=40))
    assert case.tick() == []  # no notice, no escalation while the factor holds it
    events = outcome(case, "collected")
    assert types(events) == ["FactorCollected", "CaseClosed"]
    assert case.state.status == CaseStatus.paid and events[-1].factored == usd("1000.00")


def test_without_recourse_a_default_is_the_factors_loss_and_closes_the_case_as_resolved():
    case = Case(policy()).open()
    case.pay("200.00")
    assign(case, recourse=False)
    events = outcome(case, "defaulted")
    assert types(events) == ["FactorDefaulted", "CaseClosed"] and events[0].derecognized == usd("800.00")
    closed = events[-1]
    assert case.state.status == CaseStatus.resolved
    # original + fees = payments + factored
    assert closed.payments + closed.factored == usd("1000.00") + closed.fees


def test_with_recourse_the_ladder_goes_on_and_escalation_reports_the_default_to_the_factor():
    case = Case(policy()).open()
    assign(case, recourse=True)
    assert case.state.status == CaseStatus.open and not case.state.dunning_paused()
    for _ in range(case.state.ladder_steps):
        case.at(case.state.clock.next_at)
        case.remind()
    case.at(case.state.clock.next_at)
    events = case.tick()
    assert types(events) == ["EscalatedToSupervisor", "FactorDefaultReported"]
    assert events[1].trigger == "escalated" and events[1].recipient == FACTOR["email"]
    action = next_action(case.state)
    assert action.kind == "notify_factor" and action.at <= case.now
    [notified] = case.when(cmd.RecordFactorNotice, actor=SYSTEM_ACTOR, message_id="<f1@test>",
                           recipient=FACTOR["email"], delivered=True)
    assert types([notified]) == ["FactorNotified"] and next_action(case.state).kind != "notify_factor"
    # the factor invokes recourse: the receivable is the company's again, notices go back to its account
    events = outcome(case, "defaulted")
    assert types(events) == ["FactorDefaulted"] and events[0].recourse and events[0].derecognized is None
    assert case.state.factor_instructions is None and case.state.balance == usd("1000.00")


def test_with_recourse_a_write_off_reports_the_default_before_the_case_closes():
    case = Case(policy()).open()
    assign(case, recourse=True)
    case.when(cmd.RequestWriteOff, actor=SUPERVISOR, amount=usd("1000.00"), reason="insolvent")
    approval = case.state.pending_approvals[0].approval_id
    events = case.when(cmd.DecideApproval, actor=MANAGER, approval_id=approval, approve=True, reason="ok")
    assert types(events) == ["WriteOffApproved", "FactorDefaultReported", "CaseClosed"]
    assert events[1].trigger == "written_off" and events[1].amount == usd("1000.00")
    # the e-mail to the factor is still due after the close, and its outcome is recorded
    assert case.state.closed and case.when(cmd.RecordFactorNotice, actor=SYSTEM_ACTOR, message_id="<f@t>",
                                            recipient=FACTOR["email"], delivered=True) != []


def _notice_with_offer(case: Case):
    state = case.state
    case.at(state.clock.next_at)
    notice = notice_due(state, case.policy, on=case.now.date())
    offer = discount_offer(state, case.policy, notice, case.now)
    case.remind(discount=offer)
    return offer


def test_a_notice_offers_good_payers_a_discount_once_and_a_payment_in_time_closes_the_case():
    case = Case(policy()).open(invoice(grade=RiskGrade.A))
    offer = _notice_with_offer(case)
    assert offer.discount == usd("20.00") and offer.pay == usd("980.00")
    assert offer.pay_by.date() == case.now.date() + timedelta(days=11) and offer.pay_by.hour == 0
    assert types(case.events[-2:]) == ["ReminderSent", "EarlyPaymentDiscountOffered"]
    assert discount_offer(case.state, case.policy, notice_due(case.state, case.policy), case.now) is None  # once
    case.at(timedelta(days=10, hours=5))
    events = case.pay("980.00")
    assert types(events) == ["PaymentReceived", "EarlyPaymentDiscountGranted", "CaseClosed"]
    assert events[1].amount == usd("20.00") and events[1].actor == "cora"
    closed = events[-1]
    assert case.state.status == CaseStatus.paid and closed.discounts == usd("20.00") and closed.write_offs == usd("0")
    assert not case.state.pending_approvals  # no approval: not a write-off


def test_the_discounted_amount_after_the_date_or_short_of_it_does_not_close_the_case():
    late = Case(policy()).open()
    offer = _notice_with_offer(late)
    late.at(offer.pay_by + timedelta(seconds=1))
    assert types(late.pay("980.00")) == ["PaymentReceived"] and late.state.balance == usd("20.00")
    short = Case(policy()).open()
    _notice_with_offer(short)
    assert types(short.pay("979.99")) == ["PaymentReceived"] and short.state.balance == usd("20.01")


def test_a_receipt_on_the_last_day_recorded_the_next_morning_is_in_time():
    case = Case(policy()).open()
    offer = _notice_with_offer(case)
    case.at(offer.pay_by + timedelta(hours=8))
    events = case.when(cmd.RecordPayment, payment_id="BANK-1", amount=usd("980.00"), reference="bank",
                       received_on=offer.pay_by.date() - timedelta(days=1))
    assert types(events) == ["PaymentReceived", "EarlyPaymentDiscountGranted", "CaseClosed"]


@pytest.mark.parametrize("grade", [RiskGrade.C, RiskGrade.D])
def test_no_offer_for_other_grades_small_balances_or_without_a_percent(grade):
    case = Case(policy()).open(invoice(grade=grade))
    assert _notice_with_offer(case) is None
    small = Case(policy()).open(invoice(amount="99.00"))
    assert _notice_with_offer(small) is None
    none = Case(policy(percent=None)).open()
    assert _notice_with_offer(none) is None
    factored = Case(policy()).open()
    assign(factored, recourse=True)
    assert _notice_with_offer(factored) is None


def test_decide_is_pure_for_the_new_commands():
    case = Case(policy()).open()
    command = cmd.AssignToFactor(command_id=uuid4(), actor=SUPERVISOR, assignment_id="FA-9", factor="northbank",
                                 recourse=False, advance_rate=Decimal("0.8"), reason="x")
    assert decide(case.state, command, case.now, case.policy) == decide(case.state, command, case.now, case.policy)
