"""Replies kept until they are sent: a crash between the commit and the send loses none

Revision ID: 0008_pending_replies
Revises: 0007_trust_second_round
Create Date: 2026-12-03 16:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_pending_replies"
down_revision: str | None = "0007_trust_second_round"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pending_replies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("update_key", sa.String(length=64), nullable=False),
        sa.Column("replies", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"],
            name=op.f("fk_pending_replies_user_id_users"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pending_replies")),
        sa.UniqueConstraint("user_id", "update_key", name="uq_pending_replies_user_id"),
    )  # fmt: skip
    op.create_index(
        op.f("ix_pending_replies_created_at"), "pending_replies", ["created_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_pending_replies_created_at"), table_name="pending_replies")
    op.drop_table("pending_replies")
