"""Read side at scale: a partial index of open cases for the worklist and the aging report.

The worklist ranks open cases by priority and the aging report sums their balances; with
this index both read a few megabytes of index entries instead of every case row with its
state JSON (docs/PERFORMANCE.md). Columns: the worklist's filters first, then what the
priority and its tie-breaks are computed from.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

OPEN_CASE_COLUMNS = ["assignee", "status", "risk_grade", "currency", "balance_minor", "disputed_minor", "due_date",
                     "next_action_at", "invoice_id", "case_id"]


def upgrade() -> None:
    op.create_index("ix_case_summary_open", "case_summary", OPEN_CASE_COLUMNS,
                    sqlite_where=sa.text("closed_at IS NULL"), postgresql_where=sa.text("closed_at IS NULL"))
    op.create_index("ix_approvals_page", "approvals", ["status", "requested_at", "approval_id"])


def downgrade() -> None:
    op.drop_index("ix_approvals_page", table_name="approvals")
    op.drop_index("ix_case_summary_open", table_name="case_summary")
