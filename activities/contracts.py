"""Activity names and payloads shared by workflows and the worker.

Workflows import only this light module (pydantic models), never the
activity implementations with their database and SMTP clients.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from domain.events import AdvanceFacts, AnyEvent, Customer, DiscountTerms, FactorTerms
from domain.interest import InterestDue
from domain.money import Money

APPEND_EVENTS = "append_events"
LOAD_CASE = "load_case"
LOAD_POLICY = "load_policy"
SEND_NOTICE = "send_notice"

CONCURRENCY_ERROR = "ConcurrencyError"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class AppendRequest(_Model):
    case_id: UUID
    expected_version: int
    events: list[AnyEvent]
    metadata: dict[str, Any] = {}


class AppendReply(_Model):
    version: int
    already_appended: bool


class LoadCaseReply(_Model):
    events: list[AnyEvent]


class NoticeRequest(_Model):
    case_id: UUID
    seq: int
    level: int
    step: str
    final: bool
    invoice_id: str
    customer: Customer
    amount_due: Money
    balance: Money
    fee: Money | None
    due_date: date
    issue_date: date
    interest: InterestDue | None = None  # statutory interest and compensation stated (domain/interest.py)
    issued_on: date | None = None  # the notice's date (a final notice's PDF letter is dated by it)
    advance: AdvanceFacts | None = None  # a case of kind advance: a deposit due before shipment (invoice_id: the request)
    factor: FactorTerms | None = None  # assigned to a factor: pay only to it (docs/FINANCING.md)
    discount: DiscountTerms | None = None  # the early-payment discount the notice offers
    # the time the notice gives before the next step; None in letters recorded before (they said 7 days)
    respond_within: timedelta | None = None


class NoticeResult(_Model):
    message_id: str
    recipient: str
    delivered: bool
    permanent: bool = False
    error: str = ""
    already_sent: bool = False
    # cases whose notice was not sent because the case had closed by then (paid meanwhile)
    withdrawn: list[str] = []
    letters: dict[str, str] = {}  # case id -> SHA-256 of the PDF letter attached (final notices)
    # the customer's unapplied credit the notice (and its letter) stated; its ReminderSent's letter keeps it
    credit: list[Money] = []


# -- the daily sweep ------------------------------------------------------------------------

SWEEP_PREPARE = "sweep_prepare"
SWEEP_PAGE = "sweep_page"
SWEEP_ADVANCES = "sweep_advances"


class SweepPrepareRequest(_Model):
    as_of: date | None  # None: the local date of ``started_at`` in ``timezone``
    started_at: datetime  # the workflow's start (workflow.now()), so a retried run keeps its day
    timezone: str = "UTC"


class SweepPlan(_Model):
    as_of: date
    cutoff: date  # invoices due on or before this date are overdue (as_of - policy grace)
    policy_version: str
    scanned: int
    not_due: int
    paid: int
    overdue: int  # overdue and unpaid: the invoices the pages walk through
    started_at: datetime | None = None  # the sweep's start (server time); None in plans recorded before it


class SweepPageRequest(_Model):
    cutoff: date
    policy_version: str
    after: str
    limit: int


class SweepAdvancesRequest(_Model):
    """Open a case of kind advance for every advance request due on or before ``cutoff`` and unpaid."""

    cutoff: date
    policy_version: str


class SweepPageResult(_Model):
    seen: int
    last: str | None
    opened: int
    already_open: int
    failed: dict[str, str] = {}  # invoice id -> why it could not be opened


# -- internal notifications (activities/internal_mail.py) ------------------------------------

NOTIFY_TEAM = "notify_team"


class NotifyRequest(_Model):
    as_of: date | None = None  # None: the UTC date of ``now``; else the state at the end of that day
    now: datetime  # the workflow's time (workflow.now()) or the command's clock


class NotifyOutcome(_Model):
    kind: str
    item: str
    recipient: str
    email: str
    day: date
    subject: str
    message_id: str
    status: str  # sent | already_sent | rejected | already_rejected | failed
    error: str = ""


class NotifyResult(_Model):
    as_of: date
    sent: int
    already_sent: int
    failed: int
    outcomes: list[NotifyOutcome] = []
    skipped: list[str] = []  # who should have heard but has no e-mail address


# -- one message per customer -----------------------------------------------------------------

ENQUEUE_NOTICE = "enqueue_notice"
SEND_DIGEST = "send_digest"
MAILBOX_WORKFLOW = "CustomerMailbox"
NOTICE_OUTCOME_SIGNAL = "notice_outcome"


def mailbox_workflow_id(customer_id: str, prefix: str = "") -> str:
    return f"{prefix}mailbox-{customer_id}"


class QueuedNotice(_Model):
    notice: NoticeRequest
    reply_to: str  # the case workflow that waits for the outcome


class MailboxInput(_Model):
    customer_id: str
    gather: timedelta
    give_up_after: timedelta
    pending: list[QueuedNotice] = []
    delivered: dict[str, NoticeResult] = {}  # carried over by continue-as-new


class EnqueueRequest(_Model):
    mailbox_id: str
    task_queue: str
    start: MailboxInput
    queued: QueuedNotice


class DigestRequest(_Model):
    batch_id: str
    notices: list[NoticeRequest]


class NoticeOutcome(_Model):
    seq: int
    result: NoticeResult


# -- credit insurance ---------------------------------------------------------------------------

NOTIFY_INSURER = "notify_insurer"


class InsurerNoticeRequest(_Model):
    """Notice to the insurer that an insured invoice is overdue."""

    case_id: UUID
    invoice_id: str
    customer: Customer
    insurer_name: str
    insurer_email: str
    policy_number: str
    amount_due: Money
    original_amount: Money
    due_date: date
    issue_date: date
    notify_by: date


# -- reporting a default to a factor (docs/FINANCING.md) ----------------------------------------

NOTIFY_FACTOR = "notify_factor"


class FactorNoticeRequest(_Model):
    """The default of an invoice assigned with recourse, reported to the factor's contact."""

    case_id: UUID
    invoice_id: str
    customer: Customer
    assignment_id: str
    factor_name: str
    factor_email: str
    assigned: Money
    trigger: str
    amount: Money
    due_date: date
    issue_date: date
