"""Commands: what someone (or a timer) asks of a case.

Every command carries a ``command_id`` (event ids are derived from it, so a
retried command yields the same events) and the ``actor`` who issues it.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Literal, Union
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from domain.errors import DomainError
from domain.events import AdvanceFacts, Attachment, Customer, DiscountTerms, DisputeOutcome, EscalationDecision, InsuranceCover, OpenReason
from domain.interest import InterestDue
from domain.money import Money
from domain.policy import Policy, RiskGrade, Role
from domain.users import Actor

CODE_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,39}$")
MAX_TEXT = 500


def check_code(value: str, field: str) -> str:
    """Reason codes are short slugs (``pricing``, ``not_received``)."""
    if not CODE_PATTERN.match(value or ""):
        raise DomainError(
            f"{value[:60]!r} is not a reason code (lowercase letters, digits, '_', '-', '.'; at most 40)",
            field,
        )
    return value


def check_text(value: str, field: str, required: bool = False) -> str:
    """Free text: bounded, printable, no control characters."""
    if required and not value.strip():
        raise DomainError("must not be empty", field)
    if len(value) > MAX_TEXT:
        raise DomainError(f"is {len(value)} characters long; at most {MAX_TEXT} allowed", field)
    if any(ord(c) < 32 and c not in "\t" for c in value):
        raise DomainError("must not contain control characters or line breaks", field)
    return value


class Command(BaseModel):
    model_config = ConfigDict(frozen=True)

    command_id: UUID
    actor: Actor


class InvoiceFacts(BaseModel):
    model_config = ConfigDict(frozen=True)

    invoice_id: str
    customer: Customer
    risk_grade: RiskGrade = RiskGrade.B
    amount: Money
    paid: Money  # already paid before the case opened
    erp_paid: Money | None = None  # of ``paid``, what the ERP booked (its export's paid column)
    issue_date: date
    due_date: date
    insurance: InsuranceCover | None = None  # the invoice's credit insurance, if any
    advance: AdvanceFacts | None = None  # an overdue advance request (invoice_id: the request id)


class CustomerPauseFacts(BaseModel):
    """A customer-wide dunning pause in force when a case of the customer opens."""

    model_config = ConfigDict(frozen=True)

    pause_id: str
    until: datetime
    reason: str
    requested_by: str
    requested_by_role: Role | None = None


class OpenCase(Command):
    kind: Literal["open"] = "open"
    case_id: UUID
    invoice: InvoiceFacts
    reason: OpenReason = OpenReason.overdue
    assignee: str | None = None
    customer_pause: CustomerPauseFacts | None = None  # the case opens paused with its customer
    # Reminders count from the due date when the case opens before it. False in the openings of
    # histories recorded before the rule, so that they replay as they ran.
    reminders_after_due: bool = False


class RecordPayment(Command):
    kind: Literal["pay"] = "pay"
    payment_id: str = Field(min_length=1, max_length=100)
    amount: Money
    reference: str = ""
    received_on: date
    payer: str = Field("", max_length=300)
    matched_by: str = "direct"
    # a bank receipt: what it leaves open within the policy's matching tolerance is written off
    within_tolerance: bool = False


class ReversePayment(Command):
    kind: Literal["pay_reverse"] = "pay_reverse"
    payment_id: str = Field(min_length=1, max_length=100)
    reason: str


class OpenDispute(Command):
    kind: Literal["dispute_open"] = "dispute_open"
    reason: str
    amount: Money | None = None  # default: the whole balance
    owner: str | None = None
    note: str = ""
    attachment: Attachment | None = None


class ResolveDispute(Command):
    kind: Literal["dispute_resolve"] = "dispute_resolve"
    outcome: DisputeOutcome
    credit: Money | None = None  # upheld: default the disputed amount
    note: str = ""


class MakePromise(Command):
    kind: Literal["promise"] = "promise"
    amount: Money
    promised_date: date


class ReportPayment(Command):
    """The customer tells us it was paid: amount, date and reference, kept for the matcher."""

    kind: Literal["payment_report"] = "payment_report"
    amount: Money
    paid_on: date
    reference: str = ""


class CorrectContact(Command):
    """A new e-mail address for the billing contact of the case's customer."""

    kind: Literal["contact_correct"] = "contact_correct"
    email: str


class ProposePlan(Command):
    kind: Literal["plan_propose"] = "plan_propose"
    instalments: int
    every: timedelta
    first_due: datetime | None = None


class AcceptPlan(Command):
    kind: Literal["plan_accept"] = "plan_accept"


class WithdrawPlan(Command):
    """The collector withdraws an offer nobody has accepted."""

    kind: Literal["plan_withdraw"] = "plan_withdraw"
    reason: str


class PauseDunning(Command):
    """Stop notices until ``until`` with a reason code (scope ``customer``: part of a customer pause)."""

    kind: Literal["pause"] = "pause"
    until: datetime
    reason: str
    scope: Literal["case", "customer"] = "case"


class ResumeDunning(Command):
    kind: Literal["resume"] = "resume"
    reason: str


class DecideEscalation(Command):
    kind: Literal["escalation_decide"] = "escalation_decide"
    decision: EscalationDecision
    note: str = ""


