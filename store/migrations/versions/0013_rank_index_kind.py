"""The index of open cases in order of work also holds each case's kind (migration 0011) and
its ``closed_at``: the aging report sums open invoice cases, and with either column missing
SQLite (3.40) reads every open case's row, its state JSON included, instead of the index alone
(``closed_at`` is always NULL in this partial index, but SQLite does not count the index's own
condition as covered). docs/PERFORMANCE.md has the report's p95 before and after.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

COLUMNS = ["ranking_base", "due_day", "next_action_at", "invoice_id", "case_id", "currency", "balance_minor"]


def _rank_index(columns: list[str]) -> None:
    op.drop_index("ix_case_summary_rank", table_name="case_summary")
    op.create_index("ix_case_summary_rank", "case_summary", columns,
                    sqlite_where=sa.text("closed_at IS NULL"), postgresql_where=sa.text("closed_at IS NULL"))


def upgrade() -> None:
    _rank_index([*COLUMNS, "kind", "closed_at"])


def downgrade() -> None:
    _rank_index(COLUMNS)
