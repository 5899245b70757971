"""Admins can block a user and set signatures aside (invalidated, kept for review)

Revision ID: 0004_block_and_invalidate
Revises: 0003_unanswered_questions
Create Date: 2026-11-23 13:55:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_block_and_invalidate"
down_revision: str | None = "0003_unanswered_questions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("blocked", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("signatures", schema=None) as batch_op:
        batch_op.add_column(sa.Column("invalidated_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("signatures", schema=None) as batch_op:
        batch_op.drop_column("invalidated_at")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("blocked")
