"""Subscribers of the event feed: the general outbox (docs/EVENTS.md, "Pushed to you").

One row per subscriber: the event types it wants, the webhook it is pushed to, the last
position it acknowledged (a 2xx answer), and its retry state (attempts, next attempt, last
error). Adding, pausing, resuming and removing one are administration events
(``subscriber:NAME``); the position and retry state are the dispatcher's bookkeeping.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

from store.db import UTCDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "subscribers",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("event_types", sa.Text(), nullable=False),
        sa.Column("url", sa.String(2000), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("paused", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("delivered", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("last_delivery_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("subscribers")
