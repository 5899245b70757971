"""/stats at any size: a checkpoint of the figures, the counter of changes to signatures that
keeps it honest, and who has signed marked on their row

Revision ID: 0015_stats_checkpoint
Revises: 0014_shared_flood_and_counted
Create Date: 2026-12-03 21:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_stats_checkpoint"
down_revision: str | None = "0014_shared_flood_and_counted"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "stats_checkpoints",
        sa.Column("name", sa.String(length=16), nullable=False),
        sa.Column("through_id", sa.Integer(), nullable=False),
        sa.Column("changes", sa.Integer(), nullable=False),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("figures", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_stats_checkpoints")),
    )
    op.execute("INSERT INTO counters (name, value) VALUES ('changes', 0)")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("signed", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.create_index("ix_users_signed_step", ["signed", "step", "agreed_at"])
    op.execute(
        "UPDATE users SET signed = true WHERE id IN "
        "(SELECT user_id FROM signatures WHERE user_id IS NOT NULL)"
    )


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_index("ix_users_signed_step")
        batch_op.drop_column("signed")
    op.execute("DELETE FROM counters WHERE name = 'changes'")
    op.drop_table("stats_checkpoints")
