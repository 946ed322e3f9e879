"""Given events / when command / then events: the customer decider, the scorecard and
customer credit, against hand-computed numbers."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from uuid import uuid4

import pytest

from domain import customer as cu
from domain.credit import CreditMovement, OpenItem, credit_balances, plan_allocation
from domain.errors import DomainError
from domain.policy import RiskGrade, RiskPolicy
from domain.risk import CustomerHistory, InvoiceRecord, score
from domain.users import SYSTEM_ACTOR
from tests.domain.scenario import COLLECTOR, SUPERVISOR, T0, default_policy, usd

POLICY = default_policy()


class Customer:
    """A customer under test: commands through decide_customer, events kept."""

    def __init__(self, policy=POLICY) -> None:
        self.policy = policy
        self.events: list = []
        self.now = T0

    @property
    def state(self):
        return cu.fold_customer(self.events)

    def when(self, command_type, actor=SUPERVISOR, **data) -> list:
        command = command_type(command_id=uuid4(), actor=actor, customer_id="C-1", **data)
        new = cu.decide_customer(self.state, command, self.now, self.policy)
        self.events.extend(new)
        return new


def types(events) -> list[str]:
    return [type(e).__name__ for e in events]


# -- the scorecard, by hand -------------------------------------------------------------------------

AS_OF = date(2026, 6, 30)
HISTORY = CustomerHistory(
    customer_id="C-1",
    invoices=[
        InvoiceRecord("I1", date(2026, 3, 1), date(2026, 3, 1), "paid"),     # on time
        InvoiceRecord("I2", date(2026, 4, 1), date(2026, 4, 21), "paid"),    # 20 days late
        InvoiceRecord("I3", date(2026, 5, 1), date(2026, 5, 11), "paid"),    # 10 days late
        InvoiceRecord("I4", date(2026, 6, 20), None),                        # open, 10 days late so far
        InvoiceRecord("I5", date(2026, 7, 15), None),                        # not due yet: not counted
        InvoiceRecord("I6", date(2026, 2, 1), date(2026, 5, 1), "resolved"),  # credit note: not counted
    ],
    disputes=1, broken_promises=1, defaulted_plans=0,
    exposure=Decimal("1500.00"), credit_limit=Decimal("1000.00"), currency="USD",
)


def test_the_scorecard_against_hand_computed_points():
    a = score(HISTORY, AS_OF, RiskPolicy())
    points = {f.name: f.points for f in a.factors}
    # 4 invoices count: days late 0, 20, 10, 10
    assert points == {
        "avg_days_late": Decimal("8.33"),     # 25 x 10 / 30
        "max_days_late": Decimal("5.00"),     # 15 x 20 / 60
        "late_share": Decimal("15.00"),       # 20 x 3/4
        "dispute_share": Decimal("5.00"),     # 10 x (1/4) / 0.5
        "broken_promises": Decimal("3.33"),   # 10 x 1 / 3
        "defaulted_plans": Decimal("0.00"),
        "exposure_ratio": Decimal("10.00"),   # 10 x min(1.5, 1.5) / 1.5
    }
    assert a.score == Decimal("46.66") and a.grade == RiskGrade.C and a.invoices == 4 and a.settled == 3
    assert [f.name for f in a.top(3)] == ["late_share", "exposure_ratio", "avg_days_late"]
    assert a.top(1)[0].detail == "paid 3 of 4 invoice(s) late (75%)"
    assert a.over_limit


def test_a_clean_history_is_grade_a_and_caps_hold():
    clean = CustomerHistory("C-2", [InvoiceRecord(f"I{n}", date(2026, 1, n), date(2026, 1, n), "paid")
                                    for n in range(1, 6)])
    assert score(clean, AS_OF, RiskPolicy()).score == 0 and score(clean, AS_OF, RiskPolicy()).grade == RiskGrade.A
    awful = CustomerHistory("C-3", [InvoiceRecord("I1", date(2025, 1, 1), None)], disputes=9, broken_promises=9,
                            defaulted_plans=9, exposure=Decimal(10**6), credit_limit=Decimal(1))
    a = score(awful, AS_OF, RiskPolicy())
    assert a.score == Decimal("100.00") and a.grade == RiskGrade.D  # every factor at its cap


# -- grades, holds, limits --------------------------------------------------------------------------


def assessment(grade_history=HISTORY, as_of=AS_OF):
    return score(grade_history, as_of, POLICY.risk)


def test_a_grade_change_is_an_event_and_the_same_grade_is_not():
    c = Customer()
    [changed] = c.when(cu.AssessRisk, actor=SYSTEM_ACTOR, assessment=assessment(), imported_grade=RiskGrade.B)
    assert types([changed]) == ["RiskGradeChanged"]
    assert (changed.from_grade, changed.to_grade, changed.score) == (RiskGrade.B, RiskGrade.C, Decimal("46.66"))
    assert changed.factors[0].name == "late_share"
    assert c.when(cu.AssessRisk, actor=SYSTEM_ACTOR, assessment=assessment(), imported_grade=RiskGrade.B) == []
    assert c.state.grade == RiskGrade.C and c.state.previous_grade == RiskGrade.B


def test_too_little_payment_history_keeps_the_imported_grade():
    young = CustomerHistory("C-1", HISTORY.invoices[:2] + [HISTORY.invoices[3]])  # 2 settled invoices
    c = Customer()
    assert c.when(cu.AssessRisk, actor=SYSTEM_ACTOR, assessment=assessment(young), imported_grade=RiskGrade.A) == []


def test_a_policy_rule_puts_a_bad_grade_on_hold():
    policy = POLICY.model_copy(update={"risk": POLICY.risk.model_copy(update={"hold_at_grade": RiskGrade.C})})
    c = Customer(policy)
    events = c.when(cu.AssessRisk, actor=SYSTEM_ACTOR, assessment=assessment(), imported_grade=RiskGrade.B)
    assert types(events) == ["RiskGradeChanged", "CustomerPutOnHold"]
    assert events[1].source == "policy" and events[1].reason == "policy: risk grade C"
    assert c.when(cu.AssessRisk, actor=SYSTEM_ACTOR, assessment=assessment(), imported_grade=RiskGrade.B) == []
    assert [o.action for o in c.state.outbox] == ["hold"]


def test_a_policy_rule_puts_a_customer_over_the_limit_on_hold():
    policy = POLICY.model_copy(update={"risk": POLICY.risk.model_copy(update={"hold_over_limit": True})})
    c = Customer(policy)
    events = c.when(cu.AssessRisk, actor=SYSTEM_ACTOR, assessment=assessment(), imported_grade=RiskGrade.C)
    assert types(events) == ["CustomerPutOnHold"] and "above the credit limit 1000.00" in events[0].reason


def test_holds_by_people_release_and_the_outbox_acknowledgement():
    c = Customer()
    with pytest.raises(DomainError, match="only a supervisor"):
        c.when(cu.PlaceHold, actor=COLLECTOR, reason="no payments")
    [held] = c.when(cu.PlaceHold, reason="no payments")
    with pytest.raises(DomainError, match="already on credit hold"):
        c.when(cu.PlaceHold, reason="again")
    [released] = c.when(cu.ReleaseHold, reason="paid up")
    with pytest.raises(DomainError, match="not on credit hold"):
        c.when(cu.ReleaseHold, reason="again")
    assert [(o.action, o.outbox_id) for o in c.state.outbox] == [("hold", str(held.event_id)),
                                                                 ("release", str(released.event_id))]
    with pytest.raises(DomainError, match="unknown outbox entry"):
        c.when(cu.AcknowledgeHoldNotice, outbox_id="nope", consumer="erp")
    assert types(c.when(cu.AcknowledgeHoldNotice, actor=COLLECTOR, outbox_id=str(held.event_id), consumer="erp")) == [
        "HoldNoticeAcknowledged"]
    assert c.when(cu.AcknowledgeHoldNotice, outbox_id=str(held.event_id), consumer="erp") == []
    assert c.state.outbox[0].acked_by == "erp" and c.state.outbox[1].acked_at is None


def test_an_escalation_hold_is_recorded_once_per_case():
    c = Customer()
    first = c.when(cu.PlaceHold, actor=SYSTEM_ACTOR, reason="escalation", source="escalation", case_ref="case-1")
    assert first[0].source == "escalation" and first[0].case_id_ref == "case-1"
    c.when(cu.ReleaseHold, reason="agreed")
    assert c.when(cu.PlaceHold, actor=SYSTEM_ACTOR, reason="escalation", source="escalation", case_ref="case-1") == []


def test_credit_limits_are_set_by_approvers_with_a_reason():
    c = Customer()
    with pytest.raises(DomainError, match="only a supervisor"):
        c.when(cu.SetCreditLimit, actor=COLLECTOR, limit=usd("5000.00"), reason="review")
    with pytest.raises(DomainError, match="must be positive"):
        c.when(cu.SetCreditLimit, limit=usd("0"), reason="review")
    with pytest.raises(DomainError, match="must not be empty") as refused:
        c.when(cu.SetCreditLimit, limit=usd("5000.00"), reason=" ")
    assert refused.value.field == "reason"
    events = c.when(cu.SetCreditLimit, limit=usd("5000.00"), reason="annual review")
    assert types(events) == ["CreditLimitSet"] and events[0].reason == "annual review"
    assert c.when(cu.SetCreditLimit, limit=usd("5000.00"), reason="again") == []
    assert c.state.credit_limit == usd("5000.00")


# -- customer credit ---------------------------------------------------------------------------------


def test_prepayments_and_allocations():
    c = Customer()
    pay = dict(payment_id="PRE-1", amount=usd("200.00"), received_on=T0.date())
    assert types(c.when(cu.RecordPrepayment, actor=COLLECTOR, **pay)) == ["PrepaymentReceived"]
    assert c.when(cu.RecordPrepayment, actor=COLLECTOR, **pay) == []  # the same payment again
    held = usd("50.00")  # an overpayment's excess recorded on one of the customer's cases
    common = dict(invoice_id="INV-9", target_case_id="case-9", held_on_cases=held, owed=usd("1000.00"))
    with pytest.raises(DomainError, match="exceeds the customer's credit"):
        c.when(cu.AllocateCredit, actor=COLLECTOR, allocation_id="AL-1", amount=usd("250.01"), **common)
    with pytest.raises(DomainError, match="still owes"):
        c.when(cu.AllocateCredit, actor=COLLECTOR, allocation_id="AL-1", amount=usd("250.00"),
               **{**common, "owed": usd("100.00")})
    c.when(cu.AllocateCredit, actor=COLLECTOR, allocation_id="AL-1", amount=usd("250.00"), **common)
    assert cu.available_credit(c.state, "USD", held) == usd("0")
    c.when(cu.ReleaseAllocation, actor=SYSTEM_ACTOR, allocation_id="AL-1", reason="case closed")
    assert cu.available_credit(c.state, "USD", held) == usd("250.00")


def test_credit_balances_age_first_in_first_out():
    m = lambda amount, day, what="": CreditMovement("C-1", "USD", Decimal(amount), date(2026, 1, day), what)  # noqa: E731
    [b] = credit_balances([m("100", 1), m("50", 10), m("-120", 15)], date(2026, 1, 31))
    # the 100 of Jan 1 is used up first; 30 of the 50 received on Jan 10 is left
    assert (b.balance, b.oldest, b.age_days, b.receipts) == (Decimal(30), date(2026, 1, 10), 21, 1)
    [b] = credit_balances([m("-20", 5), m("50", 6)], date(2026, 1, 31))  # a use ahead of receipts (a reversal)
    assert (b.balance, b.oldest) == (Decimal(30), date(2026, 1, 6))
    assert credit_balances([m("100", 1), m("-100", 2)], date(2026, 1, 31)) == []
    assert credit_balances([m("100", 20)], date(2026, 1, 10)) == []  # after the as-of date


def test_a_ledger_overpayment_is_credit_as_a_cases_and_its_reversal_takes_it_back():
    """``overpayment_movement``: the excess of a payment on an invoice without a case (and of an
    older event without one: nothing) is credit on its value date; its reversal takes it back, and
    after the credit was applied the customer owes it, as for a case's reversed overpayment."""
    from datetime import datetime, timezone

    from domain import admin
    from domain.credit import overpayment_movement

    at = lambda day: datetime(2026, 1, day, 9, tzinfo=timezone.utc)  # noqa: E731
    stream = admin.admin_stream_id("payment", "P-1")
    common = dict(stream_id=stream, command_id=uuid4(), actor="ana", reason="r", subject="payment P-1")
    paid = admin.record(admin.LedgerPaymentRecorded, version=0, now=at(5), payment_id="P-1", invoice_id="I-1",
                        amount=usd("1050"), received_on=date(2026, 1, 3), matched_by="direct", excess=usd("50"),
                        **common)
    older = admin.LedgerPaymentRecorded.model_validate({k: v for k, v in paid.model_dump().items() if k != "excess"})
    undone = admin.record(admin.LedgerPaymentReversed, version=1, now=at(20), payment_id="P-1", invoice_id="I-1",
                          amount=usd("1050"), excess=usd("50"), **common)
    received = overpayment_movement(paid, "C-1", "I-1")
    assert (received.amount, received.on, received.currency) == (Decimal("50"), date(2026, 1, 3), "USD")
    assert overpayment_movement(older, "C-1", "I-1") is None
    [b] = credit_balances([received], date(2026, 1, 10))
    assert (b.balance, b.oldest, b.age_days) == (Decimal("50"), date(2026, 1, 3), 7)
    applied = CreditMovement("C-1", "USD", Decimal("-50"), date(2026, 1, 12), "applied to I-2", allocation_id="AL-1")
    [owed] = credit_balances([received, applied, overpayment_movement(undone, "C-1", "I-1")], date(2026, 1, 31))
    assert owed.balance == Decimal("-50")


