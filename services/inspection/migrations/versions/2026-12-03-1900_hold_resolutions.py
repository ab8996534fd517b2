"""inspection: officers resolve gate holds (release or escalate, with a reason), once per hold

Revision ID: i0003_hold_resolutions
Revises: i0002_organisation
Create Date: 2026-12-03 19:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from services.kernel.database import UTCDateTime

revision = "i0003_hold_resolutions"
down_revision = "i0002_organisation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gate_hold_resolutions",
        sa.Column("gate_event_id", sa.String(36), nullable=False),
        sa.Column("action", sa.String(8), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("resolved_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["gate_event_id"], ["gate_events.id"], name="fk_gate_hold_resolutions_gate_event_id_gate_events"
        ),
        sa.PrimaryKeyConstraint("gate_event_id", name="pk_gate_hold_resolutions"),
    )


def downgrade() -> None:
    op.drop_table("gate_hold_resolutions")
