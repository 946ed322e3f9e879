"""Bank statement entries (camt.053/054, MT940): payer IBAN, end-to-end id, reversals.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

from store.db import UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bank_entries",
        sa.Column("payment_id", sa.String(100), primary_key=True),
        sa.Column("statement_id", sa.String(200), nullable=False),
        sa.Column("entry_ref", sa.String(200), nullable=False),
        sa.Column("format", sa.String(20), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("payer_iban", sa.String(34), nullable=True),
        sa.Column("end_to_end_id", sa.String(100), nullable=True),
        sa.Column("related_refs", sa.String(500), nullable=False, server_default=""),
        sa.Column("reverses", sa.String(100), nullable=True),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_bank_entries_iban", "bank_entries", ["payer_iban"])
    op.create_index("ix_bank_entries_e2e", "bank_entries", ["end_to_end_id"])


def downgrade() -> None:
    op.drop_table("bank_entries")