def test_credit_balances_age_advances_as_the_register_uses_them():
    def m(amount, day, **kw):
        return CreditMovement("C-1", "USD", Decimal(amount), date(2026, 1, day), "", **kw)

    def oldest(*moves):
        [b] = credit_balances(list(moves), date(2026, 1, 31))
        return b.balance, b.oldest, b.receipts

    old, new = m("100", 1, advance_id="PP-OLD"), m("100", 10, advance_id="PP-NEW")
    # the newer advance applied by name (`advance apply PP-NEW`): PP-OLD is held, from Jan 1
    assert oldest(old, new, m("-100", 12, drawn=(("PP-NEW", Decimal(100)),))) == (Decimal(100), date(2026, 1, 1), 1)
    # refunded by name: the same
    assert oldest(old, new, m("-40", 12, drawn=(("PP-NEW", Decimal(40)),))) == (Decimal(160), date(2026, 1, 1), 2)
    # an application without a name draws on advances before the overpayment excess (older here)
    excess = m("50", 2)
    assert oldest(excess, new, m("-100", 12, drawn=(("PP-NEW", Decimal(100)),), allocation_id="AL-1")) == (
        Decimal(50), date(2026, 1, 2), 1)
    # an allocation given back returns to the receipts it came from, with their days
    assert oldest(old, excess, m("-120", 12, drawn=(("PP-OLD", Decimal(100)),), allocation_id="AL-2"),
                  m("120", 12, allocation_id="AL-2")) == (Decimal(150), date(2026, 1, 1), 2)


