"""declarations: the partner administration's consignments, Form E certificates, crossings and control results

Revision ID: d0008
Revises: d0007
Create Date: 2026-12-03 19:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from services.kernel.database import UTCDateTime

revision = "d0008"
down_revision = "d0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("declarations") as batch:
        batch.add_column(sa.Column("partner_reference", sa.String(35), nullable=True))
        batch.add_column(sa.Column("origin_certificate", sa.String(32), nullable=True))
    op.create_index("ix_declarations_partner_reference", "declarations", ["partner_reference"])
    op.create_index("ix_declarations_origin_certificate", "declarations", ["origin_certificate"])
    op.create_table(
        "partner_consignments",
        sa.Column("correlation_id", sa.String(64), nullable=False),
        sa.Column("sender", sa.String(32), nullable=False),
        sa.Column("message_id", sa.String(36), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("sent_at", UTCDateTime(), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("correlation_id", name="pk_partner_consignments"),
    )
    op.create_table(
        "partner_origin_certificates",
        sa.Column("number", sa.String(32), nullable=False),
        sa.Column("sender", sa.String(32), nullable=False),
        sa.Column("message_id", sa.String(36), nullable=False),
        sa.Column("certificate", sa.JSON(), nullable=False),
        sa.Column("issued_on", sa.Date(), nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("number", name="pk_partner_origin_certificates"),
    )
    op.create_table(
        "origin_claims",
        sa.Column("declaration_id", sa.String(36), nullable=False),
        sa.Column("hs6", sa.String(6), nullable=False),
        sa.Column("certificate_number", sa.String(32), nullable=False),
        sa.Column("quantity", sa.Numeric(19, 3), nullable=False),
        sa.Column("unit", sa.String(3), nullable=False),
        sa.ForeignKeyConstraint(
            ["declaration_id"], ["declarations.id"], name="fk_origin_claims_declaration_id_declarations"
        ),
        sa.PrimaryKeyConstraint("declaration_id", "hs6", name="pk_origin_claims"),
    )
    op.create_index("ix_origin_claims_certificate_number", "origin_claims", ["certificate_number"])
    op.create_table(
        "consignment_crossings",
        sa.Column("correlation_id", sa.String(64), nullable=False),
        sa.Column("side", sa.String(8), nullable=False),
        sa.Column("direction", sa.String(5), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("gate", sa.String(32), nullable=True),
        sa.Column("truck_plate", sa.String(16), nullable=True),
        sa.Column("declaration_id", sa.String(36), nullable=True),
        sa.Column("message_id", sa.String(36), nullable=True),
        sa.PrimaryKeyConstraint("correlation_id", "side", name="pk_consignment_crossings"),
    )
    op.create_table(
        "partner_control_results",
        sa.Column("message_id", sa.String(36), nullable=False),
        sa.Column("correlation_id", sa.String(64), nullable=False),
        sa.Column("sender", sa.String(32), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("message_id", name="pk_partner_control_results"),
    )
    op.create_index("ix_partner_control_results_correlation_id", "partner_control_results", ["correlation_id"])


def downgrade() -> None:
    op.drop_table("partner_control_results")
    op.drop_table("consignment_crossings")
    op.drop_table("origin_claims")
    op.drop_table("partner_origin_certificates")
    op.drop_table("partner_consignments")
    op.drop_index("ix_declarations_origin_certificate", "declarations")
    op.drop_index("ix_declarations_partner_reference", "declarations")
    with op.batch_alter_table("declarations") as batch:
        batch.drop_column("origin_certificate")
        batch.drop_column("partner_reference")
