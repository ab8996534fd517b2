"""provenance: the log's signing keys with the checkpoint size each signs from (issue 13 §3, key rotation)

Revision ID: p0004_ledger_keys
Revises: p0003_cosignatures
Create Date: 2026-12-03 15:30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ledger import storage

revision = "p0004_ledger_keys"
down_revision = "p0003_cosignatures"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    # p0001 creates every table of the ledger's schema, so a database created after this table was added has it
    # already (with its triggers); one migrated before gets it, append-only like the others, here.
    if sa.inspect(bind).has_table(storage.keys.name):
        return
    # Driver SQL: the trigger bodies must reach the database verbatim (no bind-parameter parsing of ':').
    for statement in storage.ledger_schema_statements(bind.dialect.name, (storage.keys,)):
        bind.exec_driver_sql(statement)


def downgrade() -> None:
    bind = op.get_bind()
    name = storage.keys.name
    if bind.dialect.name == "postgresql":
        bind.exec_driver_sql(f"DROP TRIGGER IF EXISTS {name}_append_only ON {name}")
    else:
        for op_name in ("update", "delete", "replace"):
            bind.exec_driver_sql(f"DROP TRIGGER IF EXISTS {name}_no_{op_name}")
    bind.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")
