"""Domain events of a collection case: immutable facts, each with its envelope.

Events carry every value that was *decided* (deadlines, amounts applied), so
``evolve`` never needs the policy and a stream replays the same forever.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import Enum
from typing import Annotated, Literal, Union, get_args
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from domain.money import Money
from domain.policy import RiskGrade, Role

ENVELOPE_FIELDS = frozenset({"type", "event_id", "case_id", "version", "occurred_at", "actor"})


class OpenReason(str, Enum):
    overdue = "overdue"
    dispute = "dispute"
    manual = "manual"


class Outcome(str, Enum):
    paid = "paid"
    resolved = "resolved"
    written_off = "written_off"
    cancelled = "cancelled"


class EscalationDecision(str, Enum):
    plan = "plan"
    agency = "agency"
    legal = "legal"
    credit_hold = "credit_hold"
    write_off = "write_off"
    continue_ = "continue"


class DisputeOutcome(str, Enum):
    upheld = "upheld"
    rejected = "rejected"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class AdvanceFacts(_Frozen):
    """What makes a case one of kind ``advance``: an overdue advance request (a deposit before
    delivery, issue 16). The case's invoice_id is the request id; no invoice was issued."""

    reference: str = ""
    order_id: str | None = None


class Customer(_Frozen):
    customer_id: str
    name: str
    email: str
    country: str = "US"
    language: str = "en"
    timezone: str = "UTC"


class InsuranceCover(_Frozen):
    """An invoice insured under an insurer's policy, with that policy's terms."""

    insurer_id: str
    insurer_name: str
    insurer_email: str
    policy_number: str
    notify_within: timedelta  # the insurer must hear of the overdue within this long after the due date
    max_extension: timedelta  # payment may not be put off beyond due date + this (promises, plans)
    claim_waiting: timedelta  # a claim may be filed this long after the notification, if still unpaid
    indemnity_percent: Decimal  # share of the claimed loss the insurer pays


class Instalment(_Frozen):
    seq: int
    due_at: datetime
    amount: Money


class Event(_Frozen):
    event_id: UUID
    case_id: UUID
    version: int
    occurred_at: datetime
    actor: str

    def data(self) -> dict:
        """The event's own facts, without the envelope (JSON-ready)."""
        return self.model_dump(mode="json", exclude=set(ENVELOPE_FIELDS))


class CaseOpened(Event):
    type: Literal["CaseOpened"] = "CaseOpened"
    invoice_id: str
    customer: Customer
    risk_grade: RiskGrade
    original_amount: Money
    opening_balance: Money
    issue_date: date
    due_date: date
    reason: OpenReason
    policy_version: str
    ladder_steps: int
    first_reminder_at: datetime
    assignee: str | None = None
    advance: AdvanceFacts | None = None  # a case of kind advance (invoice_id is the request id)
    # of what was paid before opening, what the ERP booked (its export's paid column): a later
    # export's paid books only what goes beyond it (PaidOutsideEngine)
    erp_paid: Money | None = None

    def data(self) -> dict:
        """An invoice's case records no ``advance`` key, and none paid by the ERP no ``erp_paid``:
        its opening reads as it always has."""
        facts = super().data()
        for optional in ("advance", "erp_paid"):
            if facts.get(optional) is None:
                facts.pop(optional, None)
        return facts


class ReminderSent(Event):
    type: Literal["ReminderSent"] = "ReminderSent"
    seq: int
    level: int
    step: str
    message_id: str
    recipient: str
    next_reminder_at: datetime | None
    escalate_at: datetime | None
    letter_sha256: str | None = None  # SHA-256 of the PDF letter attached (a final notice)
    letter: dict | None = None  # the notice request it was rendered from: `case letter` renders it again


class ReminderWithdrawn(Event):
    """A notice not sent after all: the case closed (it was paid) while the notice was due."""

    type: Literal["ReminderWithdrawn"] = "ReminderWithdrawn"
    seq: int
    level: int
    reason: str


