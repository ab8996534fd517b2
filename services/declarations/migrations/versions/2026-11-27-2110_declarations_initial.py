"""declarations: declarations, versions, transitions, lookups, number sequences

Revision ID: d0001
Revises:
Create Date: 2026-11-27 21:10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from services.kernel.database import UTCDateTime

revision = "d0001"
down_revision = None
branch_labels = ("declarations",)
depends_on = "k0001"

SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "declarations",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("number", sa.String(32), nullable=True),
        sa.Column("organisation_id", sa.String(36), nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("border_gate", sa.String(12), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("row_version", sa.Integer(), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("body_sha256", sa.String(64), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("submitted_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["organisation_id"], ["organisations.id"], name="fk_declarations_organisation_id_organisations"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_declarations"),
        sa.UniqueConstraint("number", name="uq_declarations_number"),
    )
    op.create_index("ix_declarations_org_created", "declarations", ["organisation_id", "created_at", "id"])
    op.create_index("ix_declarations_created", "declarations", ["created_at", "id"])
    op.create_index("ix_declarations_status_submitted", "declarations", ["status", "submitted_at"])
    op.create_table(
        "declaration_versions",
        sa.Column("id", SEQ, autoincrement=True, nullable=False),
        sa.Column("declaration_id", sa.String(36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("body_sha256", sa.String(64), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["declaration_id"],
            ["declarations.id"],
            name="fk_declaration_versions_declaration_id_declarations",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_declaration_versions"),
        sa.UniqueConstraint("declaration_id", "version", name="uq_declaration_versions_decl_version"),
    )
    op.create_index("ix_declaration_versions_declaration_id", "declaration_versions", ["declaration_id"])
    op.create_table(
        "declaration_transitions",
        sa.Column("id", SEQ, autoincrement=True, nullable=False),
        sa.Column("declaration_id", sa.String(36), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("from_status", sa.String(24), nullable=True),
        sa.Column("to_status", sa.String(24), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["declaration_id"],
            ["declarations.id"],
            name="fk_declaration_transitions_declaration_id_declarations",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_declaration_transitions"),
    )
    op.create_index("ix_declaration_transitions_declaration_id", "declaration_transitions", ["declaration_id"])
    op.create_table(
        "declaration_containers",
        sa.Column("declaration_id", sa.String(36), nullable=False),
        sa.Column("number", sa.String(11), nullable=False),
        sa.ForeignKeyConstraint(
            ["declaration_id"],
            ["declarations.id"],
            name="fk_declaration_containers_declaration_id_declarations",
        ),
        sa.PrimaryKeyConstraint("declaration_id", "number", name="pk_declaration_containers"),
    )
    op.create_index("ix_declaration_containers_number", "declaration_containers", ["number"])
    op.create_table(
        "declaration_hs_codes",
        sa.Column("declaration_id", sa.String(36), nullable=False),
        sa.Column("hs_code", sa.String(8), nullable=False),
        sa.ForeignKeyConstraint(
            ["declaration_id"],
            ["declarations.id"],
            name="fk_declaration_hs_codes_declaration_id_declarations",
        ),
        sa.PrimaryKeyConstraint("declaration_id", "hs_code", name="pk_declaration_hs_codes"),
    )
    op.create_index("ix_declaration_hs_codes_hs_code", "declaration_hs_codes", ["hs_code"])
    op.create_table(
        "declaration_sequences",
        sa.Column("prefix", sa.String(8), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("last_value", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("prefix", "year", name="pk_declaration_sequences"),
    )


def downgrade() -> None:
    for table in (
        "declaration_sequences",
        "declaration_hs_codes",
        "declaration_containers",
        "declaration_transitions",
        "declaration_versions",
        "declarations",
    ):
        op.drop_table(table)
