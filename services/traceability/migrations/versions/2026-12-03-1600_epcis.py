"""traceability: EPCIS 2.0 events, the EPCs they name, capture jobs, sites (farms, packhouses)

Revision ID: t0001
Revises:
Create Date: 2026-12-03 16:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from services.kernel.database import UTCDateTime

revision = "t0001"
down_revision = None
branch_labels = ("traceability",)
depends_on = "k0001"


def upgrade() -> None:
    op.create_table(
        "epcis_captures",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("event_count", sa.Integer(), nullable=False),
        sa.Column("duplicate_count", sa.Integer(), nullable=False),
        sa.Column("errors", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_epcis_captures"),
    )
    op.create_table(
        "epcis_events",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("event_id", sa.String(512), nullable=False),
        sa.Column("event_hash", sa.String(100), nullable=False),
        sa.Column("event_type", sa.String(32), nullable=False),
        sa.Column("event_time", UTCDateTime(), nullable=False),
        sa.Column("record_time", UTCDateTime(), nullable=False),
        sa.Column("biz_step", sa.String(512), nullable=True),
        sa.Column("disposition", sa.String(512), nullable=True),
        sa.Column("biz_location", sa.String(512), nullable=True),
        sa.Column("capture_id", sa.String(36), nullable=True),
        sa.Column("recorded_by", sa.String(64), nullable=False),
        sa.Column("ledger_event_id", sa.String(36), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_epcis_events"),
        sa.UniqueConstraint("event_id", name="uq_epcis_events_event_id"),
    )
    op.create_index("ix_epcis_events_event_hash", "epcis_events", ["event_hash"])
    op.create_index("ix_epcis_events_disposition", "epcis_events", ["disposition"])
    op.create_index("ix_epcis_events_capture_id", "epcis_events", ["capture_id"])
    op.create_index("ix_epcis_events_time", "epcis_events", ["event_time", "id"])
    op.create_index("ix_epcis_events_biz_step", "epcis_events", ["biz_step", "event_time"])
    op.create_index("ix_epcis_events_biz_location", "epcis_events", ["biz_location", "event_time"])
    op.create_table(
        "epcis_event_epcs",
        sa.Column("event_pk", sa.String(36), nullable=False),
        sa.Column("epc", sa.String(512), nullable=False),
        sa.Column("role", sa.String(8), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_pk"], ["epcis_events.id"], name="fk_epcis_event_epcs_event_pk_epcis_events", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("event_pk", "epc", "role", name="pk_epcis_event_epcs"),
    )
    op.create_index("ix_epcis_event_epcs_epc", "epcis_event_epcs", ["epc", "role"])
    op.create_table(
        "epcis_sites",
        sa.Column("gln", sa.String(13), nullable=False),
        sa.Column("kind", sa.String(12), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("organisation_id", sa.String(36), nullable=True),
        sa.Column("vn_code", sa.String(40), nullable=False),
        sa.Column("cn_registration", sa.String(40), nullable=True),
        sa.Column("province", sa.String(80), nullable=True),
        sa.Column("area_ha", sa.String(20), nullable=True),
        sa.Column("crops", sa.JSON(), nullable=False),
        sa.Column("updated_by", sa.String(64), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("gln", name="pk_epcis_sites"),
    )
    op.create_index("ix_epcis_sites_organisation_id", "epcis_sites", ["organisation_id"])
    op.create_index("ix_epcis_sites_vn_code", "epcis_sites", ["vn_code"])


def downgrade() -> None:
    op.drop_table("epcis_sites")
    op.drop_table("epcis_event_epcs")
    op.drop_table("epcis_events")
    op.drop_table("epcis_captures")