class ReminderFailed(Event):
    type: Literal["ReminderFailed"] = "ReminderFailed"
    seq: int
    level: int
    step: str
    message_id: str
    recipient: str
    error: str
    permanent: bool
    next_reminder_at: datetime | None
    escalate_at: datetime | None


class LateFeeCharged(Event):
    type: Literal["LateFeeCharged"] = "LateFeeCharged"
    level: int
    fee: Money


class InterestCharged(Event):
    """Statutory or contractual interest a notice stated (domain/interest.py): what accrued to
    ``accrued_to`` less the interest charged before; with the first one, the fixed compensation."""

    type: Literal["InterestCharged"] = "InterestCharged"
    level: int  # the ladder level of the notice that stated it
    regime: str  # the policy's regime for the customer's country (eu, uk, contract...)
    accrued_to: date
    accrued: Money  # all interest accrued to accrued_to
    interest: Money  # charged now
    compensation: Money | None = None  # the fixed sum per invoice, charged once
    basis: str = ""  # the periods: first..last days x principal at rate

    @property
    def fee(self) -> Money:
        """Everything this event adds to what is owed (reports count it with the late fees)."""
        return self.interest + self.compensation if self.compensation is not None else self.interest


class InterestWaived(Event):
    """Interest or compensation charged on the case is waived (by one person up to the policy's
    single-person threshold, above it after a second person's approval: domain/authority.py)."""

    type: Literal["InterestWaived"] = "InterestWaived"
    amount: Money
    reason: str
    approval_id: str | None = None  # the approval it needed (None: within one person's authority)


class PaymentReceived(Event):
    type: Literal["PaymentReceived"] = "PaymentReceived"
    payment_id: str
    amount: Money
    applied: Money
    excess: Money  # an overpayment: customer credit (advance receipt)
    reference: str
    received_on: date
    payer: str = ""  # as the bank file names them (the payments table's row)
    matched_by: str = "direct"  # direct | reference | amount | sum | manual


class SmallBalanceWrittenOff(Event):
    """A bank receipt left at most the policy's tolerance open (bank charges): the rest is written
    off and the case closes. Within one person's authority (``domain.authority.may_act_alone``),
    so it needs no approval; the actor is whoever recorded the receipt."""

    type: Literal["SmallBalanceWrittenOff"] = "SmallBalanceWrittenOff"
    payment_id: str  # the receipt that left it
    amount: Money
    tolerance: Money  # the policy's tolerance for the currency
    authority_amount: Money  # the amount in the policy's approval currency, at the pinned rate
    rate: Decimal


class SmallBalanceWriteOffReversed(Event):
    """The receipt whose small balance was written off was reversed: that write-off is undone
    with it (the balance is owed again in full), in the same decision as the reversal."""

    type: Literal["SmallBalanceWriteOffReversed"] = "SmallBalanceWriteOffReversed"
    payment_id: str
    amount: Money


class PaymentReversed(Event):
    """A payment bounced or was recalled: the balance it settled is due again."""

    type: Literal["PaymentReversed"] = "PaymentReversed"
    payment_id: str
    applied: Money
    excess: Money
    reason: str


class CaseReopened(Event):
    """A case closed as paid is open again (its payment was reversed)."""

    type: Literal["CaseReopened"] = "CaseReopened"
    reason: str
    next_reminder_at: datetime | None
    escalate_at: datetime | None


class Attachment(_Frozen):
    """A document the disputing party sent (kept by its SHA-256 under the data dir's attachments/)."""

    name: str
    content_type: str
    size: int
    sha256: str


class DisputeOpened(Event):
    type: Literal["DisputeOpened"] = "DisputeOpened"
    dispute_id: str
    reason: str
    amount: Money
    owner: str
    resolve_by: datetime
    note: str = ""  # the disputing party's comment (the customer's, from the self-service page)
    attachment: Attachment | None = None


class DisputeResolved(Event):
    type: Literal["DisputeResolved"] = "DisputeResolved"
    dispute_id: str
    outcome: DisputeOutcome
    credit: Money | None
    note: str = ""


class DisputeOverdue(Event):
    type: Literal["DisputeOverdue"] = "DisputeOverdue"
    dispute_id: str
    resolve_by: datetime


