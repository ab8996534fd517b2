"""exchange: partners and their keys, messages sent and received with delivery states, refusals

Revision ID: e0001
Revises:
Create Date: 2026-12-03 19:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from services.kernel.database import UTCDateTime
from services.kernel.outbox import SeqType

revision = "e0001"
down_revision = None
branch_labels = ("exchange",)
depends_on = "k0001"


def upgrade() -> None:
    op.create_table(
        "exchange_partners",
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("base_url", sa.String(2048), nullable=False),
        sa.Column("keys", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("code", name="pk_exchange_partners"),
    )
    op.create_table(
        "exchange_messages",
        sa.Column("seq", SeqType, autoincrement=True, nullable=False),
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("direction", sa.String(3), nullable=False),
        sa.Column("message_id", sa.String(36), nullable=False),
        sa.Column("partner", sa.String(32), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("correlation_id", sa.String(64), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(36), nullable=True),
        sa.Column("jws", sa.Text(), nullable=False),
        sa.Column("jws_sha256", sa.String(71), nullable=False),
        sa.Column("state", sa.String(24), nullable=False),
        sa.Column("receipt_status", sa.String(24), nullable=True),
        sa.Column("receipt_jws", sa.Text(), nullable=True),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("delivered_at", UTCDateTime(), nullable=True),
        sa.Column("acknowledged_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("seq", name="pk_exchange_messages"),
        sa.UniqueConstraint("id", name="uq_exchange_messages_id"),
        sa.UniqueConstraint("direction", "message_id", name="uq_exchange_messages_direction_message"),
        sa.UniqueConstraint("direction", "partner", "correlation_id", "sequence", name="uq_exchange_messages_order"),
    )
    op.create_index("ix_exchange_messages_due", "exchange_messages", ["direction", "state", "next_attempt_at"])
    op.create_index("ix_exchange_messages_partner_seq", "exchange_messages", ["partner", "direction", "seq"])
    op.create_index("ix_exchange_messages_correlation", "exchange_messages", ["correlation_id"])
    op.create_table(
        "exchange_rejections",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("partner", sa.String(32), nullable=True),
        sa.Column("kid", sa.String(128), nullable=True),
        sa.Column("message_id", sa.String(36), nullable=True),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("jws_sha256", sa.String(71), nullable=True),
        sa.Column("remote", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_exchange_rejections"),
    )
    op.create_index("ix_exchange_rejections_at", "exchange_rejections", ["at"])


def downgrade() -> None:
    op.drop_table("exchange_rejections")
    op.drop_table("exchange_messages")
    op.drop_table("exchange_partners")
