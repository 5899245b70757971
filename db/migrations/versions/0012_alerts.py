"""Alerts sent, shared by every process: a spike is told once an hour, not once per process

Revision ID: 0012_alerts
Revises: 0011_outbox_pieces_sent
Create Date: 2026-12-03 17:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_alerts"
down_revision: str | None = "0011_outbox_pieces_sent"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
        sa.UniqueConstraint("kind", "key", name="uq_alerts_kind"),
    )


def downgrade() -> None:
    op.drop_table("alerts")
