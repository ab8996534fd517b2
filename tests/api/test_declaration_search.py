"""Search by plate, trader name or tax id reads indexed keys (declaration_search_keys), kept with every filing and
amendment, and backfilled by the migration for declarations filed before it."""

from __future__ import annotations

import copy
import datetime as dt
import json
from typing import Any

from alembic import command
from sqlalchemy import create_engine, select, text

from services.declarations.models import DeclarationSearchKey, TraderName
from services.kernel.migrate import alembic_config
from tests.api.support import BASE, Api


def found(api: Api, headers: dict[str, str], **params: str) -> list[str]:
    got = api.client.get(BASE, params=params, headers=headers)
    assert got.status_code == 200, got.text
    return [d["id"] for d in got.json()["items"]]


def body_with(api: Api, *, plate: str, consignee: str, tax_id: str) -> dict[str, Any]:
    body = copy.deepcopy(api.body)
    body["transport"]["truck_plate"] = plate
    body["consignee"] = {**body["consignee"], "name": consignee, "tax_id": tax_id}
    return body


def test_plate_trader_and_tax_id_find_their_declarations(api: Api, trader, officer) -> None:
    dong_a = api.file(trader, body_with(api, plate="24C-555.01", consignee="Công ty TNHH Đông Á", tax_id="0101234565"))
    lao_cai = api.file(
        trader, body_with(api, plate="24C-555.02", consignee="Cong ty 100% Lao Cai", tax_id="5300100004")
    )
    assert found(api, officer, plate="24c 55501") == [dong_a["id"]]
    assert found(api, officer, plate="24C-555.02") == [lao_cai["id"]]
    assert found(api, officer, plate="24C-999.99") == []
    # Part of the name, any case, Vietnamese letters too (ĐÔNG Á is lower-cased as Python does, not ASCII only).
    assert found(api, officer, trader="ĐÔNG Á") == [dong_a["id"]]
    assert found(api, officer, trader="tnhh đông") == [dong_a["id"]]
    assert found(api, officer, trader="100%") == [lao_cai["id"]]  # LIKE's wildcards are searched as text
    assert found(api, officer, trader="0%") == [lao_cai["id"]]
    assert found(api, officer, trader="_ ") == []
    # The consignor (the same in both) finds both; the trader's tax id, exactly.
    assert found(api, officer, trader="hekou fruit") == [lao_cai["id"], dong_a["id"]]
    assert found(api, officer, trader="0101234565") == [dong_a["id"]]
    assert found(api, officer, trader="010123") == []
    # A trader searches its own declarations only.
    assert found(api, trader, trader="đông á") == [dong_a["id"]]


def test_an_amendment_moves_the_keys(api: Api, trader, officer) -> None:
    decl = api.file(trader, body_with(api, plate="29H-111.11", consignee="Old Name Co", tax_id="0101234565"))
    etag = api.client.get(f"{BASE}/{decl['id']}", headers=trader).headers["etag"]
    amended = body_with(api, plate="29H-222.22", consignee="New Name Co", tax_id="0100002226")
    got = api.client.post(f"{BASE}/{decl['id']}/amend", json=amended, headers={**trader, "If-Match": etag})
    assert got.status_code == 200, got.text
    assert found(api, officer, plate="29H-111.11") == []
    assert found(api, officer, plate="29H-222.22") == [decl["id"]]
    assert found(api, officer, trader="old name") == []
    assert found(api, officer, trader="new name") == [decl["id"]]
    assert found(api, officer, trader="0101234565") == []
    assert found(api, officer, trader="0100002226") == [decl["id"]]


def test_the_migration_backfills_existing_declarations(database_url: str) -> None:
    """d0007 → d0008 on a database with declarations filed before: their keys are there after the upgrade."""
    config = alembic_config(database_url)
    engine = create_engine(database_url)
    command.downgrade(config, "d0007")
    now = dt.datetime.now(dt.UTC)
    bodies = {
        "d1": {"transport": {"truck_plate": "24C-123.45"}, "consignee": {"name": "Cty  Đông Á", "tax_id": "0100"},
               "consignor": {"name": "Hekou Trading", "tax_id": "91CN"}},
        "d2": {"transport": {"truck_plate": "24C-678.90"}, "consignee": {"name": "cty đông á"},
               "consignor": {"name": "Hekou Trading"}},
        "d3": {},
    }  # fmt: skip
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO organisations (id, name, created_at) VALUES ('o1', 'Org', :now)"), {"now": now})
        for ident, body in bodies.items():
            conn.execute(
                text(
                    "INSERT INTO declarations (id, organisation_id, status, kind, border_gate, version, row_version,"
                    " body, body_sha256, created_by, created_at, updated_at, duties_due_vnd, paid_vnd)"
                    " VALUES (:id, 'o1', 'submitted', 'import', 'KT', 1, 1, :body, 'x', 't', :now, :now, 0, 0)"
                ),
                {"id": ident, "body": json.dumps(body), "now": now},
            )
    command.upgrade(config, "heads")
    with engine.connect() as conn:
        keys = set(conn.execute(select(DeclarationSearchKey.declaration_id, DeclarationSearchKey.kind,
                                       DeclarationSearchKey.value)).all())  # fmt: skip
        names = set(conn.execute(select(TraderName.name)).scalars())
    engine.dispose()
    assert keys == {
        ("d1", "plate", "24C12345"), ("d1", "trader", "cty đông á"), ("d1", "tax_id", "0100"),
        ("d1", "trader", "hekou trading"), ("d1", "tax_id", "91CN"),
        ("d2", "plate", "24C67890"), ("d2", "trader", "cty đông á"), ("d2", "trader", "hekou trading"),
    }  # fmt: skip
    assert names == {"cty đông á", "hekou trading"}
