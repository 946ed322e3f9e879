"""Administration events: human actions that change the engine outside any case. Pure.

A case's facts live in its stream, a customer's in the customer's stream. What a person
does to the ledger, the policies, the insurance terms or the users file belongs to no case,
so it is recorded here, in one small stream per thing acted on (``admin_stream_id``):
a payment recorded on an invoice without a case, a policy version, an insurer policy, an
invoice's insurance, a user and their token, the invoice imports. An auditor reading one stream
sees the whole history of that thing, and ``audit export`` shows them all in time order
with the case and customer events (docs/CONTROLS.md).

Every event carries the actor, the time (``occurred_at``), a ``reason`` and a ``subject``
(what was acted on, in words an auditor reads: ``payment P-1``); amounts are ``Money``.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal, Union, get_args
from uuid import UUID, uuid5

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from domain.commands import check_text
from domain.errors import DomainError
from domain.money import Money

_ADMIN_NAMESPACE = UUID("5d0e7c1a-8b2f-5e43-9a61-2c7f0b94e3d6")
ADMIN_ENVELOPE = frozenset({"type", "event_id", "stream_id", "version", "occurred_at", "actor"})


def admin_stream_id(kind: str, key: str) -> UUID:
    """The stream of one thing acted on (``payment``/``P-1``): stable, distinct from cases and customers."""
    return uuid5(_ADMIN_NAMESPACE, f"{kind}:{key}")


def check_reason(reason: str | None, required: bool = True, default: str = "") -> str:
    """The reason a person gives: required (non-blank) for what an auditor must be told."""
    text = (reason or "").strip()
    if not text:
        if required:
            raise DomainError("a reason is required (it is kept on the event, for the audit trail)", "reason")
        text = default
    return check_text(text, "reason")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class AdminEvent(_Frozen):
    event_id: UUID
    stream_id: UUID
    version: int
    occurred_at: datetime
    actor: str
    subject: str
    reason: str

    @property
    def case_id(self) -> UUID:
        """The event store calls every stream id ``case_id``."""
        return self.stream_id

    def data(self) -> dict:
        return self.model_dump(mode="json", exclude=set(ADMIN_ENVELOPE))


class InvoicesImported(AdminEvent):
    type: Literal["InvoicesImported"] = "InvoicesImported"
    source: str  # the file name, or "upload"
    digest: str  # sha256 of the text imported
    rows: int
    invoices_added: int
    invoices_unchanged: int
    customers: int
    invoices_changed: int = 0  # changed by the ERP: on the ledger or on their open case


class PolicyPinned(AdminEvent):
    type: Literal["PolicyPinned"] = "PolicyPinned"
    policy_version: str
    digest: str
    source: str


class LedgerPaymentRecorded(AdminEvent):
    """A payment on an invoice that has no case: it reduces the ledger's open amount. Paid beyond
    the open amount, the invoice is settled for its open amount and ``excess`` is the customer's
    credit, received on ``received_on`` (domain/credit.py)."""

    type: Literal["LedgerPaymentRecorded"] = "LedgerPaymentRecorded"
    payment_id: str
    invoice_id: str
    amount: Money  # the receipt in full, excess included
    received_on: date
    matched_by: str
    excess: Money | None = None  # paid beyond the open amount: customer credit (None: none, as before)


class LedgerPaymentReversed(AdminEvent):
    """A payment on an invoice without a case taken back: the invoice owes what it settled again,
    and the credit its excess gave the customer is taken back with it."""

    type: Literal["LedgerPaymentReversed"] = "LedgerPaymentReversed"
    payment_id: str
    invoice_id: str
    amount: Money
    excess: Money | None = None  # the recorded payment's excess, taken back off the customer's credit


class WriteOffRecovered(AdminEvent):
    """Money received on an invoice whose case was written off (bad debt recovered: the customer
    paid late, an insolvency administrator paid a dividend). The case has ended and stays written
    off; the recovery is cash collected on ``received_on`` and reduces the net write-offs. One
    stream per invoice (``admin_stream_id("recovery", invoice_id)``): its recoveries together never
    exceed what was written off on it (``check_recovery``)."""

    type: Literal["WriteOffRecovered"] = "WriteOffRecovered"
    payment_id: str
    invoice_id: str
    case_id_ref: str
    amount: Money
    received_on: date
    reference: str = ""


class WriteOffRecoveryReversed(AdminEvent):
    """A recovery the bank took back (the administrator's cheque returned unpaid, a transfer
    recalled): from the day it was taken back it is neither bad debt recovered nor cash
    collected, and it is recoverable on the invoice again. On the invoice's recovery stream,
    after the ``WriteOffRecovered`` of the same ``payment_id``; at most once."""

    type: Literal["WriteOffRecoveryReversed"] = "WriteOffRecoveryReversed"
    payment_id: str
    invoice_id: str
    case_id_ref: str
    amount: Money  # the recovery's amount, all of it


def recovered_so_far(currency: str, recoveries: list[AdminEvent]) -> Money:
    """What an invoice's recoveries add up to, less those taken back (its recovery stream's events)."""
    zero = Money.zero(currency)
    return sum((e.amount for e in recoveries if isinstance(e, WriteOffRecovered)), zero) - sum(
        (e.amount for e in recoveries if isinstance(e, WriteOffRecoveryReversed)), zero)


def check_recovery(written_off: Money, earlier: list[AdminEvent], amount: Money) -> Money:
    """What is still recoverable on an invoice after ``amount`` is recovered: the write-offs on
    it less every recovery so far. More than is still recoverable is refused naming ``amount``."""
    if amount.currency != written_off.currency:
        raise DomainError(f"the invoice was written off in {written_off.currency}, not {amount.currency}", "amount")
    left = written_off - recovered_so_far(written_off.currency, earlier)
    if amount > left:
        raise DomainError(f"{amount} exceeds what is still recoverable on this invoice: {left} "
                          f"(written off {written_off}, recovered so far {written_off - left})", "amount")
    return left - amount


class UnmatchedPaymentReversed(AdminEvent):
    """An unmatched payment taken back by the bank (a reversal entry in a statement)."""

    type: Literal["UnmatchedPaymentReversed"] = "UnmatchedPaymentReversed"
    payment_id: str
    amount: Money


class PaymentAssigned(AdminEvent):
    """An unmatched payment given to an invoice by hand (its case, if any, records the payment too)."""

    type: Literal["PaymentAssigned"] = "PaymentAssigned"
    payment_id: str
    invoice_id: str
    amount: Money
    case_id_ref: str | None = None
    # on an invoice without a case (no case_id_ref), paid beyond its open amount: the customer's
    # credit, received on received_on (a case records its own excess on PaymentReceived)
    excess: Money | None = None
    received_on: date | None = None


class PaymentHeldUnmatched(AdminEvent):
    """A bank file's payment the engine could not match: it waits for a person to assign it."""

    type: Literal["PaymentHeldUnmatched"] = "PaymentHeldUnmatched"
    payment_id: str
    amount: Money
    received_on: date
    payer: str
    reference: str
    note: str  # why it was not matched


