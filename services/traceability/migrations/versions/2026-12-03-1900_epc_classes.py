"""traceability: index the classes (GTIN + lot) of stored events' quantity lists (role 'class')

The buyer's trace finds a lot's harvest and packing by its class; events stored before this revision get their
rows here (new events get them on capture, services/traceability/service.py).

Revision ID: tb001
Revises: t0001
Create Date: 2026-12-03 19:00
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "tb001"
down_revision = "t0001"
branch_labels = None
depends_on = None

LISTS = ("quantityList", "childQuantityList", "inputQuantityList", "outputQuantityList")


def upgrade() -> None:
    from services.traceability.identifiers import normalise

    conn = op.get_bind()
    events = sa.table("epcis_events", sa.column("id", sa.String), sa.column("body", sa.JSON))
    epcs = sa.table("epcis_event_epcs", sa.column("event_pk", sa.String), sa.column("epc", sa.String),
                    sa.column("role", sa.String))  # fmt: skip
    last = ""
    while True:
        rows = conn.execute(
            sa.select(events.c.id, events.c.body).where(events.c.id > last).order_by(events.c.id).limit(1000)
        ).all()
        if not rows:
            return
        found = []
        for row_id, body in rows:
            body = json.loads(body) if isinstance(body, str) else body
            classes = {
                normalise(item["epcClass"])
                for name in LISTS
                for item in (body or {}).get(name) or []
                if isinstance(item, dict) and isinstance(item.get("epcClass"), str)
            }
            found += [{"event_pk": row_id, "epc": epc, "role": "class"} for epc in sorted(classes)]
        if found:
            conn.execute(sa.insert(epcs), found)
        last = rows[-1][0]


def downgrade() -> None:
    op.execute("DELETE FROM epcis_event_epcs WHERE role = 'class'")
