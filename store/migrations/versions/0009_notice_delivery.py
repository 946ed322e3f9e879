"""Delivery intent of a notice: ``notice_deliveries.handed_at``.

A notice's row is set to ``handing`` with ``handed_at`` just before the SMTP DATA command
and to ``sent`` (or back to ``sending`` on a definite refusal) once the server answers; a
retry that finds ``handing`` waits for that answer instead of sending again
(activities/notices.py, docs/RELIABILITY.md).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

from store.db import UTCDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("notice_deliveries") as batch:
        batch.add_column(sa.Column("handed_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("notice_deliveries") as batch:
        batch.drop_column("handed_at")
