"""Bursts counted on the person's row (the flood limit across processes), and the number of
signatures counted kept in `counters` (read in O(1) at every signing)

Revision ID: 0014_shared_flood_and_counted
Revises: 0013_outbox_retention
Create Date: 2026-12-03 18:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_shared_flood_and_counted"
down_revision: str | None = "0013_outbox_retention"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("burst_started_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("burst_count", sa.Integer(), server_default="0", nullable=False)
        )
    op.execute(
        "INSERT INTO counters (name, value) "
        "SELECT 'counted', count(*) FROM signatures WHERE invalidated_at IS NULL"
    )


def downgrade() -> None:
    op.execute("DELETE FROM counters WHERE name = 'counted'")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("burst_count")
        batch_op.drop_column("burst_started_at")
