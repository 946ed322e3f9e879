"""The advances register, given-when-then: advances are received, applied (named or oldest
first), refunded alone within the threshold or by a second person above it (four eyes)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from domain import customer as cu
from domain.advances import held, register, requests
from domain.errors import DomainError
from domain.users import SYSTEM_ACTOR
from tests.domain.scenario import COLLECTOR, MANAGER, SUPERVISOR, SUPERVISOR_2, T0, usd
from tests.domain.test_customer import POLICY, Customer, types

DAY = T0.date()


def given_advances(*amounts: tuple[str, str, int]) -> Customer:
    c = Customer()
    for advance_id, amount, days_ago in amounts:
        c.when(cu.RecordPrepayment, actor=COLLECTOR, payment_id=advance_id, amount=usd(amount),
               received_on=DAY - timedelta(days=days_ago))
    return c


def allocate(c: Customer, allocation_id: str, amount: str, advance_id: str | None = None, case: str = "") -> list:
    return c.when(cu.AllocateCredit, actor=COLLECTOR, allocation_id=allocation_id, invoice_id=f"INV-{allocation_id}",
                  target_case_id=case, amount=usd(amount), held_on_cases=usd("0"), owed=usd("10000"),
                  advance_id=advance_id)


def statuses(c: Customer) -> dict[str, tuple[str, Decimal]]:
    return {r.advance_id: (r.status, r.remaining) for r in register([c.state], DAY, timedelta(days=90))}


def test_given_two_advances_when_one_is_named_then_only_it_is_applied():
    c = given_advances(("ADV-1", "300.00", 10), ("ADV-2", "200.00", 5))
    assert statuses(c) == {"ADV-1": ("held", Decimal("300.00")), "ADV-2": ("held", Decimal("200.00"))}
    [e] = allocate(c, "AL-1", "150.00", advance_id="ADV-2")
    assert e.advance_id == "ADV-2" and e.target_case_id == ""  # an invoice without a case
    assert statuses(c) == {"ADV-1": ("held", Decimal("300.00")), "ADV-2": ("partly applied", Decimal("50.00"))}
    with pytest.raises(DomainError, match="exceeds") as error:
        allocate(c, "AL-2", "50.01", advance_id="ADV-2")
    assert error.value.field == "amount"
    with pytest.raises(DomainError, match="no advance") as error:
        allocate(c, "AL-3", "1.00", advance_id="ADV-9")
    assert error.value.field == "advance_id"


def test_given_advances_when_credit_is_applied_unnamed_then_the_oldest_goes_first_and_a_release_gives_it_back():
    c = given_advances(("ADV-NEW", "100.00", 1), ("ADV-OLD", "100.00", 30))
    allocate(c, "AL-1", "150.00", case="case-1")
    assert statuses(c) == {"ADV-OLD": ("applied", Decimal("0.00")), "ADV-NEW": ("partly applied", Decimal("50.00"))}
    c.when(cu.ReleaseAllocation, actor=SYSTEM_ACTOR, allocation_id="AL-1", reason="the case closed")
    assert statuses(c) == {"ADV-OLD": ("held", Decimal("100.00")), "ADV-NEW": ("held", Decimal("100.00"))}


def test_given_an_advance_when_a_refund_is_within_the_threshold_then_one_person_refunds_it():
    c = given_advances(("ADV-1", "300.00", 10))
    [e] = c.when(cu.RequestAdvanceRefund, actor=COLLECTOR, refund_id="RF-1", advance_id="ADV-1",
                 amount=usd("100.00"), reason="order cancelled")  # default policy: alone up to 100
    assert type(e).__name__ == "AdvanceRefunded" and e.approved_by is None
    assert statuses(c) == {"ADV-1": ("held", Decimal("200.00"))}
    assert cu.available_credit(c.state, "USD", usd("0")) == usd("200.00")
    with pytest.raises(DomainError, match="must not be empty") as error:
        c.when(cu.RequestAdvanceRefund, actor=COLLECTOR, refund_id="RF-2", advance_id="ADV-1",
               amount=usd("1.00"), reason=" ")
    assert error.value.field == "reason"


def test_given_a_refund_made_alone_when_another_would_pass_the_threshold_then_it_waits():
    c = given_advances(("ADV-1", "300.00", 10))
    for refund_id in ("RF-1", "RF-2"):
        [e] = c.when(cu.RequestAdvanceRefund, actor=COLLECTOR, refund_id=refund_id, advance_id="ADV-1",
                     amount=usd("50.00"), reason="order cancelled")
        assert type(e).__name__ == "AdvanceRefunded"
    [e] = c.when(cu.RequestAdvanceRefund, actor=COLLECTOR, refund_id="RF-3", advance_id="ADV-1",
                 amount=usd("0.01"), reason="order cancelled")  # 100.01 refunded alone in all
    assert type(e).__name__ == "AdvanceRefundRequested"
    # the approver sees why a cent waits: 100.00 was refunded alone before
    assert e.refunded_alone == usd("100.00") and c.state.pending_refunds["RF-3"].refunded_alone == usd("100.00")


def test_given_a_refund_above_the_threshold_then_it_waits_and_the_requester_cannot_approve_it():
    c = given_advances(("ADV-1", "300.00", 10))
    [e] = c.when(cu.RequestAdvanceRefund, actor=SUPERVISOR, refund_id="RF-1", advance_id="ADV-1",
                 amount=usd("300.00"), reason="order cancelled")
    assert type(e).__name__ == "AdvanceRefundRequested"
    # the pending refund is reserved: it cannot be applied meanwhile
    assert cu.available_credit(c.state, "USD", usd("0")) == usd("0")
    with pytest.raises(DomainError, match="exceeds"):
        allocate(c, "AL-1", "0.01", advance_id="ADV-1")
    with pytest.raises(DomainError, match="four eyes") as error:
        c.when(cu.ApproveAdvanceRefund, actor=SUPERVISOR, refund_id="RF-1")
    assert error.value.field == "as"
    with pytest.raises(DomainError, match="only a supervisor"):
        c.when(cu.ApproveAdvanceRefund, actor=COLLECTOR, refund_id="RF-1")
    [done] = c.when(cu.ApproveAdvanceRefund, actor=SUPERVISOR_2, refund_id="RF-1")
    assert types([done]) == ["AdvanceRefunded"] and done.approved_by == "sue" and done.requested_by == "sam"
    assert statuses(c) == {"ADV-1": ("refunded", Decimal("0.00"))}
    assert c.when(cu.ApproveAdvanceRefund, actor=MANAGER, refund_id="RF-1") == []  # decided already


def test_given_a_waiting_refund_when_it_is_turned_down_then_the_advance_holds_it_again():
    c = given_advances(("ADV-1", "300.00", 10))
    c.when(cu.RequestAdvanceRefund, actor=SUPERVISOR, refund_id="RF-1", advance_id="ADV-1",
           amount=usd("300.00"), reason="order cancelled")
    with pytest.raises(DomainError, match="only a supervisor or a finance manager") as error:
        c.when(cu.RejectAdvanceRefund, actor=COLLECTOR, refund_id="RF-1", reason="no")
    assert error.value.field == "as"
    with pytest.raises(DomainError, match="must not be empty"):
        c.when(cu.RejectAdvanceRefund, actor=SUPERVISOR_2, refund_id="RF-1", reason=" ")
    [e] = c.when(cu.RejectAdvanceRefund, actor=SUPERVISOR_2, refund_id="RF-1", reason="customer keeps it")
    assert types([e]) == ["AdvanceRefundRejected"] and e.actor == "sue" and e.requested_by == "sam"
    assert statuses(c) == {"ADV-1": ("held", Decimal("300.00"))}
    assert cu.available_credit(c.state, "USD", usd("0")) == usd("300.00")  # no longer reserved
    assert c.when(cu.RejectAdvanceRefund, actor=MANAGER, refund_id="RF-1", reason="again") == []  # decided
    with pytest.raises(DomainError, match="waits for approval"):
        c.when(cu.ApproveAdvanceRefund, actor=MANAGER, refund_id="RF-1")
    # the same request id again is the same (turned-down) request, not a new one
    assert c.when(cu.RequestAdvanceRefund, actor=SUPERVISOR, refund_id="RF-1", advance_id="ADV-1",
                  amount=usd("300.00"), reason="order cancelled") == []
    # whoever asked may withdraw it
    c.when(cu.RequestAdvanceRefund, actor=COLLECTOR, refund_id="RF-2", advance_id="ADV-1",
           amount=usd("200.00"), reason="duplicate payment")
    assert types(c.when(cu.RejectAdvanceRefund, actor=COLLECTOR, refund_id="RF-2", reason="asked by mistake")) == [
        "AdvanceRefundRejected"]


def test_a_refund_beyond_the_approvers_authority_is_refused():
    c = given_advances(("ADV-1", "50000.00", 10))
    c.when(cu.RequestAdvanceRefund, actor=COLLECTOR, refund_id="RF-1", advance_id="ADV-1",
           amount=usd("20000.00"), reason="contract ended")
    with pytest.raises(DomainError, match="refund authority"):
        c.when(cu.ApproveAdvanceRefund, actor=SUPERVISOR, refund_id="RF-1")  # limit 10,000
    c.when(cu.ApproveAdvanceRefund, actor=MANAGER, refund_id="RF-1")
    assert statuses(c)["ADV-1"] == ("held", Decimal("30000.00"))


def test_advances_held_past_the_policy_limit_linger_and_count_as_a_liability():
    c = given_advances(("ADV-OLD", "100.00", 120), ("ADV-NEW", "40.00", 3), ("ADV-USED", "60.00", 200))
    allocate(c, "AL-1", "60.00", advance_id="ADV-USED")
    rows = register([c.state], DAY, timedelta(days=90))
    assert [(r.advance_id, r.age_days, r.lingering) for r in rows] == [
        ("ADV-USED", 200, False), ("ADV-OLD", 120, True), ("ADV-NEW", 3, False)]
    assert held(rows, "USD") == Decimal("140.00") and held(rows, "EUR") == 0
    assert register([c.state], DAY - timedelta(days=10), timedelta(days=90))[-1].advance_id == "ADV-OLD"  # as of


def test_advance_events_round_trip_through_the_store_format():
    from domain.events import event_from_record

    c = given_advances(("ADV-1", "300.00", 1))
    c.when(cu.RequestAdvanceRefund, actor=SUPERVISOR, refund_id="RF-1", advance_id="ADV-1", amount=usd("300.00"),
           reason="cancelled")
    e = c.events[-1]
    envelope = {"type": type(e).__name__, "event_id": str(e.event_id), "case_id": str(e.stream_id),
                "version": e.version, "occurred_at": e.occurred_at.isoformat(), "actor": e.actor}
    assert event_from_record(envelope, e.data()) == e


def test_given_an_advance_request_when_it_is_paid_then_the_advance_is_held_with_the_request_as_source():
    c = Customer()
    due = DAY + timedelta(days=10)
    [e] = c.when(cu.RequestAdvance, actor=COLLECTOR, request_id="RQ-1", amount=usd("300.00"), due_date=due,
                 reference="30 % deposit order 77", order_id="SO-77")
    assert type(e).__name__ == "AdvanceRequested"
    assert c.when(cu.RequestAdvance, actor=COLLECTOR, request_id="RQ-1", amount=usd("300.00"), due_date=due,
                  reference="30 % deposit order 77") == []  # the same request again
    [r] = requests([c.state], DAY)
    assert (r.status, r.outstanding, r.order_id) == ("open", Decimal("300.00"), "SO-77")
    assert requests([c.state], due + timedelta(days=3))[0].status == "overdue"
    assert requests([c.state], due + timedelta(days=3))[0].days_overdue == 3
    assert register([c.state], DAY, timedelta(days=90)) == []  # a request is not an advance: nothing received
    with pytest.raises(DomainError, match="exceeds") as error:
        c.when(cu.RecordPrepayment, actor=COLLECTOR, payment_id="PP-1", amount=usd("300.01"), received_on=DAY,
               request_id="RQ-1")
    assert error.value.field == "amount"
    with pytest.raises(DomainError, match="no advance request") as error:
        c.when(cu.RecordPrepayment, actor=COLLECTOR, payment_id="PP-1", amount=usd("1.00"), received_on=DAY,
               request_id="RQ-9")
    assert error.value.field == "request"
    c.when(cu.RecordPrepayment, actor=COLLECTOR, payment_id="PP-1", amount=usd("300.00"), received_on=DAY,
           request_id="RQ-1")
    assert requests([c.state], due + timedelta(days=3))[0].status == "paid"
    [a] = register([c.state], DAY, timedelta(days=90))
    assert (a.advance_id, a.source, a.status, a.remaining) == ("PP-1", "advance request RQ-1", "held",
                                                              Decimal("300.00"))
    with pytest.raises(DomainError, match="must not be empty"):
        c.when(cu.RequestAdvance, actor=COLLECTOR, request_id="RQ-2", amount=usd("1.00"), due_date=due, reference="")


def test_given_a_policy_that_blocks_shipment_an_unpaid_request_holds_its_order_until_paid():
    policy = POLICY.model_copy(update={"advances": POLICY.advances.model_copy(update={"block_shipment": True})})
    c = Customer(policy)
    events = c.when(cu.RequestAdvance, actor=COLLECTOR, request_id="RQ-1", amount=usd("300.00"),
                    due_date=DAY + timedelta(days=10), reference="deposit", order_id="SO-77")
    assert types(events) == ["AdvanceRequested", "ShipmentHeld"] and events[1].order_id == "SO-77"
    [hold] = c.state.outbox
    assert hold.action == "hold" and "SO-77" in hold.reason and c.state.hold is None  # the order, not the customer
    assert types(c.when(cu.RecordPrepayment, actor=COLLECTOR, payment_id="PP-1", amount=usd("100.00"),
                        received_on=DAY, request_id="RQ-1")) == ["PrepaymentReceived"]  # partly paid: still held
    events = c.when(cu.RecordPrepayment, actor=COLLECTOR, payment_id="PP-2", amount=usd("200.00"), received_on=DAY,
                    request_id="RQ-1")
    assert types(events) == ["PrepaymentReceived", "ShipmentReleased"]
    assert [(o.action, o.hold_id) for o in c.state.outbox] == [("hold", hold.hold_id), ("release", hold.hold_id)]
    # without an order, or under a policy that does not block shipment: no hold
    assert types(Customer().when(cu.RequestAdvance, actor=COLLECTOR, request_id="RQ-2", amount=usd("1.00"),
                                 due_date=DAY, reference="deposit", order_id="SO-78")) == ["AdvanceRequested"]
