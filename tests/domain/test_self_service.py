"""The customer's actions from the self-service page, given events / when command / then events:
the same decider as a collector's, with the actor customer:<id>."""

from __future__ import annotations

from datetime import date

from domain import commands as cmd
from domain.money import Money
from domain.users import Actor
from tests.domain.scenario import Case, types, usd
from tests.domain.test_decider import rejected

CUSTOMER = Actor(name="customer:C-1")


def test_a_customer_reports_a_payment_as_a_hint_that_changes_no_balance():
    case = Case().open()
    new = case.when(cmd.ReportPayment, actor=CUSTOMER, amount=usd("1000.00"), paid_on=date(2026, 3, 1),
                    reference="BANK-REF 42")
    assert types(new) == ["PaymentReported"]
    event = new[0]
    assert event.actor == "customer:C-1" and event.reference == "BANK-REF 42" and event.paid_on == date(2026, 3, 1)
    assert case.state.balance == usd("1000.00") and case.state.payments == usd("0")  # only a payment pays
    # the form sent twice: the same report is refused, nothing recorded twice; another one is a new report
    rejected(case, cmd.ReportPayment, "already reported", actor=CUSTOMER, amount=usd("1000.00"),
             paid_on=date(2026, 3, 1), reference="bank-ref 42 ")
    assert types(case.when(cmd.ReportPayment, actor=CUSTOMER, amount=usd("400.00"), paid_on=date(2026, 3, 1),
                           reference="BANK-REF 42")) == ["PaymentReported"]
    assert types(case.events) == ["CaseOpened", "PaymentReported", "PaymentReported"]


def test_a_reported_payment_is_refused_when_it_cannot_be_true():
    case = Case().open()
    rejected(case, cmd.ReportPayment, "in the future", actor=CUSTOMER, amount=usd("10"), paid_on=date(2026, 3, 3))
    rejected(case, cmd.ReportPayment, "must be positive", actor=CUSTOMER, amount=usd("0"), paid_on=date(2026, 3, 1))
    rejected(case, cmd.ReportPayment, "EUR", actor=CUSTOMER, amount=Money.of("10", "EUR"), paid_on=date(2026, 3, 1))
    rejected(case, cmd.ReportPayment, "line breaks", actor=CUSTOMER, amount=usd("10"), paid_on=date(2026, 3, 1),
             reference="a\nb")
    assert types(case.events) == ["CaseOpened"]


def test_a_customer_promise_goes_through_the_collectors_rules():
    case = Case().open()
    rejected(case, cmd.MakePromise, "beyond the longest", actor=CUSTOMER, amount=usd("10"),
             promised_date=date(2026, 12, 1))
    new = case.when(cmd.MakePromise, actor=CUSTOMER, amount=usd("1000.00"), promised_date=date(2026, 3, 20))
    assert types(new) == ["PromiseMade"] and new[0].actor == "customer:C-1"


def test_a_customer_disputes_with_a_reason_of_the_policy_s_list_and_the_team_owns_it():
    case = Case().open()
    rejected(case, cmd.OpenDispute, "not one of the reasons", actor=CUSTOMER, reason="pricing")
    new = case.when(cmd.OpenDispute, actor=CUSTOMER, reason="quality", note="two of ten pallets were damaged")
    assert types(new) == ["DisputeOpened"]
    assert new[0].owner == "collector" and new[0].note == "two of ten pallets were damaged"
    assert new[0].actor == "customer:C-1"
    # a collector's reason codes are not limited to the customer's list
    other = Case().open()
    assert other.when(cmd.OpenDispute, reason="pricing")[0].owner == "cora"


