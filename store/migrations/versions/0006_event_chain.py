"""Tamper evidence: a hash chain over the event rows (store/chain.py, docs/CONTROLS.md).

Creates ``case_event_chain`` and links every existing event in position order, so a
database that already holds events is verifiable from its first event. On PostgreSQL the
events table is locked meanwhile (EXCLUSIVE, as an append takes it): no append can slip in
between the last linked event and the commit.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy_utils.types.uuid import UUIDType

from store.chain import chain_existing

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "case_event_chain",
        sa.Column("position", ID, primary_key=True, autoincrement=False),
        sa.Column("previous", sa.BigInteger(), nullable=False),
        sa.Column("stream_id", sa.String(36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    conn = op.get_bind()
    if conn.dialect.name == "postgresql":
        op.execute("LOCK TABLE case_events IN EXCLUSIVE MODE")
    events = sa.table("case_events", sa.column("id", ID), sa.column("originator_id", UUIDType()),
                      sa.column("originator_version", ID), sa.column("topic", sa.Text()),
                      sa.column("state", sa.LargeBinary()))
    chain_existing(conn, events)


def downgrade() -> None:
    op.drop_table("case_event_chain")
