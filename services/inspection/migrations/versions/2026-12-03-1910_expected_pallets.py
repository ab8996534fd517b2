"""inspection: the pallets (SSCC) each declaration draws on, from `trace.checked` (pallet QR codes at the gate)

Revision ID: i0003_pallets
Revises: i0003_hold_resolutions
Create Date: 2026-12-03 19:10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "i0003_pallets"
down_revision = "i0003_hold_resolutions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gate_expected_pallets",
        sa.Column("sscc", sa.String(18), nullable=False),
        sa.Column("declaration_id", sa.String(36), nullable=False),
        sa.PrimaryKeyConstraint("sscc", "declaration_id", name="pk_gate_expected_pallets"),
    )
    op.create_index("ix_gate_expected_pallets_declaration_id", "gate_expected_pallets", ["declaration_id"])


def downgrade() -> None:
    op.drop_index("ix_gate_expected_pallets_declaration_id", table_name="gate_expected_pallets")
    op.drop_table("gate_expected_pallets")
