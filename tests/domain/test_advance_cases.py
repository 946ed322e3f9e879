"""Cases of kind advance (issue 16), given-when-then: an overdue advance request is dunned on the
case machinery with the policy's ``[advances]`` ladder and escalation SLA, carries no late fee nor
interest (no invoice was issued), and closes as paid when the deposit arrives."""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain import customer as cu
from domain.advances import case_facts, overdue_requests
from domain.agenda import notice_due
from domain.errors import DomainError
from domain.events import AdvanceFacts, Customer as CaseCustomer, Outcome
from domain.policy import RiskGrade, parse_policy
from tests.domain.scenario import COLLECTOR, ROOT, T0, Case, invoice, types, usd
from tests.domain.test_customer import Customer

ADVANCES = """
[advances]
block_shipment = true
escalation_sla = "P5D"
[[advances.ladders.A]]
name = "deposit-reminder"
after = "P1D"
[[advances.ladders.A]]
name = "deposit-final"
after = "P6D"
[[advances.ladders.B]]
name = "deposit-reminder"
after = "P2D"
[[advances.ladders.B]]
name = "deposit-final"
after = "P5D"
[[advances.ladders.C]]
name = "deposit-final"
after = "P1D"
[[advances.ladders.D]]
name = "deposit-final"
after = "P1D"
"""
WHO = CaseCustomer(customer_id="C-1", name="Acme GmbH", email="ap@acme.test", country="DE", language="en")


def policy(extra: str = ADVANCES):
    return parse_policy((ROOT / "policies" / "default.toml").read_text() + extra)


def requested(amount: str = "300.00", due_in: int = 10, paid: str | None = None) -> Customer:
    c = Customer(policy())
    c.when(cu.RequestAdvance, actor=COLLECTOR, request_id="RQ-77", amount=usd(amount),
           due_date=T0.date() + timedelta(days=due_in), reference="30 % deposit order 77", order_id="SO-77")
    if paid is not None:
        c.when(cu.RecordPrepayment, actor=COLLECTOR, payment_id="PP-1", amount=usd(paid), received_on=T0.date(),
               request_id="RQ-77")
    return c


def advance_case(c: Customer, grade: RiskGrade = RiskGrade.B) -> Case:
    [request] = overdue_requests(c.state, T0.date() + timedelta(days=30))
    case = Case(policy())
    case.open(case_facts(request, WHO, grade))
    return case


def test_given_requests_when_the_sweep_looks_then_only_the_overdue_unpaid_ones_are_dunned():
    day = T0.date() + timedelta(days=10)
    assert [r.request_id for r in overdue_requests(requested().state, day)] == ["RQ-77"]  # due that day
    assert overdue_requests(requested().state, day - timedelta(days=1)) == []  # not due yet
    assert overdue_requests(requested(paid="300.00").state, day) == []  # paid in full
    [partly] = overdue_requests(requested(paid="100.00").state, day)
    facts = case_facts(partly, WHO, RiskGrade.B)
    assert facts.invoice_id == "RQ-77" and facts.amount == usd("300.00") and facts.paid == usd("100.00")
    assert facts.advance == AdvanceFacts(reference="30 % deposit order 77", order_id="SO-77")
    assert facts.due_date == day and facts.issue_date == T0.date()


def test_given_an_overdue_request_when_its_case_opens_then_it_follows_the_advances_ladder():
    case = advance_case(requested())
    opened = case.events[0]
    assert type(opened).__name__ == "CaseOpened" and opened.advance.order_id == "SO-77"
    assert opened.invoice_id == "RQ-77" and opened.opening_balance == usd("300.00")
    assert opened.ladder_steps == 2  # the [advances] ladder of grade B, not the invoice ladder's 3 steps
    assert opened.first_reminder_at.date() >= T0.date() + timedelta(days=2)
    assert case.state.kind == "advance"
    first = notice_due(case.state, case.policy, on=T0.date())
    assert first.step == "deposit-reminder" and first.fee is None and not first.final
    assert first.amount_due == usd("300.00")


def test_given_no_advances_ladder_then_the_invoice_ladder_is_used_without_its_fees_nor_interest():
    case = Case(policy(""))
    [request] = overdue_requests(requested().state, T0.date() + timedelta(days=30))
    case.open(case_facts(request, WHO, RiskGrade.B))
    final = notice_due(case.state, case.policy, level=3, on=T0.date() + timedelta(days=60))
    assert final.final and final.step == "final" and final.fee is None and final.interest is None
    assert final.amount_due == usd("300.00")
    invoice_case = Case(policy("")).open(invoice())  # the invoice's own final notice keeps its fee
    assert notice_due(invoice_case.state, invoice_case.policy, level=3).fee == usd("40.00")


def test_given_the_last_notice_when_the_case_escalates_then_the_advances_sla_applies():
    case = advance_case(requested())
    case.at(timedelta(days=2)).remind()
    case.at(timedelta(days=3)).remind()
    case.at(timedelta(days=30))
    escalated = [e for e in case.tick() if type(e).__name__ == "EscalatedToSupervisor"]
    assert escalated and escalated[0].sla_due_at == case.now + timedelta(days=5)


def test_given_an_advance_case_when_the_deposit_is_paid_then_it_closes_as_paid():
    case = advance_case(requested(paid="100.00"))
    assert case.state.balance == usd("200.00")
    events = case.pay("200.00", payment_id="PP-2")
    assert types(events)[-1] == "CaseClosed" and case.state.outcome == Outcome.paid
    with pytest.raises(DomainError, match="closed"):
        case.pay("1.00")


def test_given_an_invoice_case_then_its_opening_records_no_advance():
    case = Case().open(invoice())
    assert "advance" not in case.events[0].data() and case.state.kind == "invoice"
    assert advance_case(requested()).events[0].data()["advance"]["order_id"] == "SO-77"


@pytest.mark.parametrize("extra, message", [
    ('[[advances.ladders.A]]\nname = "x"\nafter = "P1D"\n', "missing risk grade"),
    (ADVANCES.replace('after = "P6D"', 'after = "P6D"\nfee = { USD = "10.00" }'), "no late fee"),
    (ADVANCES.replace('escalation_sla = "P5D"', 'escalation_sla = "P0D"'), "escalation_sla"),
])
def test_an_advances_ladder_is_checked_like_the_invoice_ladders(extra, message):
    with pytest.raises(DomainError, match=message):
        policy(extra)



def test_given_a_refund_above_the_threshold_when_approved_then_the_inbox_row_keeps_the_decision():
    from store.customer_projections import refund_approval_rows
    from tests.domain.scenario import SUPERVISOR, SUPERVISOR_2

    c = requested(paid="300.00")
    c.when(cu.RequestAdvanceRefund, actor=SUPERVISOR, refund_id="RF-1", advance_id="PP-1", amount=usd("300.00"),
           reason="order cancelled")
    [row] = refund_approval_rows(c.state, "Acme GmbH")
    assert (row["approval_id"], row["kind"], row["invoice_id"], row["status"], row["requested_by"]) == (
        "RF-1", "refund", "PP-1", "pending", SUPERVISOR.name)
    c.when(cu.ApproveAdvanceRefund, actor=SUPERVISOR_2, refund_id="RF-1")
    [row] = refund_approval_rows(c.state, "Acme GmbH")
    assert (row["status"], row["decided_by"], row["amount_minor"]) == ("approved", SUPERVISOR_2.name, 30000)
    assert c.state.approved_refunds["RF-1"].approved_at == T0
