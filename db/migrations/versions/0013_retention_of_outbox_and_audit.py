"""A finished broadcast keeps its figures when retention purges its outbox rows

Revision ID: 0013_outbox_retention
Revises: 0012_alerts
Create Date: 2026-12-03 17:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_outbox_retention"
down_revision: str | None = "0012_alerts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("broadcasts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("figures", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("broadcasts", schema=None) as batch_op:
        batch_op.drop_column("figures")
