"""Initial schema: event store, ledger, delivery log, projections.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy_utils.types.uuid import UUIDType

from store.db import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    # Same shape as eventsourcing-sqlalchemy's stored-event record (a test checks it).
    op.create_table(
        "case_events",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("originator_id", UUIDType(), nullable=False),
        sa.Column("originator_version", ID, nullable=False),
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("state", sa.LargeBinary(), nullable=False),
    )
    op.create_index("case_events_aggregate_idx", "case_events", ["originator_id", "originator_version"], unique=True)
    op.create_table(
        "case_event_ids",
        sa.Column("event_id", sa.String(36), primary_key=True),
        sa.Column("stream_id", sa.String(36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
    )
    op.create_table(
        "policies",
        sa.Column("version", sa.String(64), primary_key=True),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "customers",
        sa.Column("customer_id", sa.String(100), primary_key=True),
        sa.Column("name", sa.String(300), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("country", sa.String(2), nullable=False),
        sa.Column("language", sa.String(20), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("risk_grade", sa.String(1), nullable=False),
    )
    op.create_table(
        "invoices",
        sa.Column("invoice_id", sa.String(100), primary_key=True),
        sa.Column("customer_id", sa.String(100), sa.ForeignKey("customers.customer_id"), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("paid_minor", sa.BigInteger(), nullable=False),
        sa.Column("issue_date", sa.Date(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("imported_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_invoices_due", "invoices", ["due_date"])
    op.create_index("ix_invoices_customer", "invoices", ["customer_id"])
    op.create_table(
        "payments",
        sa.Column("payment_id", sa.String(100), primary_key=True),
        sa.Column("invoice_id", sa.String(100), sa.ForeignKey("invoices.invoice_id"), nullable=True),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("received_on", sa.Date(), nullable=False),
        sa.Column("payer", sa.String(300), nullable=False),
        sa.Column("reference", sa.String(500), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "notice_deliveries",
        sa.Column("message_id", sa.String(300), primary_key=True),
        sa.Column("case_id", sa.String(36), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("recipient", sa.String(320), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("first_attempt_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_notice_case", "notice_deliveries", ["case_id", "seq"])
    op.create_table(
        "case_summary",
        sa.Column("case_id", sa.String(36), primary_key=True),
        sa.Column("invoice_id", sa.String(100), nullable=False, unique=True),
        sa.Column("customer_id", sa.String(100), nullable=False),
        sa.Column("customer_name", sa.String(300), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("original_minor", sa.BigInteger(), nullable=False),
        sa.Column("balance_minor", sa.BigInteger(), nullable=False),
        sa.Column("disputed_minor", sa.BigInteger(), nullable=False),
        sa.Column("credit_minor", sa.BigInteger(), nullable=False),
        sa.Column("credit_hold", sa.Boolean(), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("risk_grade", sa.String(1), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("next_action", sa.String(100), nullable=True),
        sa.Column("next_action_at", UTCDateTime(), nullable=True),
        sa.Column("waiting_for", sa.String(100), nullable=False),
        sa.Column("assignee", sa.String(100), nullable=True),
        sa.Column("contact_problem", sa.Boolean(), nullable=False),
        sa.Column("policy_version", sa.String(64), nullable=False),
        sa.Column("opened_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("closed_at", UTCDateTime(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
    )
    op.create_index("ix_case_summary_status", "case_summary", ["status", "next_action_at"])
    op.create_index("ix_case_summary_customer", "case_summary", ["customer_id", "currency"])
    op.create_table(
        "approvals",
        sa.Column("approval_id", sa.String(64), primary_key=True),
        sa.Column("case_id", sa.String(36), nullable=False),
        sa.Column("invoice_id", sa.String(100), nullable=False),
        sa.Column("customer_name", sa.String(300), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("requested_by", sa.String(100), nullable=False),
        sa.Column("requested_at", UTCDateTime(), nullable=False),
        sa.Column("tier", sa.String(20), nullable=False),
        sa.Column("sla_due_at", UTCDateTime(), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("decided_by", sa.String(100), nullable=True),
        sa.Column("decided_at", UTCDateTime(), nullable=True),
        sa.Column("decision", sa.String(500), nullable=True),
    )
    op.create_index("ix_approvals_status", "approvals", ["status", "requested_at"])
    op.create_index("ix_approvals_case", "approvals", ["case_id"])
    op.create_table(
        "customer_exposure",
        sa.Column("customer_id", sa.String(100), primary_key=True),
        sa.Column("currency", sa.String(3), primary_key=True),
        sa.Column("customer_name", sa.String(300), nullable=False),
        sa.Column("open_cases", sa.Integer(), nullable=False),
        sa.Column("open_balance_minor", sa.BigInteger(), nullable=False),
        sa.Column("disputed_minor", sa.BigInteger(), nullable=False),
        sa.Column("credit_minor", sa.BigInteger(), nullable=False),
        sa.Column("on_credit_hold", sa.Boolean(), nullable=False),
    )


def downgrade() -> None:
    for table in (
        "customer_exposure", "approvals", "case_summary", "notice_deliveries", "payments",
        "invoices", "customers", "policies", "case_event_ids", "case_events",
    ):
        op.drop_table(table)