class DisputeEscalated(Event):
    """A dispute past its resolution deadline goes to a supervisor (then upward when its SLA lapses)."""

    type: Literal["DisputeEscalated"] = "DisputeEscalated"
    dispute_id: str
    from_tier: Role | None  # None: first escalation, from the dispute's owner
    tier: Role
    sla_due_at: datetime | None  # None: at the top tier, no further deadline


class PromiseMade(Event):
    type: Literal["PromiseMade"] = "PromiseMade"
    promise_id: str
    amount: Money
    promised_date: date
    check_at: datetime


class PaymentReported(Event):
    """The customer says they paid (self-service page): a hint for the matcher, not a payment."""

    type: Literal["PaymentReported"] = "PaymentReported"
    report_id: str
    amount: Money
    paid_on: date
    reference: str


class ContactCorrected(Event):
    """The billing contact's e-mail address changed (the customer corrected it on the page):
    notices go to ``email`` from now on."""

    type: Literal["ContactCorrected"] = "ContactCorrected"
    email: str
    previous: str


class PromiseKept(Event):
    type: Literal["PromiseKept"] = "PromiseKept"
    promise_id: str


class PromiseBroken(Event):
    type: Literal["PromiseBroken"] = "PromiseBroken"
    promise_id: str
    paid: Money


class EscalatedToSupervisor(Event):
    type: Literal["EscalatedToSupervisor"] = "EscalatedToSupervisor"
    escalation_id: str
    reason: str
    tier: Role
    sla_due_at: datetime


class EscalationSlaLapsed(Event):
    type: Literal["EscalationSlaLapsed"] = "EscalationSlaLapsed"
    escalation_id: str
    from_tier: Role
    to_tier: Role
    sla_due_at: datetime | None  # None: already at the top, no further deadline


class EscalationDecided(Event):
    type: Literal["EscalationDecided"] = "EscalationDecided"
    escalation_id: str
    decision: EscalationDecision
    note: str = ""
    continue_until: datetime | None = None


class CreditHoldPlaced(Event):
    type: Literal["CreditHoldPlaced"] = "CreditHoldPlaced"
    customer_id: str
    reason: str


class PaymentPlanProposed(Event):
    type: Literal["PaymentPlanProposed"] = "PaymentPlanProposed"
    plan_id: str
    instalments: tuple[Instalment, ...]
    every: timedelta
    grace: timedelta
    requires_approval: bool
    approval_id: str | None
    sla_due_at: datetime | None
    expires_at: datetime | None = None  # the offer lapses unless accepted by then (None: before offers lapsed)


class PaymentPlanExpired(Event):
    """Nobody accepted the offer within the policy's validity: dunning resumes where it stopped."""

    type: Literal["PaymentPlanExpired"] = "PaymentPlanExpired"
    plan_id: str
    approval_id: str | None = None  # a pending approval of the plan, withdrawn with it
    expired_at: datetime


class PaymentPlanWithdrawn(Event):
    """The collector withdrew an offer nobody had accepted: dunning resumes where it stopped."""

    type: Literal["PaymentPlanWithdrawn"] = "PaymentPlanWithdrawn"
    plan_id: str
    approval_id: str | None = None
    reason: str


class PaymentPlanApproved(Event):
    type: Literal["PaymentPlanApproved"] = "PaymentPlanApproved"
    plan_id: str
    approval_id: str
    reason: str = ""  # the approver's


class PaymentPlanRejected(Event):
    type: Literal["PaymentPlanRejected"] = "PaymentPlanRejected"
    plan_id: str
    approval_id: str
    reason: str


class PaymentPlanAccepted(Event):
    type: Literal["PaymentPlanAccepted"] = "PaymentPlanAccepted"
    plan_id: str


class InstalmentPaid(Event):
    type: Literal["InstalmentPaid"] = "InstalmentPaid"
    plan_id: str
    seq: int
    amount: Money


class PaymentPlanDefaulted(Event):
    type: Literal["PaymentPlanDefaulted"] = "PaymentPlanDefaulted"
    plan_id: str
    missed_seq: int


