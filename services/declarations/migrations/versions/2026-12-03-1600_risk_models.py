"""declarations: learned risk models as versioned artefacts, their scores per assessment, officers' outcomes

Revision ID: d0007
Revises: d0006
Create Date: 2026-12-03 16:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from services.kernel.database import UTCDateTime

revision = "d0007"
down_revision = "d0006"
branch_labels = None
depends_on = None

SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "risk_models",
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("info", sa.JSON(), nullable=False),
        sa.Column("value_currency", sa.String(3), nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("state_changed_by", sa.String(64), nullable=True),
        sa.Column("state_changed_at", UTCDateTime(), nullable=True),
        sa.Column("previous_version", sa.String(32), nullable=True),
        sa.Column("dry_run", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("version", name="pk_risk_models"),
    )
    for state in ("active", "shadow"):
        where = sa.text(f"state = '{state}'")
        op.create_index(f"uq_risk_models_{state}", "risk_models", ["state"], unique=True,
                        postgresql_where=where, sqlite_where=where)  # fmt: skip
    op.create_table(
        "risk_model_scores",
        sa.Column("id", SEQ, autoincrement=True, nullable=False),
        sa.Column("declaration_id", sa.String(36), nullable=False),
        sa.Column("declaration_version", sa.Integer(), nullable=False),
        sa.Column("model_version", sa.String(32), nullable=False),
        sa.Column("mode", sa.String(8), nullable=False),
        sa.Column("probability", sa.Float(), nullable=False),
        sa.Column("selected", sa.Boolean(), nullable=False),
        sa.Column("explored", sa.Boolean(), nullable=False),
        sa.Column("rules_channel", sa.String(8), nullable=False),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("scored_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["declaration_id"], ["declarations.id"], name="fk_risk_model_scores_declaration_id_declarations"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_risk_model_scores"),
    )
    op.create_index("ix_risk_model_scores_declaration_id", "risk_model_scores", ["declaration_id"])
    op.create_index("ix_risk_model_scores_model_at", "risk_model_scores", ["model_version", "scored_at"])
    op.create_table(
        "risk_outcomes",
        sa.Column("declaration_id", sa.String(36), nullable=False),
        sa.Column("outcome", sa.String(12), nullable=False),
        sa.Column("violation", sa.Boolean(), nullable=False),
        sa.Column("after_inspection", sa.Boolean(), nullable=False),
        sa.Column("decided_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["declaration_id"], ["declarations.id"], name="fk_risk_outcomes_declaration_id_declarations"
        ),
        sa.PrimaryKeyConstraint("declaration_id", name="pk_risk_outcomes"),
    )


def downgrade() -> None:
    op.drop_table("risk_outcomes")
    op.drop_index("ix_risk_model_scores_model_at", table_name="risk_model_scores")
    op.drop_index("ix_risk_model_scores_declaration_id", table_name="risk_model_scores")
    op.drop_table("risk_model_scores")
    op.drop_index("uq_risk_models_shadow", table_name="risk_models")
    op.drop_index("uq_risk_models_active", table_name="risk_models")
    op.drop_table("risk_models")
