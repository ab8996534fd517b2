"""A traced export's release and gate exit reach the buyer's page (issue 15 §3 → §4), on both backends: the
traceability service records them as EPCIS events for the declaration's pallets (through the capture path, hashed,
in the ledger), once however often the declarations service's events are delivered, with the declaration number
and nothing else of the declaration."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import func, select

from services.kernel.database import unit_of_work
from services.kernel.outbox import Event, OutboxEvent
from services.traceability import crossing, tracecheck
from services.traceability.models import EpcisEvent
from tests.services.inspection.conftest import Gate, door, stencil
from tests.services.traceability.test_trace_check import P1, P2, World
from tests.support import wait_for

CODE = "CSQU3054383"  # the container of the declaration body
GATE_GLN = "8930001000995"  # SMARTGATE_TRACE_GATE_GLN's default
JSON = {"Accept": "application/json"}
HTML = {"Accept": "text/html"}


def trace(client: Any, sscc: str) -> dict[str, Any]:
    got = client.get(f"/00/{sscc}", headers=JSON)
    assert got.status_code == 200, got.text
    found: dict[str, Any] = got.json()
    return found


def crossing_events(runtime: Any) -> list[EpcisEvent]:
    with unit_of_work(runtime.read_sessions) as session:
        steps = (crossing.CUSTOMS_RELEASE, "departing")
        return list(session.scalars(select(EpcisEvent).where(EpcisEvent.biz_step.in_(steps))))


def test_a_traced_export_released_and_exited_shows_its_number_and_exit_verified(
    client: Any, keys: Any, runtime: Any, declaration_body: dict[str, Any]
) -> None:
    world = World(client, keys, runtime)
    gate = Gate(client, runtime, keys, declaration_body)
    world.harvest("LC2026A", "3000")
    world.pack(P1, {"LC2026A": "900"})
    world.pack(P2, {"LC2026A": "900"})  # on no declaration: its page names none
    body = world.body(declaration_body, "800", ssccs=[P1])
    decl = world.file(body)
    assert decl["status"] == "released"
    number = decl["number"]
    runtime.relay.drain()

    # Released: the number is on the pallet's page, no exit yet.
    released = trace(client, f"{P1}")
    assert [d["number"] for d in released["declarations"]] == [number]
    assert released["gate_exits"] == []

    # The truck leaves through the gate with the pallet: the declaration exits, the pallet departs.
    event = gate.post(door(stencil(CODE)), door("", qr=f"https://id.gs1.org/00/{P1}")).json()
    assert event["decision"] == "proceed", event

    def exited_and_verified() -> bool:
        runtime.relay.drain()
        got = trace(client, P1)
        return bool(got["gate_exits"]) and got["verified"]

    assert wait_for(exited_and_verified, 60)  # the relay, then the ledger's checkpoint: bounded, not a sleep
    assert world.view(decl["id"])["status"] == "exited"
    got = trace(client, P1)
    assert [d["number"] for d in got["declarations"]] == [number]
    assert [(g["location_gln"], g["ssccs"]) for g in got["gate_exits"]] == [(GATE_GLN, [P1])]
    by_hash = {e["event_hash"]: e for e in got["events"]}
    for fact in (got["declarations"][0], got["gate_exits"][0]):
        assert by_hash[fact["event_hash"]]["verification"]["status"] == "verified"
    assert {e["verification"]["status"] for e in got["events"]} == {"verified"}

    # The page says so, and shows nothing else of the declaration: no value, no trader, no container or truck.
    page = client.get(f"/00/{P1}?lang=en", headers=HTML).text
    assert number in page
    assert GATE_GLN in page
    stored = crossing_events(runtime)
    assert sorted(r.biz_step or "" for r in stored) == sorted([crossing.CUSTOMS_RELEASE, "departing"])
    public = json.dumps(got, ensure_ascii=False) + page + json.dumps([r.body for r in stored], ensure_ascii=False)
    item = body["items"][0]
    for secret in (
        item["customs_value"],
        body["consignor"]["name"],
        body["consignor"].get("tax_id") or body["consignor"]["name"],
        CODE,
        body["transport"]["truck_plate"],
        decl["id"],
    ):
        assert secret not in public, secret
    assert {r.recorded_by for r in stored} == {"system:traceability"}

    # A pallet on no declaration gets neither.
    other = trace(client, P2)
    assert (other["declarations"], other["gate_exits"]) == ([], [])


def test_a_replayed_step_is_not_captured_twice(
    client: Any, keys: Any, runtime: Any, declaration_body: dict[str, Any]
) -> None:
    world = World(client, keys, runtime)
    world.harvest("LC2026A", "3000")
    world.pack(P1, {"LC2026A": "900"})
    decl = world.file(world.body(declaration_body, "800", ssccs=[P1]))
    runtime.relay.drain()
    before = crossing_events(runtime)
    assert [r.biz_step for r in before] == [crossing.CUSTOMS_RELEASE]
    with unit_of_work(runtime.read_sessions) as session:
        row = session.scalars(
            select(OutboxEvent).where(OutboxEvent.type == "declaration.released", OutboxEvent.subject == decl["id"])
        ).one()
        # The same step delivered again under another bus id (a producer's retry, a replay from the stream).
        replay = Event(id="replayed-" + row.id[:20], type=row.type, subject=row.subject, payload=row.payload,
                       occurred_at=row.occurred_at)  # fmt: skip
    for _ in range(2):
        with unit_of_work(runtime.sessions) as session:
            tracecheck.on_declaration_event(session, replay, gate_gln=GATE_GLN)
    after = crossing_events(runtime)
    assert [(r.id, r.event_hash) for r in after] == [(r.id, r.event_hash) for r in before]
    with unit_of_work(runtime.read_sessions) as session:
        captured = session.scalar(
            select(func.count())
            .select_from(OutboxEvent)
            .where(OutboxEvent.type == "epcis.event_captured", OutboxEvent.subject == f"epcis:{before[0].id}")
        )
    assert captured == 1  # one ledger entry


def test_a_declaration_without_pallets_records_nothing(
    client: Any, keys: Any, runtime: Any, declaration_body: dict[str, Any]
) -> None:
    gate = Gate(client, runtime, keys, declaration_body)
    decl = gate.declare([{"number": CODE, "seals": []}])
    assert decl["status"] == "released"
    runtime.relay.drain()
    assert crossing_events(runtime) == []
