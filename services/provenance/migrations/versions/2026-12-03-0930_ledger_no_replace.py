"""provenance: on SQLite, refuse INSERT OR REPLACE over stored ledger rows (issue 13)

Revision ID: p0002_no_replace
Revises: p0001
Create Date: 2026-12-03 09:30
"""

from __future__ import annotations

from alembic import op

from ledger.storage import trigger_statements

revision = "p0002_no_replace"
down_revision = "p0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return  # PostgreSQL has no REPLACE; its ON CONFLICT DO UPDATE fires the UPDATE trigger already
    # Every SQLite trigger of the ledger is CREATE ... IF NOT EXISTS: this adds the BEFORE INSERT guards that a
    # database migrated with p0001 lacks (a new database got them from p0001 already).
    for statement in trigger_statements("sqlite"):
        bind.exec_driver_sql(statement)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for name in ("ledger_entries", "ledger_nodes", "ledger_checkpoints", "ledger_anchors"):
            bind.exec_driver_sql(f"DROP TRIGGER IF EXISTS {name}_no_replace")
