"""The kind of a case: ``invoice`` (every case before) or ``advance`` (an overdue advance
request dunned before delivery, issue 16). Reports of receivables, aging, DSO and CEI and the
customer's exposure count only invoice cases (docs/ADVANCES.md).

Revision ID: 0011
Revises: 0009
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("case_summary") as batch:
        batch.add_column(sa.Column("kind", sa.String(10), nullable=False, server_default="invoice"))


def downgrade() -> None:
    with op.batch_alter_table("case_summary") as batch:
        batch.drop_column("kind")
