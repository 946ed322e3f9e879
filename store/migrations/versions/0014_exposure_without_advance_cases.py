"""Recount every customer's exposure from the case summaries: until this revision an append to
an open case of kind advance (a deposit asked before delivery, migration 0011) added it to its
customer's open cases and balance, while a rebuild leaves it out (it is no receivable), so
`report reconcile` found the difference. Appends no longer count it; this puts rows written
before right, with the rebuild's own sums.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

RECOUNT = """
INSERT INTO customer_exposure (customer_id, currency, customer_name, open_cases, open_balance_minor,
                               disputed_minor, credit_minor, on_credit_hold)
SELECT customer_id, currency, MAX(customer_name),
       SUM(CASE WHEN closed_at IS NULL AND kind = 'invoice' THEN 1 ELSE 0 END),
       SUM(CASE WHEN closed_at IS NULL AND kind = 'invoice' THEN balance_minor ELSE 0 END),
       SUM(CASE WHEN closed_at IS NULL AND kind = 'invoice' THEN disputed_minor ELSE 0 END),
       SUM(credit_minor),
       SUM(CASE WHEN credit_hold THEN 1 ELSE 0 END) > 0
FROM case_summary GROUP BY customer_id, currency
"""


def upgrade() -> None:
    op.execute(sa.text("DELETE FROM customer_exposure"))
    op.execute(sa.text(RECOUNT))


def downgrade() -> None:
    pass  # the recount is right under either revision's appends
