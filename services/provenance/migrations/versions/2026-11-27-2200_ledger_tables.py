"""provenance: the ledger's append-only tables, a leaf-hash index, subject owners, anchor contracts

Revision ID: p0001
Revises:
Create Date: 2026-11-27 22:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ledger.storage import TABLES, drop_trigger_statements, ledger_schema_statements
from services.kernel.database import UTCDateTime

revision = "p0001"
down_revision = None
branch_labels = ("provenance",)
depends_on = "k0001"


def upgrade() -> None:
    bind = op.get_bind()
    # Driver SQL: the trigger bodies must reach the database verbatim (no bind-parameter parsing of ':').
    for statement in ledger_schema_statements(bind.dialect.name):
        bind.exec_driver_sql(statement)
    # Proofs "by leaf hash" look entries up by it. The ledger's own schema now has this index too (a standalone
    # store needs it as well); a database migrated before that got it here.
    op.create_index("ix_ledger_entries_leaf_hash", "ledger_entries", ["leaf_hash"], if_not_exists=True)
    op.create_table(
        "provenance_subject_owners",
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("organisation_id", sa.String(36), nullable=False),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("subject", name="pk_provenance_subject_owners"),
    )
    op.create_index("ix_provenance_subject_owners_organisation_id", "provenance_subject_owners", ["organisation_id"])
    op.create_table(
        "provenance_anchor_contracts",
        sa.Column("chain_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("contract", sa.String(42), nullable=False),
        sa.Column("deployed_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("chain_id", "contract", name="pk_provenance_anchor_contracts"),
    )


def downgrade() -> None:
    bind = op.get_bind()
    op.drop_table("provenance_anchor_contracts")
    op.drop_index("ix_provenance_subject_owners_organisation_id", table_name="provenance_subject_owners")
    op.drop_table("provenance_subject_owners")
    for statement in drop_trigger_statements(bind.dialect.name):
        bind.exec_driver_sql(statement)
    for table in reversed(TABLES):
        bind.exec_driver_sql(f"DROP TABLE IF EXISTS {table.name}")
    if bind.dialect.name == "postgresql":
        bind.exec_driver_sql("DROP FUNCTION IF EXISTS ledger_reject_change()")