class PaymentsImported(AdminEvent):
    """A bank file imported: what it held and what became of its payments (each one's own event
    is on its case, or in its payment stream)."""

    type: Literal["PaymentsImported"] = "PaymentsImported"
    source: str
    digest: str
    rows: int
    matched_by_reference: int
    matched_by_amount: int
    unmatched: int
    already_imported: int
    matched_by_sum: int = 0  # receipts split across a payer's open items whose sum they were


class ScheduleCreated(AdminEvent):
    """The daily sweep's Temporal Schedule created or changed."""

    type: Literal["ScheduleCreated"] = "ScheduleCreated"
    schedule_id: str
    cron: str
    timezone: str
    created: bool  # False: an existing schedule was updated


class ScheduleDeleted(AdminEvent):
    """The daily sweep's Temporal Schedule deleted: the sweep runs only when started by hand."""

    type: Literal["ScheduleDeleted"] = "ScheduleDeleted"
    schedule_id: str


class InsurerPolicyAdded(AdminEvent):
    type: Literal["InsurerPolicyAdded"] = "InsurerPolicyAdded"
    policy_id: str
    insurer_id: str
    insurer_name: str
    insurer_email: str
    notify_within: str
    max_extension: str
    claim_waiting: str
    indemnity_percent: Decimal