class WriteOffRequested(Event):
    type: Literal["WriteOffRequested"] = "WriteOffRequested"
    approval_id: str
    amount: Money
    reason: str
    requested_by: str
    sla_due_at: datetime


class WriteOffApproved(Event):
    type: Literal["WriteOffApproved"] = "WriteOffApproved"
    approval_id: str
    amount: Money
    reason: str = ""  # the approver's
    # the amount in the policy's approval currency and the pinned rate used (None: before rates)
    authority_amount: Money | None = None
    rate: Decimal | None = None


class ReductionRequested(Event):
    """A reduction beyond one person's authority waits for a second person: the credit of an
    upheld dispute, or cancelling an open balance."""

    type: Literal["ReductionRequested"] = "ReductionRequested"
    approval_id: str
    kind: Literal["credit", "cancellation", "waiver"]
    amount: Money
    reason: str
    note: str = ""
    requested_by: str
    sla_due_at: datetime
    dispute_id: str | None = None  # kind credit: the dispute it would resolve
    # what people had already reduced the case by alone when this was asked: it counted against the
    # threshold (``alone_adds_up``), so the approver sees why a small reduction waits for them
    reduced_alone: Money | None = None


class ReductionApproved(Event):
    type: Literal["ReductionApproved"] = "ReductionApproved"
    approval_id: str
    kind: Literal["credit", "cancellation", "waiver"]
    amount: Money
    reason: str = ""
    authority_amount: Money
    rate: Decimal


class ReductionRejected(Event):
    type: Literal["ReductionRejected"] = "ReductionRejected"
    approval_id: str
    kind: Literal["credit", "cancellation", "waiver"]
    reason: str


class WriteOffRejected(Event):
    type: Literal["WriteOffRejected"] = "WriteOffRejected"
    approval_id: str
    reason: str


class ApprovalSlaLapsed(Event):
    type: Literal["ApprovalSlaLapsed"] = "ApprovalSlaLapsed"
    approval_id: str
    to_tier: Role
    sla_due_at: datetime | None


class PolicyMigrated(Event):
    """The case now runs under another policy version (moved explicitly, never silently)."""

    type: Literal["PolicyMigrated"] = "PolicyMigrated"
    from_version: str
    to_version: str
    ladder_steps: int
    next_reminder_at: datetime | None
    escalate_at: datetime | None
    reason: str


class CaseAssigned(Event):
    type: Literal["CaseAssigned"] = "CaseAssigned"
    assignee: str


class CaseCancelled(Event):
    type: Literal["CaseCancelled"] = "CaseCancelled"
    reason: str
    amount: Money  # balance cancelled (e.g. the invoice was voided in the ERP)


class CaseClosed(Event):
    type: Literal["CaseClosed"] = "CaseClosed"
    outcome: Outcome
    payments: Money
    credits: Money
    write_offs: Money
    fees: Money
    credit_applied: Money | None = None  # customer credit applied (None: none)
    indemnity: Money | None = None  # paid by the credit insurer (None: none)
    erp_adjustments: Money | None = None  # ERP amendments and credit notes, net (None: none)
    # booked by the ERP as paid outside the engine and still settling the invoice: net of what an
    # amendment below it gave back as credit (InvoiceAmended.paid_outside), as payments and credit
    # applied are; what the ERP booked is on its PaidOutsideEngine events (None: none)
    paid_outside: Money | None = None
    discounts: Money | None = None  # early-payment discount granted (None: none)
    factored: Money | None = None  # settled in the factor's hands, or its non-recourse loss (None: none)
    # paid on the ledger before the case opened and still settling the invoice, net of what an
    # amendment below it gave back as credit (None: none; events recorded before this field leave
    # it to be worked out from CaseOpened and the amendments)
    paid_before_open: Money | None = None


# -- changes the ERP reports (invoice and customer sync, docs/IMPORT.md) ----------------------
# Each names its source as its ``reason`` (the export file and line). A reduction from the ERP is the ERP's
# own document: no collector decided it and it needs no approval.


