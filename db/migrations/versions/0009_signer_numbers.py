"""Signer numbers given once from a counter: unique across processes, read in O(1)

Revision ID: 0009_signer_numbers
Revises: 0008_pending_replies
Create Date: 2026-12-03 17:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_signer_numbers"
down_revision: str | None = "0008_pending_replies"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "counters",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_counters")),
    )
    with op.batch_alter_table("signatures", schema=None) as batch_op:
        batch_op.add_column(sa.Column("number", sa.Integer(), nullable=True))
    # Signatures made so far are numbered in the order they came (window functions: SQLite
    # 3.25+ and PostgreSQL alike).
    op.execute(
        "UPDATE signatures SET number = (SELECT ranked.position FROM (SELECT id, "
        "ROW_NUMBER() OVER (ORDER BY id) AS position FROM signatures) AS ranked "
        "WHERE ranked.id = signatures.id)"
    )
    op.execute(
        "INSERT INTO counters (name, value) "
        "SELECT 'signers', COALESCE(MAX(number), 0) FROM signatures"
    )
    with op.batch_alter_table("signatures", schema=None) as batch_op:
        batch_op.create_unique_constraint(batch_op.f("uq_signatures_number"), ["number"])


def downgrade() -> None:
    with op.batch_alter_table("signatures", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_signatures_number"), type_="unique")
        batch_op.drop_column("number")
    op.drop_table("counters")