def test_credit_goes_to_the_oldest_due_first():
    items = [OpenItem("B", "cb", date(2026, 3, 1), Decimal(100)), OpenItem("A", "ca", date(2026, 2, 1), Decimal(80))]
    assert [(i.invoice_id, a) for i, a in plan_allocation(Decimal(150), items)] == [("A", Decimal(80)),
                                                                                   ("B", Decimal(70))]
    assert plan_allocation(Decimal(0), items) == []


def test_customer_events_round_trip_through_the_store_format():
    from domain.events import event_from_record

    c = Customer()
    c.when(cu.PlaceHold, reason="no payments")
    e = c.events[0]
    envelope = {"type": type(e).__name__, "event_id": str(e.event_id), "case_id": str(e.stream_id),
                "version": e.version, "occurred_at": e.occurred_at.isoformat(), "actor": e.actor}
    assert event_from_record(envelope, e.data()) == e
    assert e.stream_id == cu.customer_stream_id("C-1") and e.case_id == e.stream_id


def test_policy_risk_section_is_validated():
    from domain.policy import parse_policy
    from tests.domain.scenario import ROOT

    text = (ROOT / "policies" / "default.toml").read_text()
    bad = text + '\n[risk.grade_from]\nB = 50\nC = 40\nD = 60\n'
    with pytest.raises(DomainError, match="grade_from"):
        parse_policy(bad)
    with pytest.raises(DomainError, match="unknown factor"):
        parse_policy(text + '\n[risk.factors.shoe_size]\nweight = 1\ncap = 1\n')
    assert parse_policy(text + '\n[risk]\nhold_at_grade = "D"\n').risk.hold_at_grade == RiskGrade.D
    assert timedelta(days=30) == parse_policy(text).insurance.notify_after