class InvoiceAmended(Event):
    """The ERP changed the invoice amount by ``change`` (negative: reduced). The balance moves by
    ``change`` + ``credit``: a reduction below what the customer already paid (on the case, the
    customer credit applied to it, outside the engine as the ERP booked it, then before it opened)
    takes the balance to zero, and the part paid beyond the new amount (``credit``) stays with the
    customer as credit (unapplied cash), as an overpayment's excess does (docs/IMPORT.md)."""

    type: Literal["InvoiceAmended"] = "InvoiceAmended"
    previous: Money
    amount: Money
    # the amendment, amount - previous; a reduction capped at the open balance plus ``credit`` (in
    # events recorded before ``credit`` existed, at the open balance: the part paid beyond went nowhere)
    change: Money
    reason: str  # where the ERP said so: "ERP export FILE line N"
    # paid beyond the new amount, now customer credit: of the payments on the case, then of the
    # customer credit applied to it (``credit_applied``), then of what was paid outside the engine
    # (``paid_outside``), then of what was paid before it opened (in events recorded before those
    # rules, of the payments, then of what was paid before it opened)
    credit: Money | None = None
    # of ``credit``, what came off the customer credit applied to the case (None: none, as in every
    # event recorded before that rule)
    credit_applied: Money | None = None
    # of ``credit``, what came off the money the ERP booked as paid outside the engine on the case
    # (PaidOutsideEngine): it no longer settles the invoice, and the ERP's booked total stays as it
    # was (None: none, as in every event recorded before that rule)
    paid_outside: Money | None = None

    @property
    def balance_change(self) -> Money:
        """What the balance moved by."""
        return self.change if self.credit is None else self.change + self.credit


class CreditNoteApplied(Event):
    """An ERP credit note (its own document id) referencing this invoice reduced the balance."""

    type: Literal["CreditNoteApplied"] = "CreditNoteApplied"
    document_id: str
    amount: Money  # the credit note's amount
    applied: Money  # what it took off the balance (capped at the open balance)
    reason: str  # where the ERP said so: "ERP export FILE line N"


class PaidOutsideEngine(Event):
    """The ERP booked a payment the engine never saw (cash at the counter, a netting...)."""

    type: Literal["PaidOutsideEngine"] = "PaidOutsideEngine"
    amount: Money  # newly booked by the ERP
    applied: Money
    total: Money  # everything the ERP has booked as paid outside the engine
    reason: str  # where the ERP said so: "ERP export FILE line N"


class DueDateMoved(Event):
    """The ERP moved the due date: the ladder's remaining steps move with it."""

    type: Literal["DueDateMoved"] = "DueDateMoved"
    previous: date
    due_date: date
    shift: timedelta
    next_reminder_at: datetime | None  # the re-planned notice (None: the clock did not run a reminder)
    reason: str  # where the ERP said so: "ERP export FILE line N"


class CustomerDetailsChanged(Event):
    """The ERP's customer master data changed: later notices use the new details."""

    type: Literal["CustomerDetailsChanged"] = "CustomerDetailsChanged"
    customer: Customer
    changed: tuple[str, ...]  # the fields that differ: name, email, language, country, timezone
    reason: str  # where the ERP said so: "ERP export FILE line N"


# -- credit insurance ------------------------------------------------------------------


class CaseInsured(Event):
    """The invoice is insured: the deadlines the insurer's terms give this case."""

    type: Literal["CaseInsured"] = "CaseInsured"
    insurer_id: str
    insurer_name: str
    insurer_email: str
    policy_number: str
    indemnity_percent: Decimal
    notify_at: datetime  # when the case will notify the insurer
    notify_by: datetime  # the insurer's deadline for that notification
    extension_until: date  # no promise or plan may put payment off beyond this
    claim_waiting: timedelta


class InsurerNotified(Event):
    type: Literal["InsurerNotified"] = "InsurerNotified"
    message_id: str
    recipient: str
    notify_by: datetime
    in_time: bool  # False: after the deadline, the cover is lost and no claim will be filed
    claim_at: datetime | None  # when a claim is filed if the invoice is still unpaid


