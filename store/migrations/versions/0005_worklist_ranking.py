"""Worklist ranking from an index: each case summary row stores the time-free part of its
priority (``ranking_base``) and its due date as a day number, so the worklist orders open
cases by ``ranking_base x max(today - due_day, 1)`` read from one partial index instead of
working out amounts, currency scales and risk weights for every open case
(docs/PERFORMANCE.md). The aging report's sums of open balances read the same index.
Existing rows are filled in from their own columns.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from decimal import Decimal

import sqlalchemy as sa
from alembic import op
from babel.numbers import get_currency_precision

from domain.priority import amount_at_risk, day_number, ranking_base

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

BATCH = 5000


def _fill(conn) -> None:
    summary = sa.table("case_summary", sa.column("case_id"), sa.column("currency"), sa.column("balance_minor"),
                       sa.column("disputed_minor"), sa.column("risk_grade"), sa.column("due_date", sa.Date),
                       sa.column("due_day"), sa.column("ranking_base"))
    rows = conn.execute(sa.select(summary.c.case_id, summary.c.currency, summary.c.balance_minor,
                                  summary.c.disputed_minor, summary.c.risk_grade, summary.c.due_date)).all()
    change = (sa.update(summary).where(summary.c.case_id == sa.bindparam("key"))
              .values(due_day=sa.bindparam("day"), ranking_base=sa.bindparam("base")))
    batch = []
    for case_id, currency, balance, disputed, grade, due in rows:
        unit = Decimal(10) ** get_currency_precision(currency)
        base = ranking_base(amount_at_risk(Decimal(balance) / unit, Decimal(disputed) / unit), grade)
        batch.append({"key": case_id, "day": day_number(due), "base": base})
        if len(batch) >= BATCH:
            conn.execute(change, batch)
            batch = []
    if batch:
        conn.execute(change, batch)


def upgrade() -> None:
    with op.batch_alter_table("case_summary") as table:
        table.add_column(sa.Column("due_day", sa.Integer(), nullable=False, server_default="0"))
        table.add_column(sa.Column("ranking_base", sa.BigInteger(), nullable=False, server_default="0"))
    _fill(op.get_bind())
    op.create_index("ix_case_summary_rank", "case_summary",
                    ["ranking_base", "due_day", "next_action_at", "invoice_id", "case_id", "currency", "balance_minor"],
                    sqlite_where=sa.text("closed_at IS NULL"), postgresql_where=sa.text("closed_at IS NULL"))
    op.execute("ANALYZE case_summary")  # every row was rewritten: the planner's statistics are stale


def downgrade() -> None:
    op.drop_index("ix_case_summary_rank", table_name="case_summary")
    with op.batch_alter_table("case_summary") as table:
        table.drop_column("ranking_base")
        table.drop_column("due_day")