class RequestWriteOff(Command):
    kind: Literal["write_off_request"] = "write_off_request"
    amount: Money
    reason: str


class DecideApproval(Command):
    kind: Literal["approval_decide"] = "approval_decide"
    approval_id: str
    approve: bool
    reason: str = ""


class MigratePolicy(Command):
    kind: Literal["policy_migrate"] = "policy_migrate"
    policy: Policy  # the version to move to, as pinned
    reason: str


class AssignCase(Command):
    kind: Literal["assign"] = "assign"
    assignee: str = Field(min_length=1, max_length=100)


class CancelCase(Command):
    kind: Literal["cancel"] = "cancel"
    reason: str


class RecordReminder(Command):
    """The outcome of sending one notice (the workflow reports it)."""

    kind: Literal["reminder"] = "reminder"
    seq: int
    level: int
    message_id: str
    recipient: str
    delivered: bool
    permanent: bool = False
    error: str = ""
    fee: Money | None = None
    withdrawn: bool = False  # not sent: the case had closed when it was to go out
    interest: InterestDue | None = None  # interest and compensation the notice stated
    letter_sha256: str | None = None  # the PDF letter attached (a final notice)
    letter: dict | None = None  # what it was rendered from (the notice request), to reproduce it
    discount: DiscountTerms | None = None  # the early-payment discount the notice offered

    @field_validator("error")
    @classmethod
    def _short(cls, value: str) -> str:
        return value[:MAX_TEXT]


class _MailOutcome(Command):
    """The outcome of an e-mail the workflow sent (to an insurer, a factor)."""

    message_id: str
    recipient: str
    delivered: bool
    error: str = ""

    @field_validator("error")
    @classmethod
    def _short(cls, value: str) -> str:
        return value[:MAX_TEXT]


class RecordInsurerNotice(_MailOutcome):
    """The outcome of notifying the insurer of the overdue (the workflow reports it)."""

    kind: Literal["insurer_notice"] = "insurer_notice"


class RecordIndemnity(Command):
    """The insurer paid (part of) the filed claim."""

    kind: Literal["indemnity"] = "indemnity"
    amount: Money
    reference: str = ""


class ApplyCustomerCredit(Command):
    """Settle part of the balance with customer credit already reserved on the customer's stream."""

    kind: Literal["credit_apply"] = "credit_apply"
    allocation_id: str = Field(min_length=1, max_length=100)
    amount: Money


class WaiveInterest(Command):
    """Waive interest and compensation charged on the case (all of it when no amount is given)."""

    kind: Literal["interest_waive"] = "interest_waive"
    amount: Money | None = None
    reason: str


class CreditNote(BaseModel):
    """An ERP credit note: its own document id, referencing one invoice."""

    model_config = ConfigDict(frozen=True)

    document_id: str = Field(min_length=1, max_length=100)
    amount: Money
    source: str = Field("", max_length=300)  # its own file and line (empty: the invoice's)


class SyncInvoice(Command):
    """The invoice as the ERP has it now (one row of an import, docs/IMPORT.md). The decider
    records each difference from the case as its own event; the same facts again record nothing."""

    kind: Literal["erp_sync"] = "erp_sync"
    amount: Money  # the invoice amount, before credit notes
    due_date: date
    customer: Customer
    cancelled: bool = False
    paid: Money | None = None  # everything the ERP booked as paid outside the engine (None: nothing)
    credit_notes: tuple[CreditNote, ...] = ()  # every credit note of the invoice
    source: str = Field(min_length=1, max_length=300)  # the file and line


class Tick(Command):
    """A timer fired: apply every deadline that has passed."""

    kind: Literal["tick"] = "tick"


# -- early-cash instruments: factoring (docs/FINANCING.md) ---------------------------------------


class AssignToFactor(Command):
    """Assign the invoice to one of the policy's factors, with or without recourse."""

    kind: Literal["factor_assign"] = "factor_assign"
    assignment_id: str = Field(min_length=1, max_length=100)
    factor: str
    recourse: bool
    advance_rate: Decimal
    fee_rate: Decimal = Decimal(0)
    reason: str


class RecordFactorOutcome(Command):
    """The factor reports the assigned invoice paid to it, or defaulted."""

    kind: Literal["factor_outcome"] = "factor_outcome"
    outcome: Literal["collected", "defaulted"]
    reason: str


class RecordFactorNotice(_MailOutcome):
    """The outcome of e-mailing the factor the default report (the workflow reports it)."""

    kind: Literal["factor_notice"] = "factor_notice"


AnyCommand = Annotated[
    Union[
        OpenCase,
        RecordPayment,
        ReversePayment,
        OpenDispute,
        ResolveDispute,
        MakePromise,
        ProposePlan,
        AcceptPlan,
        WithdrawPlan,
        PauseDunning,
        ResumeDunning,
        DecideEscalation,
        RequestWriteOff,
        DecideApproval,
        MigratePolicy,
        AssignCase,
        CancelCase,
        RecordReminder,
        RecordInsurerNotice,
        RecordIndemnity,
        ApplyCustomerCredit,
        WaiveInterest,
        SyncInvoice,
        Tick,
        ReportPayment,
        CorrectContact,
        AssignToFactor,
        RecordFactorOutcome,
        RecordFactorNotice,
    ],
    Field(discriminator="kind"),
]