class InsurerNotificationFailed(Event):
    type: Literal["InsurerNotificationFailed"] = "InsurerNotificationFailed"
    message_id: str
    recipient: str
    error: str
    retry_at: datetime


class ClaimFiled(Event):
    type: Literal["ClaimFiled"] = "ClaimFiled"
    claim_id: str
    amount: Money  # the unpaid balance claimed
    expected_indemnity: Money


class IndemnityReceived(Event):
    type: Literal["IndemnityReceived"] = "IndemnityReceived"
    claim_id: str
    amount: Money
    reference: str = ""


# -- dunning pauses ---------------------------------------------------------------------


class DunningPaused(Event):
    """Notices stop until ``until`` (or a resume): a deliberate pause with a reason code."""

    type: Literal["DunningPaused"] = "DunningPaused"
    pause_id: str
    until: datetime
    reason: str
    scope: Literal["case", "customer"] = "case"
    requested_by: str
    approval_id: str | None = None  # the supervisor's approval, for a pause beyond the collector's maximum


class PauseRequested(Event):
    """A pause longer than the collector's maximum waits for a supervisor (four eyes)."""

    type: Literal["PauseRequested"] = "PauseRequested"
    approval_id: str
    pause_id: str
    until: datetime
    reason: str
    scope: Literal["case", "customer"] = "case"
    requested_by: str
    sla_due_at: datetime


class PauseDecided(Event):
    type: Literal["PauseDecided"] = "PauseDecided"
    approval_id: str
    approved: bool
    reason: str


class DunningResumed(Event):
    """The pause ended: at its end date (actor system) or by a person's resume."""

    type: Literal["DunningResumed"] = "DunningResumed"
    pause_id: str
    reason: str
    ended: Literal["end_date", "resumed"]


# -- customer credit ---------------------------------------------------------------------


class CustomerCreditApplied(Event):
    """Customer credit (an earlier overpayment or a prepayment) settles part of this invoice."""

    type: Literal["CustomerCreditApplied"] = "CustomerCreditApplied"
    allocation_id: str
    amount: Money


# -- early-cash instruments: factoring and early-payment discounts (docs/FINANCING.md) ---------


class DiscountTerms(_Frozen):
    """An early-payment discount offer: pay ``pay`` by ``pay_by`` and ``discount`` is forgiven."""

    percent: Decimal
    discount: Money
    pay: Money
    pay_by: datetime


class FactorTerms(_Frozen):
    """An invoice's assignment to a factor: the factor's payment instructions as the policy named
    them (notices carry them), and what the factor advances and charges."""

    assignment_id: str
    factor: str
    account_name: str
    iban: str
    bic: str
    factor_email: str
    recourse: bool
    assigned: Money  # the balance assigned
    advance_rate: Decimal
    advanced: Money  # advance_rate x assigned: the cash the factor advances
    fee_rate: Decimal
    fee: Money  # fee_rate x assigned: the factor's charge


class InvoiceAssignedToFactor(Event, FactorTerms):
    """The invoice is assigned to a factor, who advances part of it now."""

    type: Literal["InvoiceAssignedToFactor"] = "InvoiceAssignedToFactor"
    reason: str


class FactorCollected(Event):
    """The factor reports the customer paid it: the invoice is settled in the factor's hands."""

    type: Literal["FactorCollected"] = "FactorCollected"
    assignment_id: str
    amount: Money  # the balance it settled
    reason: str


class FactorDefaulted(Event):
    """The factor reports the customer did not pay. Without recourse the factor bears the loss: the
    balance leaves the company's books (``derecognized``) and the case closes as resolved. With
    recourse the receivable comes back to the company: the case dunns it again, without the factor."""

    type: Literal["FactorDefaulted"] = "FactorDefaulted"
    assignment_id: str
    recourse: bool
    amount: Money  # the balance at that moment
    derecognized: Money | None = None  # without recourse: what left the books (the factor's loss)
    reason: str


class FactorDefaultReported(Event):
    """A case assigned with recourse escalated or was written off: the default is reported to the
    factor (an e-mail to its contact follows: ``FactorNotified``)."""

    type: Literal["FactorDefaultReported"] = "FactorDefaultReported"
    assignment_id: str
    trigger: Literal["escalated", "written_off"]
    amount: Money  # the balance reported
    recipient: str


