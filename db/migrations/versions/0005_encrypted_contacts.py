"""Contact details stored encrypted (longer columns) with a keyed fingerprint for comparisons

Revision ID: 0005_encrypted_contacts
Revises: 0004_block_and_invalidate
Create Date: 2026-11-23 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_encrypted_contacts"
down_revision: str | None = "0004_block_and_invalidate"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("signatures", schema=None) as batch_op:
        batch_op.alter_column(
            "phone", existing_type=sa.String(length=20), type_=sa.String(length=512)
        )
        batch_op.alter_column(
            "email", existing_type=sa.String(length=254), type_=sa.String(length=512)
        )
        batch_op.add_column(sa.Column("contact_hash", sa.String(length=64), nullable=True))
        batch_op.create_index("ix_signatures_contact_hash", ["contact_hash"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("signatures", schema=None) as batch_op:
        batch_op.drop_index("ix_signatures_contact_hash")
        batch_op.drop_column("contact_hash")
        batch_op.alter_column(
            "email", existing_type=sa.String(length=512), type_=sa.String(length=254)
        )
        batch_op.alter_column(
            "phone", existing_type=sa.String(length=512), type_=sa.String(length=20)
        )
