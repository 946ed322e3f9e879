"""Payment matching: where each payment went, how it was matched, reversals.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

from store.db import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("payments") as batch:
        batch.add_column(sa.Column("case_id", sa.String(36), nullable=True))
        batch.add_column(sa.Column("matched_by", sa.String(20), nullable=True))
        batch.add_column(sa.Column("note", sa.String(500), nullable=True))
        batch.add_column(sa.Column("reversed_at", UTCDateTime(), nullable=True))
    op.create_index("ix_payments_status", "payments", ["status", "received_on"])


def downgrade() -> None:
    op.drop_index("ix_payments_status", "payments")
    with op.batch_alter_table("payments") as batch:
        for column in ("reversed_at", "note", "matched_by", "case_id"):
            batch.drop_column(column)