class FactorNotified(Event):
    """The e-mail reporting the default reached (or failed to reach) the factor's contact."""

    type: Literal["FactorNotified"] = "FactorNotified"
    assignment_id: str
    message_id: str
    recipient: str
    delivered: bool
    error: str = ""


class EarlyPaymentDiscountOffered(Event):
    """A notice offered an early-payment discount: pay ``pay`` by ``pay_by`` and the rest is forgiven."""

    type: Literal["EarlyPaymentDiscountOffered"] = "EarlyPaymentDiscountOffered"
    seq: int  # the notice that states it
    percent: Decimal
    discount: Money
    pay: Money
    pay_by: datetime


class EarlyPaymentDiscountGranted(Event):
    """A payment within the offer covered the discounted amount: the rest is a discount granted
    (a sales deduction under the offer's terms: not a write-off, no approval)."""

    type: Literal["EarlyPaymentDiscountGranted"] = "EarlyPaymentDiscountGranted"
    payment_id: str
    amount: Money
    percent: Decimal
    pay_by: datetime


AnyEvent = Annotated[
    Union[
        CaseOpened,
        ReminderSent,
        ReminderFailed,
        ReminderWithdrawn,
        LateFeeCharged,
        InterestCharged,
        InterestWaived,
        PaymentReceived,
        PaymentReversed,
        SmallBalanceWrittenOff,
        SmallBalanceWriteOffReversed,
        CaseReopened,
        DisputeOpened,
        DisputeResolved,
        DisputeOverdue,
        PromiseMade,
        PromiseKept,
        PromiseBroken,
        EscalatedToSupervisor,
        EscalationSlaLapsed,
        EscalationDecided,
        CreditHoldPlaced,
        PaymentPlanProposed,
        PaymentPlanApproved,
        PaymentPlanRejected,
        PaymentPlanAccepted,
        InstalmentPaid,
        PaymentPlanDefaulted,
        WriteOffRequested,
        WriteOffApproved,
        WriteOffRejected,
        ReductionRequested,
        ReductionApproved,
        ReductionRejected,
        ApprovalSlaLapsed,
        PolicyMigrated,
        CaseAssigned,
        CaseCancelled,
        CaseClosed,
        CaseInsured,
        InsurerNotified,
        InsurerNotificationFailed,
        ClaimFiled,
        IndemnityReceived,
        CustomerCreditApplied,
        PaymentPlanExpired,
        PaymentPlanWithdrawn,
        DisputeEscalated,
        DunningPaused,
        PauseRequested,
        PauseDecided,
        DunningResumed,
        InvoiceAmended,
        CreditNoteApplied,
        PaidOutsideEngine,
        DueDateMoved,
        CustomerDetailsChanged,
        PaymentReported,
        ContactCorrected,
        InvoiceAssignedToFactor,
        FactorCollected,
        FactorDefaulted,
        FactorDefaultReported,
        FactorNotified,
        EarlyPaymentDiscountOffered,
        EarlyPaymentDiscountGranted,
    ],
    Field(discriminator="type"),
]

EVENT_ADAPTER: TypeAdapter[AnyEvent] = TypeAdapter(AnyEvent)
EVENT_TYPES = tuple(t.__name__ for t in get_args(get_args(AnyEvent)[0]))


def event_from_record(envelope: dict, data: dict) -> Event:
    """Rebuild a typed event from its stored envelope and data (a case's event, or a
    customer's: see domain/customer.py)."""
    from domain.admin import ADMIN_EVENT_TYPES, admin_event_from_record
    from domain.customer import CUSTOMER_EVENT_TYPES, customer_event_from_record

    if envelope.get("type") in CUSTOMER_EVENT_TYPES:
        return customer_event_from_record(envelope, data)
    if envelope.get("type") in ADMIN_EVENT_TYPES:
        return admin_event_from_record(envelope, data)
    return EVENT_ADAPTER.validate_python({**data, **envelope})
