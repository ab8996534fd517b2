"""declarations: search keys (truck plate, traders' names and tax ids) in an indexed side table, backfilled

Revision ID: d0008_search_keys
Revises: d0008
Create Date: 2026-12-03 19:10
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "d0008_search_keys"
down_revision = "d0008"
branch_labels = None
depends_on = None

BATCH = 1000


def upgrade() -> None:
    op.create_table(
        "declaration_search_keys",
        sa.Column("declaration_id", sa.String(36), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("value", sa.String(200), nullable=False),
        sa.ForeignKeyConstraint(
            ["declaration_id"], ["declarations.id"], name="fk_declaration_search_keys_declaration_id_declarations"
        ),
        sa.PrimaryKeyConstraint("declaration_id", "kind", "value", name="pk_declaration_search_keys"),
    )
    op.create_index("ix_declaration_search_keys_kind_value", "declaration_search_keys", ["kind", "value"])
    op.create_table(
        "declaration_trader_names",
        sa.Column("name", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_declaration_trader_names"),
    )
    _backfill(op.get_bind())


def _keys(body: dict[str, Any]) -> set[tuple[str, str]]:
    """As services/declarations/repository.search_keys computed them when this migration was written (a migration
    does not follow later changes of the code)."""
    keys: set[tuple[str, str]] = set()
    plate = (body.get("transport") or {}).get("truck_plate")
    if isinstance(plate, str):
        key = "".join(ch for ch in plate.upper() if ch not in " .-")
        if key:
            keys.add(("plate", key[:200]))
    for party in ("consignee", "consignor"):
        data = body.get(party) or {}
        name = data.get("name")
        if isinstance(name, str) and name.split():
            keys.add(("trader", " ".join(name.split()).lower()[:200]))
        tax_id = data.get("tax_id")
        if isinstance(tax_id, str) and tax_id.strip():
            keys.add(("tax_id", tax_id.strip().upper()[:200]))
    return keys


def _backfill(conn: Any) -> None:
    """Every existing declaration's keys, from its current body, in batches."""
    declarations = sa.table("declarations", sa.column("id", sa.String(36)), sa.column("body", sa.JSON()))
    keys = sa.table("declaration_search_keys", sa.column("declaration_id"), sa.column("kind"), sa.column("value"))
    names = sa.table("declaration_trader_names", sa.column("name"))
    seen: set[str] = set()
    after = ""
    while True:
        rows = conn.execute(
            sa.select(declarations.c.id, declarations.c.body)
            .where(declarations.c.id > after)
            .order_by(declarations.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        found = [
            {"declaration_id": r.id, "kind": kind, "value": value}
            for r in rows
            for kind, value in sorted(_keys(r.body if isinstance(r.body, dict) else {}))
        ]
        new_names = sorted({k["value"] for k in found if k["kind"] == "trader"} - seen)
        seen.update(new_names)
        if new_names:
            conn.execute(sa.insert(names), [{"name": n} for n in new_names])
        if found:
            conn.execute(sa.insert(keys), found)
        after = rows[-1].id


def downgrade() -> None:
    op.drop_table("declaration_trader_names")
    op.drop_index("ix_declaration_search_keys_kind_value", table_name="declaration_search_keys")
    op.drop_table("declaration_search_keys")
