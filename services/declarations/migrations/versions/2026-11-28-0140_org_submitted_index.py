"""declarations: a covering index for the risk engine's count of an organisation's earlier declarations

Revision ID: d0003
Revises: d0002
Create Date: 2026-11-28 01:40
"""

from __future__ import annotations

from alembic import op

revision = "d0003"
down_revision = "d0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # PostgreSQL builds it without blocking filings (CONCURRENTLY cannot run inside a transaction).
    with op.get_context().autocommit_block():
        op.create_index(
            "ix_declarations_org_submitted",
            "declarations",
            ["organisation_id", "submitted_at", "id"],
            postgresql_concurrently=True,
        )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index("ix_declarations_org_submitted", table_name="declarations", postgresql_concurrently=True)
