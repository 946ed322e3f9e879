"""Sent log of internal notifications (activities/internal_mail.py, docs/CONTROLS.md):
one row per (kind, item, recipient, day), so that a retry or a second run of `notify run`
(or of the daily sweep) e-mails nobody twice, and an auditor can read who was told what.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

from store.db import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "internal_notifications",
        sa.Column("kind", sa.String(20), primary_key=True),
        sa.Column("item", sa.String(200), primary_key=True),
        sa.Column("recipient", sa.String(100), primary_key=True),
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("case_ids", sa.Text(), nullable=False),
        sa.Column("subject", sa.String(500), nullable=False),
        sa.Column("message_id", sa.String(300), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("first_attempt_at", UTCDateTime(), nullable=False),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_internal_notifications_day", "internal_notifications", ["day", "kind"])


def downgrade() -> None:
    op.drop_index("ix_internal_notifications_day", "internal_notifications")
    op.drop_table("internal_notifications")