def test_a_customer_corrects_the_billing_contact_and_notices_go_there():
    case = Case().open()
    rejected(case, cmd.CorrectContact, "not an email address", actor=CUSTOMER, email="accounts at acme")
    rejected(case, cmd.CorrectContact, "already the billing contact", actor=CUSTOMER, email="AP@acme.test")
    new = case.when(cmd.CorrectContact, actor=CUSTOMER, email="payables@acme.test")
    assert types(new) == ["ContactCorrected"] and new[0].previous == "ap@acme.test"
    assert case.state.customer.email == "payables@acme.test"


def test_links_are_revoked_by_a_person_with_a_reason():
    from datetime import datetime, timezone
    from uuid import uuid4

    from domain.customer import RevokeLinks, decide_customer, fold_customer
    from domain.errors import DomainError
    from tests.domain.scenario import COLLECTOR, default_policy

    now = datetime(2026, 3, 2, 9, tzinfo=timezone.utc)
    policy = default_policy()
    for actor, reason, match in ((CUSTOMER, "lost", "by a person"), (COLLECTOR, "", "must not be empty")):
        try:
            decide_customer(None, RevokeLinks(command_id=uuid4(), actor=actor, customer_id="C-1", reason=reason),
                            now, policy)
        except DomainError as error:
            assert match in str(error)
        else:
            raise AssertionError("not refused")
    events = decide_customer(None, RevokeLinks(command_id=uuid4(), actor=COLLECTOR, customer_id="C-1",
                                               reason="notice sent to the wrong address"), now, policy)
    assert [type(e).__name__ for e in events] == ["CustomerLinksRevoked"]
    assert fold_customer(events).links_revoked_at == now


def test_a_customer_s_plan_within_a_collector_s_authority_is_offered_and_taken_at_once():
    from datetime import timedelta

    case = Case().open()
    new = case.when(cmd.ProposePlan, actor=CUSTOMER, instalments=3, every=timedelta(days=30))
    assert types(new) == ["PaymentPlanProposed", "PaymentPlanAccepted"]
    assert not new[0].requires_approval and case.state.plan.status == "accepted"


def test_a_longer_plan_a_customer_asks_for_waits_for_approval_and_is_taken_when_approved():
    from datetime import timedelta

    from tests.domain.scenario import SUPERVISOR

    case = Case().open()
    new = case.when(cmd.ProposePlan, actor=CUSTOMER, instalments=6, every=timedelta(days=30))
    assert types(new) == ["PaymentPlanProposed"] and new[0].requires_approval
    decided = case.when(cmd.DecideApproval, actor=SUPERVISOR, approval_id=new[0].approval_id, approve=True,
                        reason="good payer")
    assert types(decided) == ["PaymentPlanApproved", "PaymentPlanAccepted"]
    assert case.state.plan.status == "accepted"


def test_a_dispute_carries_one_document_of_an_allowed_kind_and_size():
    from domain.events import Attachment

    sha = "ab" * 32
    case = Case().open()
    rejected(case, cmd.OpenDispute, "send one of", actor=CUSTOMER, reason="quality",
             attachment=Attachment(name="x.exe", content_type="application/octet-stream", size=10, sha256=sha))
    rejected(case, cmd.OpenDispute, "at most 5000000", actor=CUSTOMER, reason="quality",
             attachment=Attachment(name="big.pdf", content_type="application/pdf", size=5_000_001, sha256=sha))
    kept = Attachment(name="photo.jpg", content_type="image/jpeg", size=52_000, sha256=sha)
    new = case.when(cmd.OpenDispute, actor=CUSTOMER, reason="quality", attachment=kept)
    assert new[0].attachment == kept


def test_a_customer_is_a_person_not_the_engine():
    """The customer has no role, like the engine's own timers, but is not the engine: a rule that
    asks for a person (a pause, a write-off request) is refused by role, never taken as system's."""
    assert CUSTOMER.is_customer and not CUSTOMER.is_system
    assert Actor(name="system").is_system and not Actor(name="system").is_customer
    case = Case().open()
    rejected(case, cmd.RequestWriteOff, "a customer may not", actor=CUSTOMER, amount=usd("10.00"), reason="small_balance")
