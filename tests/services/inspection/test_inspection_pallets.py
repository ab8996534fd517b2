"""Pallets at the gate: their QR codes (GS1 Digital Link URIs, generated with `qrcode` and read by pyzbar through
the real gate endpoint) are matched to the pallets the declaration's trace check found; an unknown pallet, or one
another declaration draws on, holds the truck and raises the declaration's risk."""

from __future__ import annotations

from typing import Any

import pytest

from services.inspection import matching
from tests.services.inspection.conftest import Gate, door, stencil
from tests.services.traceability.test_trace_check import CLEARED, P1, P2, P3, World

CODE = "CSQU3054383"


def link(sscc: str, base: str = "https://id.gs1.org") -> str:
    return f"{base}/00/{sscc}"


@pytest.fixture
def pallets(client: Any, keys: Any, runtime: Any, declaration_body: dict[str, Any]) -> tuple[World, Gate, dict]:
    world = World(client, keys, runtime)
    gate = Gate(client, runtime, keys, declaration_body)
    world.harvest("LC2026A", "3000")
    world.pack(P1, {"LC2026A": "900"})
    world.pack(P2, {"LC2026A": "900"})
    world.pack(P3, {"LC2026A": "900"})
    mine = world.file(world.body(declaration_body, "800", ssccs=[P1]))
    assert mine["status"] == "released"
    other_body = world.body(declaration_body, "800", ssccs=[P2])
    other_body["containers"] = [{"number": "MSCU5605860", "seals": []}]  # another truck
    other = world.file(other_body)
    assert other["status"] in CLEARED
    return world, gate, mine


def test_the_declarations_pallet_proceeds(pallets: tuple[World, Gate, dict]) -> None:
    _, gate, mine = pallets
    # Our own resolver's base is as good as id.gs1.org: the SSCC is what counts.
    event = gate.post(door(stencil(CODE)), door("", qr=link(P1, "https://trace.kimthanh.example"))).json()
    assert (event["decision"], event["reasons"]) == ("proceed", []), event
    assert event["match"]["declaration_id"] == mine["id"]
    assert event["evidence"]["pallets_read"] == [P1]
    assert gate.outbox("gate.mismatch") == []


@pytest.mark.parametrize(
    ("sscc", "reason", "key"),
    [(P2, "pallet_not_on_declaration", "foreign_pallets"), (P3, "pallet_unknown", "unknown_pallets")],
)
def test_a_foreign_or_unknown_pallet_holds_the_truck(
    pallets: tuple[World, Gate, dict], sscc: str, reason: str, key: str
) -> None:
    world, gate, mine = pallets
    event = gate.post(door(stencil(CODE)), door("", qr=link(sscc))).json()
    assert (event["decision"], event["reasons"]) == ("hold", [reason]), event
    assert event["evidence"][key] == [sscc]
    assert [m["declaration_id"] for m in gate.outbox("gate.mismatch")] == [mine["id"]]
    gate.runtime.relay.drain()
    # The hold reaches the declaration: its gate mismatches count it (a released declaration keeps its channel).
    assert world.view(mine["id"])["risk"]["gate_mismatches"] == 1


def test_pallet_links_are_parsed_strictly() -> None:
    assert matching.parse_pallet(link(P1)) == P1
    assert matching.parse_pallet(f"https://resolver.example/gs1/00/{P1}?linkType=gs1:traceability") == P1
    assert matching.parse_pallet(link(P1[:-1] + "9")) is None  # check digit
    assert matching.parse_pallet(f"https://id.gs1.org/01/08930001000018/10/{P1}") is None  # a lot, not a pallet
    assert matching.parse_pallet("SGDECL:KT-2026-000001") is None
