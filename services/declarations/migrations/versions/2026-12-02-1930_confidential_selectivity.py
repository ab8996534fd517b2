"""declarations: the secret key of the random selection draw, and each assessment's confidential record

Revision ID: d0004s
Revises: d0003
Create Date: 2026-12-02 19:30
"""

from __future__ import annotations

import datetime as dt
import secrets

import sqlalchemy as sa
from alembic import op

from services.kernel.database import UTCDateTime

revision = "d0004s"
down_revision = "d0003"
branch_labels = None
depends_on = None

SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    keys = op.create_table(
        "risk_draw_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key_hex", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_risk_draw_keys"),
    )
    # Drawn here, once per database: no file in the repository and no API answer ever holds it, so a trader
    # cannot compute a declaration's draw (the rule set's seed alone is public in the shipped default).
    op.bulk_insert(keys, [{"id": 1, "key_hex": secrets.token_hex(32), "created_at": dt.datetime.now(dt.UTC)}])
    op.create_table(
        "risk_assessments",
        sa.Column("id", SEQ, autoincrement=True, nullable=False),
        sa.Column("declaration_id", sa.String(36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("record", sa.JSON(), nullable=False),
        sa.Column("salt", sa.String(64), nullable=False),
        sa.Column("commitment", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["declaration_id"], ["declarations.id"], name="fk_risk_assessments_declaration_id_declarations"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_risk_assessments"),
    )
    op.create_index("ix_risk_assessments_declaration_id", "risk_assessments", ["declaration_id"])


def downgrade() -> None:
    op.drop_index("ix_risk_assessments_declaration_id", table_name="risk_assessments")
    op.drop_table("risk_assessments")
    op.drop_table("risk_draw_keys")
