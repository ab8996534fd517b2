"""exchange: ACFTA Form E certificates issued here and received from the partner (the message types' table)

Revision ID: em001
Revises: e0001
Create Date: 2026-12-03 19:10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from services.kernel.database import UTCDateTime

revision = "em001"
down_revision = "e0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "exchange_origin_certificates",
        sa.Column("number", sa.String(32), nullable=False),
        sa.Column("direction", sa.String(8), nullable=False),
        sa.Column("partner", sa.String(32), nullable=True),
        sa.Column("certificate", sa.JSON(), nullable=False),
        sa.Column("issued_on", sa.Date(), nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=False),
        sa.Column("message_id", sa.String(36), nullable=True),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("number", "direction", name="pk_exchange_origin_certificates"),
    )


def downgrade() -> None:
    op.drop_table("exchange_origin_certificates")
