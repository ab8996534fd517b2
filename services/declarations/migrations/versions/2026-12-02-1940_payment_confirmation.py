"""declarations: payments are claimed, then confirmed or rejected by the treasury

Revision ID: d0005
Revises: d0004s
Create Date: 2026-12-02 19:40
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from services.kernel.database import UTCDateTime

revision = "d0005"
down_revision = "d0004s"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Payments recorded before this change already released goods: they stand as confirmed.
    with op.batch_alter_table("declaration_payments") as batch:
        batch.add_column(sa.Column("status", sa.String(12), nullable=False, server_default="confirmed"))
        batch.add_column(sa.Column("decided_by", sa.String(64), nullable=True))
        batch.add_column(sa.Column("decided_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("decision_reason", sa.Text(), nullable=True))
    # No default from here on: the service always says which state a payment starts in.
    with op.batch_alter_table("declaration_payments") as batch:
        batch.alter_column("status", server_default=None)
        batch.create_index("ix_declaration_payments_status_paid", ["status", "paid_at"])


def downgrade() -> None:
    with op.batch_alter_table("declaration_payments") as batch:
        batch.drop_index("ix_declaration_payments_status_paid")
        for column in ("decision_reason", "decided_at", "decided_by", "status"):
            batch.drop_column(column)