class InvoiceInsured(AdminEvent):
    type: Literal["InvoiceInsured"] = "InvoiceInsured"
    invoice_id: str
    policy_id: str


class ApiTokenIssued(AdminEvent):
    """A new API token for a user (the old one stops working); the token itself is never recorded."""

    type: Literal["ApiTokenIssued"] = "ApiTokenIssued"
    user: str
    role: str
    fingerprint: str  # of the stored hash, so two issuances can be told apart


class ApiTokenRevoked(AdminEvent):
    """A user's API token taken away without a new one: it stops working at once, and console
    sessions signed in with it end."""

    type: Literal["ApiTokenRevoked"] = "ApiTokenRevoked"
    user: str
    role: str
    fingerprint: str  # of the hash removed: the ApiTokenIssued with the same fingerprint issued it


class UserAdded(AdminEvent):
    """A person (or system) added to the users file; no token yet (``users token`` issues one)."""

    type: Literal["UserAdded"] = "UserAdded"
    user: str
    role: str
    write_off_limit: Decimal
    email: str | None = None
    language: str = "en"


class SubscriberAdded(AdminEvent):
    """A subscriber of the event feed: its events are pushed to ``url`` (docs/EVENTS.md)."""

    type: Literal["SubscriberAdded"] = "SubscriberAdded"
    name: str
    url: str
    event_types: list[str]
    from_position: int


class SubscriberPaused(AdminEvent):
    type: Literal["SubscriberPaused"] = "SubscriberPaused"
    name: str
    position: int  # the last position it had acknowledged


class SubscriberResumed(AdminEvent):
    type: Literal["SubscriberResumed"] = "SubscriberResumed"
    name: str
    position: int


class SubscriberRemoved(AdminEvent):
    type: Literal["SubscriberRemoved"] = "SubscriberRemoved"
    name: str
    position: int


AnyAdminEvent = Annotated[
    Union[InvoicesImported, PolicyPinned, LedgerPaymentRecorded, LedgerPaymentReversed, UnmatchedPaymentReversed,
          PaymentAssigned, WriteOffRecovered, WriteOffRecoveryReversed,
          PaymentHeldUnmatched, PaymentsImported, ScheduleCreated, ScheduleDeleted, InsurerPolicyAdded,
          InvoiceInsured, ApiTokenIssued, ApiTokenRevoked, UserAdded, SubscriberAdded, SubscriberPaused,
          SubscriberResumed, SubscriberRemoved],
    Field(discriminator="type"),
]
ADMIN_EVENT_ADAPTER: TypeAdapter[AnyAdminEvent] = TypeAdapter(AnyAdminEvent)
ADMIN_EVENT_TYPES = frozenset(t.__name__ for t in get_args(get_args(AnyAdminEvent)[0]))


def admin_event_from_record(envelope: dict, data: dict) -> AdminEvent:
    values = {**data, **envelope}
    values["stream_id"] = values.pop("case_id", values.get("stream_id"))
    return ADMIN_EVENT_ADAPTER.validate_python(values)


def is_admin_event(event: object) -> bool:
    return isinstance(event, AdminEvent)


def record(event_type: type[AdminEvent], stream_id: UUID, version: int, command_id: UUID, now: datetime,
           actor: str, reason: str, subject: str, **data: object) -> AdminEvent:
    """The next event of an administration stream (``version`` is the stream's current one)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return event_type(event_id=uuid5(command_id, str(version + 1)), stream_id=stream_id, version=version + 1,
                      occurred_at=now, actor=actor, reason=reason, subject=subject, **data)
