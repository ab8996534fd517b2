"""webhooks: each endpoint holds one of its organisation's numbered slots, unique per organisation

Revision ID: w0002_slots
Revises: w0001
Create Date: 2026-12-02 19:30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "w0002_slots"
down_revision = "w0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("webhook_endpoints") as batch:
        batch.add_column(sa.Column("slot", sa.Integer(), nullable=True))
    # Existing endpoints take slots 0, 1, ... in the order they were made (a portable correlated count).
    op.execute(
        "UPDATE webhook_endpoints SET slot = (SELECT COUNT(*) FROM webhook_endpoints AS e "
        "WHERE e.organisation_id = webhook_endpoints.organisation_id AND (e.created_at < webhook_endpoints.created_at "
        "OR (e.created_at = webhook_endpoints.created_at AND e.id < webhook_endpoints.id)))"
    )
    with op.batch_alter_table("webhook_endpoints") as batch:
        batch.alter_column("slot", existing_type=sa.Integer(), nullable=False)
        batch.create_unique_constraint("uq_webhook_endpoints_organisation_slot", ["organisation_id", "slot"])


def downgrade() -> None:
    with op.batch_alter_table("webhook_endpoints") as batch:
        batch.drop_constraint("uq_webhook_endpoints_organisation_slot", type_="unique")
        batch.drop_column("slot")
