"""Unanswered questions linked to who asked (for /mydata and /delete); approvals for actions
that need a second owner

Revision ID: 0007_trust_second_round
Revises: 0006_organisers_broadcasts
Create Date: 2026-12-03 16:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_trust_second_round"
down_revision: str | None = "0006_organisers_broadcasts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("unanswered_questions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("user_id", sa.Integer(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_unanswered_questions_user_id"), ["user_id"], unique=False
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_unanswered_questions_user_id_users"),
            "users",
            ["user_id"],
            ["id"],
            ondelete="CASCADE",
        )
    op.create_table(
        "approvals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("asked_by", sa.String(length=80), nullable=False),
        sa.Column("asked_at", WHEN, nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("decided_by", sa.String(length=80), nullable=True),
        sa.Column("decided_at", WHEN, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_approvals")),
    )


def downgrade() -> None:
    op.drop_table("approvals")
    with op.batch_alter_table("unanswered_questions", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_unanswered_questions_user_id_users"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_unanswered_questions_user_id"))
        batch_op.drop_column("user_id")
