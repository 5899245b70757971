"""Outbox indexes for the hot queries: the claim (broadcast, status, then id order) and a
person's erasure (user_id)

Revision ID: 0010_outbox_indexes
Revises: 0009_signer_numbers
Create Date: 2026-12-03 17:10:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010_outbox_indexes"
down_revision: str | None = "0009_signer_numbers"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_broadcast_status")
        batch_op.create_index(
            "ix_outbox_broadcast_status_id", ["broadcast_id", "status", "id"], unique=False
        )
        batch_op.create_index("ix_outbox_user_id", ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_user_id")
        batch_op.drop_index("ix_outbox_broadcast_status_id")
        batch_op.create_index(
            "ix_outbox_broadcast_status", ["broadcast_id", "status"], unique=False
        )
