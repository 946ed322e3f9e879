"""Payments by invoice: a notice reads its customer's credit when it is sent, which includes the
payments on the customer's invoices without a case (store/customers.py ``_payment_streams``);
without this index each such read scanned every payment row, once per notice of a month-end wave.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07
"""

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_payments_invoice", "payments", ["invoice_id"])


def downgrade() -> None:
    op.drop_index("ix_payments_invoice", table_name="payments")
