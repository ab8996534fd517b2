"""traceability: trace claims (what each declaration's goods lines draw on packed lots)

Revision ID: t0002_trace_claims
Revises: tb001
Create Date: 2026-12-03 19:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from services.kernel.database import UTCDateTime

revision = "t0002_trace_claims"
down_revision = "tb001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "trace_claims",
        sa.Column("declaration_id", sa.String(36), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("sscc", sa.String(18), nullable=False),
        sa.Column("gtin", sa.String(14), nullable=False),
        sa.Column("lot", sa.String(20), nullable=False),
        sa.Column("kg", sa.Numeric(16, 3), nullable=False),
        sa.Column("number", sa.String(32), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("claimed_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("declaration_id", "line", "sscc", "gtin", "lot", name="pk_trace_claims"),
    )
    op.create_index("ix_trace_claims_unit", "trace_claims", ["sscc", "gtin", "lot"])


def downgrade() -> None:
    op.drop_index("ix_trace_claims_unit", table_name="trace_claims")
    op.drop_table("trace_claims")
