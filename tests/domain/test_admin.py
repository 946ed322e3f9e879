"""Administration events (domain/admin.py): reasons, stream ids, versions, and the stored form."""

from __future__ import annotations

from datetime import date, datetime, timezone
from uuid import uuid4

import pytest

from domain import admin
from domain.errors import DomainError
from domain.events import event_from_record
from domain.money import Money

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=timezone.utc)


def test_a_required_reason_must_be_given_and_an_optional_one_has_its_default():
    for blank in (None, "", "   "):
        with pytest.raises(DomainError, match="reason is required") as refused:
            admin.check_reason(blank)
        assert refused.value.field == "reason"
    assert admin.check_reason(None, required=False, default="invoice import") == "invoice import"
    assert admin.check_reason("  cheque bounced ") == "cheque bounced"
    with pytest.raises(DomainError, match="control characters"):
        admin.check_reason("two\nlines")
    with pytest.raises(DomainError, match="at most"):
        admin.check_reason("x" * 5000)


def test_streams_are_one_per_thing_and_never_a_case_or_customer_stream():
    from domain.customer import customer_stream_id

    assert admin.admin_stream_id("payment", "P-1") == admin.admin_stream_id("payment", "P-1")
    assert admin.admin_stream_id("payment", "P-1") != admin.admin_stream_id("policy", "P-1")
    assert admin.admin_stream_id("payment", "C-1") != customer_stream_id("C-1")


def test_an_event_follows_the_stream_version_and_round_trips_through_its_stored_form():
    stream = admin.admin_stream_id("payment", "P-1")
    event = admin.record(admin.LedgerPaymentReversed, stream, 1, uuid4(), NOW, "demo-supervisor", "cheque bounced",
                         "payment P-1 (invoice INV-1)", payment_id="P-1", invoice_id="INV-1",
                         amount=Money.of("100.10", "EUR", "amount"))
    assert (event.version, event.case_id, event.actor) == (2, stream, "demo-supervisor")
    data = event.data()
    assert data["amount"] == {"amount": "100.10", "currency": "EUR"} and data["reason"] == "cheque bounced"
    envelope = {"type": "LedgerPaymentReversed", "event_id": str(event.event_id), "case_id": str(stream),
                "version": 2, "occurred_at": NOW.isoformat(), "actor": "demo-supervisor"}
    assert event_from_record(envelope, data) == event
    assert admin.is_admin_event(event)
    with pytest.raises(ValueError, match="timezone"):
        admin.record(admin.PolicyPinned, stream, 0, uuid4(), datetime(2026, 3, 2), "a", "r", "s",
                     policy_version="v", digest="d", source="f")


def test_every_admin_event_type_is_known_to_the_store():
    assert admin.ADMIN_EVENT_TYPES == {"InvoicesImported", "PolicyPinned", "LedgerPaymentRecorded",
                                       "LedgerPaymentReversed", "PaymentAssigned", "InsurerPolicyAdded",
                                       "InvoiceInsured", "ApiTokenIssued", "ApiTokenRevoked", "UserAdded",
                                       "PaymentHeldUnmatched", "PaymentsImported", "ScheduleCreated",
                                       "ScheduleDeleted", "UnmatchedPaymentReversed", "WriteOffRecovered",
                                       "WriteOffRecoveryReversed",
                                       "SubscriberAdded", "SubscriberPaused", "SubscriberResumed",
                                       "SubscriberRemoved"}
    recorded = admin.record(admin.LedgerPaymentRecorded, admin.admin_stream_id("payment", "P"), 0, uuid4(), NOW,
                            "c", "r", "s", payment_id="P", invoice_id="I", amount=Money.of("1", "USD", "amount"),
                            received_on=date(2026, 3, 1), matched_by="direct")
    assert recorded.data()["received_on"] == "2026-03-01"


def test_recoveries_of_a_written_off_invoice_never_exceed_what_was_written_off():
    usd = lambda v: Money.of(v, "USD", "amount")  # noqa: E731
    stream = admin.admin_stream_id("recovery", "I")
    first = admin.record(admin.WriteOffRecovered, stream, 0, uuid4(), NOW, "fm", "dividend", "invoice I",
                         payment_id="R-1", invoice_id="I", case_id_ref="c", amount=usd("300"),
                         received_on=date(2026, 3, 1))
    assert admin.check_recovery(usd("1000"), [first], usd("700")) == usd("0")
    with pytest.raises(DomainError, match="still recoverable on this invoice: 700.00 USD") as refused:
        admin.check_recovery(usd("1000"), [first], usd("700.01"))
    assert refused.value.field == "amount"


def test_a_recovery_taken_back_is_recoverable_again():
    usd = lambda v: Money.of(v, "USD", "amount")  # noqa: E731
    stream = admin.admin_stream_id("recovery", "I")
    recovered = [admin.record(admin.WriteOffRecovered, stream, n, uuid4(), NOW, "fm", "dividend", "invoice I",
                              payment_id=f"R-{n}", invoice_id="I", case_id_ref="c", amount=usd(v),
                              received_on=date(2026, 3, 1)) for n, v in enumerate(("300", "500"))]
    taken_back = admin.record(admin.WriteOffRecoveryReversed, stream, 2, uuid4(), NOW, "sv", "cheque returned",
                              "recovery R-1 (invoice I)", payment_id="R-1", invoice_id="I", case_id_ref="c",
                              amount=usd("500"))
    assert admin.recovered_so_far("USD", recovered) == usd("800")
    assert admin.recovered_so_far("USD", [*recovered, taken_back]) == usd("300")
    assert admin.check_recovery(usd("1000"), [*recovered, taken_back], usd("700")) == usd("0")
    with pytest.raises(DomainError, match="still recoverable on this invoice: 200.00 USD"):
        admin.check_recovery(usd("1000"), recovered, usd("700"))
