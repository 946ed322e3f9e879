"""Every table the engine owns. Amounts are integer minor units plus a currency.

The event table itself is defined by eventsourcing-sqlalchemy's recorder
(see ``store.event_store``); the migration creates it with the same shape.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    text,
)

from store.db import UTCDateTime

EVENTS_TABLE = "case_events"

metadata = MetaData()

# Unique event ids (the recorder keeps them inside each record's JSON state).
event_ids = Table(
    "case_event_ids",
    metadata,
    Column("event_id", String(36), primary_key=True),
    Column("stream_id", String(36), nullable=False),
    Column("version", Integer, nullable=False),
)

# Tamper evidence (store/chain.py, migration 0006): one link per event row, in position order.
event_chain = Table(
    "case_event_chain",
    metadata,
    Column("position", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=False),
    Column("previous", BigInteger, nullable=False),  # position of the event before it in the chain (0: none)
    Column("stream_id", String(36), nullable=False),
    Column("version", Integer, nullable=False),
    Column("hash", String(64), nullable=False),  # SHA-256 hex over the previous hash and this row
)

# Policy texts as pinned by cases: a case can always read the exact rules it runs under.
policies = Table(
    "policies",
    metadata,
    Column("version", String(64), primary_key=True),
    Column("digest", String(64), nullable=False),
    Column("content", Text, nullable=False),
    Column("recorded_at", UTCDateTime, nullable=False),
)

# -- ledger -------------------------------------------------------------------------

customers = Table(
    "customers",
    metadata,
    Column("customer_id", String(100), primary_key=True),
    Column("name", String(300), nullable=False),
    Column("email", String(320), nullable=False),
    Column("country", String(2), nullable=False),
    Column("language", String(20), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("risk_grade", String(1), nullable=False),
)

invoices = Table(
    "invoices",
    metadata,
    Column("invoice_id", String(100), primary_key=True),
    Column("customer_id", String(100), ForeignKey("customers.customer_id"), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("paid_minor", BigInteger, nullable=False, default=0),
    Column("issue_date", Date, nullable=False),
    Column("due_date", Date, nullable=False),
    Column("imported_at", UTCDateTime, nullable=False),
    Index("ix_invoices_due", "due_date"),
    Index("ix_invoices_customer", "customer_id"),
)

# Payments recorded on the ledger: those that arrived with no case open, and
# (later) imported bank payments. Payments to a case are events of that case.
payments = Table(
    "payments",
    metadata,
    Column("payment_id", String(100), primary_key=True),
    Column("invoice_id", String(100), ForeignKey("invoices.invoice_id"), nullable=True),
    Column("currency", String(3), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("received_on", Date, nullable=False),
    Column("payer", String(300), nullable=False, default=""),
    Column("reference", String(500), nullable=False, default=""),
    Column("status", String(20), nullable=False),  # applied | unmatched | reversed | recovered | recovery_reversed
    Column("recorded_at", UTCDateTime, nullable=False),
    Column("case_id", String(36), nullable=True),  # set when applied to a case
    Column("matched_by", String(20), nullable=True),  # direct | reference | amount | sum | manual
    Column("note", String(500), nullable=True),  # why unmatched, or the reversal reason
    Column("reversed_at", UTCDateTime, nullable=True),
    Index("ix_payments_status", "status", "received_on"),
    Index("ix_payments_invoice", "invoice_id"),  # a customer's payments, by its invoices (migration 0015)
)

# -- bank statement entries (camt.053/054, MT940): what each booked entry was and became ---------
# One row per entry of an imported statement: its payment id (a receipt's row in ``payments``),
# the payer's IBAN (a known IBAN names the customer), the end-to-end id (a reversal names its
# original by it) and, for a reversal, the payment it undid. Written by the import, never by a
# projection: a rebuild leaves it alone.

bank_entries = Table(
    "bank_entries",
    metadata,
    Column("payment_id", String(100), primary_key=True),
    Column("statement_id", String(200), nullable=False),
    Column("entry_ref", String(200), nullable=False),
    Column("format", String(20), nullable=False),
    Column("kind", String(20), nullable=False),  # receipt | reversal | debit
    Column("payer_iban", String(34), nullable=True),
    Column("end_to_end_id", String(100), nullable=True),
    Column("related_refs", String(500), nullable=False, default=""),
    Column("reverses", String(100), nullable=True),  # the payment a reversal undid
    Column("recorded_at", UTCDateTime, nullable=False),
    Index("ix_bank_entries_iban", "payer_iban"),
    Index("ix_bank_entries_e2e", "end_to_end_id"),
)


# -- delivery log: makes notice sending idempotent across retries and crashes ----------

notice_deliveries = Table(
    "notice_deliveries",
    metadata,
    Column("message_id", String(300), primary_key=True),
    Column("case_id", String(36), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("recipient", String(320), nullable=False),
    # sending (claimed) | handing (DATA begun: intent recorded, outcome not yet known) | sent | rejected
    # | withdrawn | unknown (an intent whose outcome never came back: presumed delivered, not re-sent)
    Column("status", String(20), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text, nullable=True),
    Column("first_attempt_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=True),
    Column("handed_at", UTCDateTime, nullable=True),  # when the last attempt began DATA (the delivery intent)
    Index("ix_notice_case", "case_id", "seq"),
)

# -- sent log of internal notifications (activities/internal_mail.py, migration 0007) --------
# One row per (kind, item, recipient, day): claimed before sending, marked sent once the SMTP
# server accepts; a retry or a second run finds it and sends nothing. Kept as the audit record
# of who on the team was told what, and when (`notify log`).

internal_notifications = Table(
    "internal_notifications",
    metadata,
    Column("kind", String(20), primary_key=True),  # waiting | lapsed | digest
    Column("item", String(200), primary_key=True),  # approval/escalation id (@tier), or the collector
    Column("recipient", String(100), primary_key=True),  # user name
    Column("day", Date, primary_key=True),
    Column("email", String(320), nullable=False),
    Column("role", String(20), nullable=False),
    Column("case_ids", Text, nullable=False),  # comma-separated: the cases the message is about
    Column("subject", String(500), nullable=False),
    Column("message_id", String(300), nullable=False),
    Column("status", String(20), nullable=False),  # sending | sent | rejected
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text, nullable=True),
    Column("first_attempt_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime, nullable=True),
    Index("ix_internal_notifications_day", "day", "kind"),
)

# -- projections: derived from events only; `projections rebuild` recreates them -------

case_summary = Table(
    "case_summary",
    metadata,
    Column("case_id", String(36), primary_key=True),
    Column("invoice_id", String(100), nullable=False, unique=True),
    Column("customer_id", String(100), nullable=False),
    Column("customer_name", String(300), nullable=False),
    Column("status", String(20), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("original_minor", BigInteger, nullable=False),
    Column("balance_minor", BigInteger, nullable=False),
    Column("disputed_minor", BigInteger, nullable=False),
    Column("credit_minor", BigInteger, nullable=False),  # overpayments left with the customer
    Column("credit_hold", Boolean, nullable=False),
    Column("level", Integer, nullable=False),
    Column("risk_grade", String(1), nullable=False),
    Column("due_date", Date, nullable=False),
    Column("due_day", Integer, nullable=False),  # due_date as days since 1970-01-01 (migration 0005)
    Column("ranking_base", BigInteger, nullable=False),  # domain.priority.ranking_base
    Column("next_action", String(100), nullable=True),
    Column("next_action_at", UTCDateTime, nullable=True),
    Column("waiting_for", String(100), nullable=False),
    Column("assignee", String(100), nullable=True),
    Column("contact_problem", Boolean, nullable=False),
    Column("policy_version", String(64), nullable=False),
    Column("opened_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("closed_at", UTCDateTime, nullable=True),
    Column("version", Integer, nullable=False),
    Column("state", Text, nullable=False),  # the folded case state, JSON
    # invoice, or advance: an overdue advance request, in no receivable (migration 0011)
    Column("kind", String(10), nullable=False, server_default="invoice"),
    Index("ix_case_summary_status", "status", "next_action_at"),
    Index("ix_case_summary_customer", "customer_id", "currency"),
    # open cases only (migration 0004): the worklist's ranking and the aging report read this
    Index("ix_case_summary_open", "assignee", "status", "risk_grade", "currency", "balance_minor", "disputed_minor",
          "due_date", "next_action_at", "invoice_id", "case_id",
          sqlite_where=text("closed_at IS NULL"), postgresql_where=text("closed_at IS NULL")),
    # open cases in the worklist's order of work, with every column the aging report reads, so
    # that it reads this index alone (migrations 0005, 0013)
    Index("ix_case_summary_rank", "ranking_base", "due_day", "next_action_at", "invoice_id", "case_id", "currency",
          "balance_minor", "kind", "closed_at",
          sqlite_where=text("closed_at IS NULL"), postgresql_where=text("closed_at IS NULL")),
)

approvals = Table(
    "approvals",
    metadata,
    Column("approval_id", String(64), primary_key=True),
    Column("case_id", String(36), nullable=False),
    Column("invoice_id", String(100), nullable=False),
    Column("customer_name", String(300), nullable=False),
    Column("kind", String(20), nullable=False),  # write_off | plan | escalation
    Column("currency", String(3), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("reason", String(500), nullable=False),
    Column("requested_by", String(100), nullable=False),
    Column("requested_at", UTCDateTime, nullable=False),
    Column("tier", String(20), nullable=False),
    Column("sla_due_at", UTCDateTime, nullable=True),
    Column("status", String(20), nullable=False),
    Column("decided_by", String(100), nullable=True),
    Column("decided_at", UTCDateTime, nullable=True),
    Column("decision", String(500), nullable=True),
    Column("reduced_alone_minor", BigInteger, nullable=True),  # a reduction's: reduced alone before it
    Index("ix_approvals_status", "status", "requested_at"),
    Index("ix_approvals_page", "status", "requested_at", "approval_id"),
    Index("ix_approvals_case", "case_id"),
)

customer_exposure = Table(
    "customer_exposure",
    metadata,
    Column("customer_id", String(100), primary_key=True),
    Column("currency", String(3), primary_key=True),
    Column("customer_name", String(300), nullable=False),
    Column("open_cases", Integer, nullable=False),
    Column("open_balance_minor", BigInteger, nullable=False),
    Column("disputed_minor", BigInteger, nullable=False),
    Column("credit_minor", BigInteger, nullable=False),
    Column("on_credit_hold", Boolean, nullable=False),
)

# -- customers: risk grade, credit limit, credit hold (projections of customer streams) ---

customer_risk = Table(
    "customer_risk",
    metadata,
    Column("customer_id", String(100), primary_key=True),
    Column("grade", String(1), nullable=True),  # None: not graded by the scorecard yet
    Column("previous_grade", String(1), nullable=True),
    Column("score", String(20), nullable=True),
    Column("graded_at", UTCDateTime, nullable=True),
    Column("credit_limit_minor", BigInteger, nullable=True),
    Column("credit_limit_currency", String(3), nullable=True),
    Column("on_hold", Boolean, nullable=False),
    Column("hold_reason", String(500), nullable=True),
    Column("hold_since", UTCDateTime, nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("version", Integer, nullable=False),
    Column("state", Text, nullable=False),  # the folded customer state, JSON
    Index("ix_customer_risk_graded", "graded_at"),
)

# Credit holds placed and released, for the ERP to read and acknowledge.
credit_hold_outbox = Table(
    "credit_hold_outbox",
    metadata,
    Column("outbox_id", String(36), primary_key=True),  # the event that placed or released the hold
    Column("customer_id", String(100), nullable=False),
    Column("action", String(10), nullable=False),  # hold | release
    Column("hold_id", String(64), nullable=False),
    Column("reason", String(500), nullable=False),
    Column("occurred_at", UTCDateTime, nullable=False),
    Column("acked_by", String(100), nullable=True),
    Column("acked_at", UTCDateTime, nullable=True),
    Index("ix_outbox_pending", "acked_at", "occurred_at"),
)

# -- subscribers of the event feed: the general outbox (app/subscribers.py, migration 0010) ----
# Configuration, not a projection: a rebuild leaves it alone. ``position`` is the last position
# the subscriber acknowledged (2xx); ``attempts``/``next_attempt_at``/``last_error`` the retries.

subscribers = Table(
    "subscribers",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("event_types", Text, nullable=False),  # comma-separated type names
    Column("url", String(2000), nullable=False),
    Column("position", BigInteger, nullable=False, server_default=text("0")),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("next_attempt_at", UTCDateTime, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("paused", Boolean, nullable=False, server_default=text("false")),
    Column("delivered", BigInteger, nullable=False, server_default=text("0")),
    Column("last_delivery_at", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
)

# -- credit insurance (ledger) -----------------------------------------------------------

insurer_policies = Table(
    "insurer_policies",
    metadata,
    Column("policy_id", String(64), primary_key=True),
    Column("insurer_id", String(64), nullable=False),
    Column("insurer_name", String(300), nullable=False),
    Column("insurer_email", String(320), nullable=False),
    Column("notify_within", String(32), nullable=False),  # ISO 8601 durations
    Column("max_extension", String(32), nullable=False),
    Column("claim_waiting", String(32), nullable=False),
    Column("indemnity_percent", String(10), nullable=False),
    Column("recorded_at", UTCDateTime, nullable=False),
)

invoice_insurance = Table(
    "invoice_insurance",
    metadata,
    Column("invoice_id", String(100), ForeignKey("invoices.invoice_id"), primary_key=True),
    Column("policy_id", String(64), ForeignKey("insurer_policies.policy_id"), nullable=False),
    Column("recorded_at", UTCDateTime, nullable=False),
)

PROJECTION_TABLES = (case_summary, approvals, customer_exposure, customer_risk, credit_hold_outbox)
