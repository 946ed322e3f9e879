"""Customer risk and credit holds (projections of customer streams), credit insurance.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

from store.db import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "customer_risk",
        sa.Column("customer_id", sa.String(100), primary_key=True),
        sa.Column("grade", sa.String(1), nullable=True),
        sa.Column("previous_grade", sa.String(1), nullable=True),
        sa.Column("score", sa.String(20), nullable=True),
        sa.Column("graded_at", UTCDateTime(), nullable=True),
        sa.Column("credit_limit_minor", sa.BigInteger(), nullable=True),
        sa.Column("credit_limit_currency", sa.String(3), nullable=True),
        sa.Column("on_hold", sa.Boolean(), nullable=False),
        sa.Column("hold_reason", sa.String(500), nullable=True),
        sa.Column("hold_since", UTCDateTime(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
    )
    op.create_index("ix_customer_risk_graded", "customer_risk", ["graded_at"])
    op.create_table(
        "credit_hold_outbox",
        sa.Column("outbox_id", sa.String(36), primary_key=True),
        sa.Column("customer_id", sa.String(100), nullable=False),
        sa.Column("action", sa.String(10), nullable=False),
        sa.Column("hold_id", sa.String(64), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("occurred_at", UTCDateTime(), nullable=False),
        sa.Column("acked_by", sa.String(100), nullable=True),
        sa.Column("acked_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_outbox_pending", "credit_hold_outbox", ["acked_at", "occurred_at"])
    op.create_table(
        "insurer_policies",
        sa.Column("policy_id", sa.String(64), primary_key=True),
        sa.Column("insurer_id", sa.String(64), nullable=False),
        sa.Column("insurer_name", sa.String(300), nullable=False),
        sa.Column("insurer_email", sa.String(320), nullable=False),
        sa.Column("notify_within", sa.String(32), nullable=False),
        sa.Column("max_extension", sa.String(32), nullable=False),
        sa.Column("claim_waiting", sa.String(32), nullable=False),
        sa.Column("indemnity_percent", sa.String(10), nullable=False),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "invoice_insurance",
        sa.Column("invoice_id", sa.String(100), sa.ForeignKey("invoices.invoice_id"), primary_key=True),
        sa.Column("policy_id", sa.String(64), sa.ForeignKey("insurer_policies.policy_id"), nullable=False),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("invoice_insurance")
    op.drop_table("insurer_policies")
    op.drop_index("ix_outbox_pending", "credit_hold_outbox")
    op.drop_table("credit_hold_outbox")
    op.drop_index("ix_customer_risk_graded", "customer_risk")
    op.drop_table("customer_risk")
