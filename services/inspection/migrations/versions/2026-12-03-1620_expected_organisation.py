"""inspection: the read model knows each declaration's organisation (traders read their own gate events)

Revision ID: i0002_organisation
Revises: i0001
Create Date: 2026-12-03 16:20
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "i0002_organisation"
down_revision = "i0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Rows written before stay NULL until the declaration's next event says (its trader sees no gate events till
    # then; customs staff see them all as before).
    with op.batch_alter_table("gate_expected_declarations") as batch:
        batch.add_column(sa.Column("organisation_id", sa.String(36), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("gate_expected_declarations") as batch:
        batch.drop_column("organisation_id")
