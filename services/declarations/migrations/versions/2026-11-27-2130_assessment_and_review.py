"""declarations: tariff, exchange rates, risk rule sets, trader compliance, review queue, documents, payments

Revision ID: d0002
Revises: d0001
Create Date: 2026-11-27 21:30
"""

from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa
from alembic import op

from services.kernel.database import UTCDateTime

revision = "d0002"
down_revision = "d0001"
branch_labels = None
depends_on = None

SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
SEED = Path(__file__).resolve().parents[2] / "data" / "tariff_seed.csv"


def _seed_file() -> Path:
    """The national tariff of the side being migrated (SMARTGATE_ADMINISTRATION; the Vietnamese seed by default)."""
    import os

    from services.kernel.administration import DEFAULT, profile

    code = os.environ.get("SMARTGATE_ADMINISTRATION") or DEFAULT
    return SEED if code == DEFAULT else profile(code).tariff_file


def upgrade() -> None:
    with op.batch_alter_table("declarations") as batch:
        batch.add_column(sa.Column("channel", sa.String(8), nullable=True))
        batch.add_column(sa.Column("risk", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("duties", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("duties_due_vnd", sa.BigInteger(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("paid_vnd", sa.BigInteger(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("assigned_officer", sa.String(16), nullable=True))
        batch.add_column(sa.Column("queued_at", UTCDateTime(), nullable=True))
        batch.create_index("ix_declarations_assigned_officer", ["assigned_officer"])
    tariff = op.create_table(
        "tariff_lines",
        sa.Column("hs_code", sa.String(8), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("mfn_rate", sa.Numeric(7, 3), nullable=False),
        sa.Column("acfta_rate", sa.Numeric(7, 3), nullable=True),
        sa.Column("vat_rate", sa.Numeric(7, 3), nullable=False),
        sa.Column("export_rate", sa.Numeric(7, 3), nullable=False),
        sa.Column("sources", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("hs_code", name="pk_tariff_lines"),
    )
    op.create_table(
        "exchange_rates",
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("vnd_per_unit", sa.Numeric(18, 6), nullable=False),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("posted_by", sa.String(64), nullable=False),
        sa.Column("posted_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("currency", "day", name="pk_exchange_rates"),
    )
    op.create_table(
        "risk_rule_sets",
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("source_yaml", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("activated_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("version", name="pk_risk_rule_sets"),
    )
    op.create_table(
        "trader_profiles",
        sa.Column("organisation_id", sa.String(36), nullable=False),
        sa.Column("compliance_class", sa.String(1), nullable=False),
        sa.Column("violations", sa.Integer(), nullable=False),
        sa.Column("clean_since_change", sa.Integer(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"], ["organisations.id"], name="fk_trader_profiles_organisation_id_organisations"
        ),
        sa.PrimaryKeyConstraint("organisation_id", name="pk_trader_profiles"),
    )
    op.create_table(
        "officer_duty",
        sa.Column("officer_key_id", sa.String(16), nullable=False),
        sa.Column("on_duty", sa.Boolean(), nullable=False),
        sa.Column("last_assigned_at", UTCDateTime(), nullable=True),
        sa.Column("assigned_count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("officer_key_id", name="pk_officer_duty"),
    )
    op.create_table(
        "declaration_documents",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("declaration_id", sa.String(36), nullable=False),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("content_type", sa.String(100), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("uploaded_by", sa.String(64), nullable=False),
        sa.Column("uploaded_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["declaration_id"], ["declarations.id"], name="fk_declaration_documents_declaration_id_declarations"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_declaration_documents"),
    )
    op.create_index("ix_declaration_documents_declaration_id", "declaration_documents", ["declaration_id"])
    op.create_table(
        "declaration_payments",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("declaration_id", sa.String(36), nullable=False),
        sa.Column("bank_reference", sa.String(64), nullable=False),
        sa.Column("amount_vnd", sa.BigInteger(), nullable=False),
        sa.Column("recorded_by", sa.String(64), nullable=False),
        sa.Column("paid_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["declaration_id"], ["declarations.id"], name="fk_declaration_payments_declaration_id_declarations"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_declaration_payments"),
        sa.UniqueConstraint("bank_reference", name="uq_declaration_payments_bank_reference"),
    )
    op.create_index("ix_declaration_payments_declaration_id", "declaration_payments", ["declaration_id"])
    op.create_table(
        "unit_value_observations",
        sa.Column("id", SEQ, autoincrement=True, nullable=False),
        sa.Column("hs_code", sa.String(8), nullable=False),
        sa.Column("vnd_per_kg", sa.Numeric(20, 4), nullable=False),
        sa.Column("declaration_id", sa.String(36), nullable=False),
        sa.Column("observed_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_unit_value_observations"),
    )
    op.create_index("ix_unit_value_observations_hs_at", "unit_value_observations", ["hs_code", "observed_at"])
    seed = _seed_file()
    if seed.exists():
        op.bulk_insert(tariff, list(_seed_rows(seed)))


def _seed_rows(seed: Path):
    """The seed tariff as it stood when this migration was written (later changes come as new migrations)."""
    with seed.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            yield {
                "hs_code": row["hs_code"].strip(),
                "description": row["description"].strip(),
                "mfn_rate": Decimal(row["mfn_rate"]),
                "acfta_rate": Decimal(row["acfta_rate"]) if row["acfta_rate"].strip() else None,
                "vat_rate": Decimal(row["vat_rate"]),
                "export_rate": Decimal(row["export_rate"]),
                "sources": {k: row[f"{k}_source"].strip() for k in ("mfn", "acfta", "vat", "export")},
                "status": row["status"].strip(),
                "notes": row.get("notes", "").strip(),
            }


def downgrade() -> None:
    for table in (
        "unit_value_observations",
        "declaration_payments",
        "declaration_documents",
        "officer_duty",
        "trader_profiles",
        "risk_rule_sets",
        "exchange_rates",
        "tariff_lines",
    ):
        op.drop_table(table)
    with op.batch_alter_table("declarations") as batch:
        batch.drop_index("ix_declarations_assigned_officer")
        for column in ("queued_at", "assigned_officer", "paid_vnd", "duties_due_vnd", "duties", "risk", "channel"):
            batch.drop_column(column)
