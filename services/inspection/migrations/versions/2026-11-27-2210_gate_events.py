"""inspection: gate events, and the read model of declarations expected at the gate

Revision ID: i0001
Revises:
Create Date: 2026-11-27 22:10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from services.kernel.database import UTCDateTime

revision = "i0001"
down_revision = None
branch_labels = ("inspection",)
depends_on = "k0001"

SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "gate_events",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("lane", sa.String(16), nullable=False),
        sa.Column("direction", sa.String(3), nullable=False),
        sa.Column("camera_id", sa.String(64), nullable=False),
        sa.Column("taken_at", UTCDateTime(), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("plate", sa.String(16), nullable=True),
        sa.Column("decision", sa.String(8), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("reads", sa.JSON(), nullable=False),
        sa.Column("image_sha256s", sa.JSON(), nullable=False),
        sa.Column("container_number", sa.String(11), nullable=True),
        sa.Column("match_kind", sa.String(16), nullable=False),
        sa.Column("matched_container", sa.String(11), nullable=True),
        sa.Column("declaration_id", sa.String(36), nullable=True),
        sa.Column("declaration_number", sa.String(32), nullable=True),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_gate_events"),
        sa.UniqueConstraint("fingerprint", name="uq_gate_events_fingerprint"),
    )
    op.create_index("ix_gate_events_received", "gate_events", ["received_at", "id"])
    op.create_index("ix_gate_events_decision_received", "gate_events", ["decision", "received_at"])
    op.create_index("ix_gate_events_lane", "gate_events", ["lane"])
    op.create_index("ix_gate_events_container_number", "gate_events", ["container_number"])
    op.create_index("ix_gate_events_matched_container", "gate_events", ["matched_container"])
    op.create_index("ix_gate_events_declaration_id", "gate_events", ["declaration_id"])

    op.create_table(
        "gate_expected_declarations",
        sa.Column("declaration_id", sa.String(36), nullable=False),
        sa.Column("number", sa.String(32), nullable=True),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("event_seq", SEQ, nullable=False),
        sa.Column("body_sha256", sa.String(64), nullable=True),
        sa.Column("truck_plate", sa.String(16), nullable=True),
        sa.Column("containers", sa.JSON(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("declaration_id", name="pk_gate_expected_declarations"),
    )
    op.create_index("ix_gate_expected_declarations_number", "gate_expected_declarations", ["number"])

    op.create_table(
        "gate_expected_containers",
        sa.Column("number", sa.String(11), nullable=False),
        sa.Column("declaration_id", sa.String(36), nullable=False),
        sa.PrimaryKeyConstraint("number", "declaration_id", name="pk_gate_expected_containers"),
    )


def downgrade() -> None:
    op.drop_table("gate_expected_containers")
    op.drop_index("ix_gate_expected_declarations_number", table_name="gate_expected_declarations")
    op.drop_table("gate_expected_declarations")
    for name in (
        "ix_gate_events_declaration_id",
        "ix_gate_events_matched_container",
        "ix_gate_events_container_number",
        "ix_gate_events_lane",
        "ix_gate_events_decision_received",
        "ix_gate_events_received",
    ):
        op.drop_index(name, table_name="gate_events")
    op.drop_table("gate_events")
