"""provenance: witness cosignatures of checkpoints (issue 13 §1)

Revision ID: p0003_cosignatures
Revises: p0001
Create Date: 2026-12-03 09:40
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from services.kernel.database import UTCDateTime

revision = "p0003_cosignatures"
down_revision = "p0002_no_replace"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "provenance_cosignatures",
        sa.Column("checkpoint_size", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("witness", sa.String(400), nullable=False),
        sa.Column("line", sa.Text(), nullable=False),
        sa.Column("cosigned_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("checkpoint_size", "witness", name="pk_provenance_cosignatures"),
    )


def downgrade() -> None:
    op.drop_table("provenance_cosignatures")
