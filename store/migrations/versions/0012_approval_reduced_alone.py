"""What a case had already been reduced by alone when a reduction was asked of a second person
(it counted against the single-person threshold): shown beside the amount in the approvals inbox.
Approvals asked before this revision have none recorded and show none.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("approvals") as batch:
        batch.add_column(sa.Column("reduced_alone_minor", sa.BigInteger, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("approvals") as batch:
        batch.drop_column("reduced_alone_minor")
