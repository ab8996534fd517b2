"""Events from the gate change declarations exactly once: mismatches raise risk, exits close released ones."""

from __future__ import annotations

import copy

import pytest

from services.declarations.models import Declaration
from services.kernel.database import unit_of_work
from services.kernel.outbox import Event, OutboxEvent, record_event

pytestmark = pytest.mark.usefixtures("raw_events")  # transport and consumer tolerance, not payloads


def _file(client, headers, body, key):
    resp = client.post("/api/v1/declarations?submit=true", json=body, headers={**headers, "Idempotency-Key": key})
    assert resp.status_code == 201, resp.text
    return resp.json()


# What every gate event carries (services/kernel/catalogue.py), beside what a test gives.
GATE = {"gate_event_id": "ge-1", "lane": "L1", "direction": "out", "camera_id": "KT-OUT-1",
        "taken_at": "2026-11-28T01:30:00Z", "declaration_number": None}  # fmt: skip
MISMATCH = {**GATE, "direction": "in", "match": "container_mismatch", "codes": []}


def _emit(runtime, type_: str, payload: dict) -> str:
    payload = {**(MISMATCH if type_ == "gate.mismatch" else GATE), **payload}
    with unit_of_work(runtime.sessions) as session:
        event_id = record_event(session, type=type_, subject=payload.get("declaration_id") or "gate", payload=payload)
    runtime.relay.drain()
    return event_id


def test_gate_mismatch_reassesses_to_red_once_even_if_redelivered(runtime, client, keys, declaration_body):
    trader, officer = keys.make("trader", "Mismatch Co"), keys.make("officer")
    filed = _file(client, trader, declaration_body, "m-1")
    assert filed["status"] == "submitted"
    assert filed["channel"] in ("yellow", "red")
    decl = client.get(f"/api/v1/declarations/{filed['id']}", headers=officer).json()  # the officer view: risk
    event_id = _emit(runtime, "gate.mismatch", {"declaration_id": decl["id"], "reasons": ["seal mismatch"]})
    assert client.get(f"/api/v1/declarations/{decl['id']}", headers=trader).json()["channel"] == "red"
    after = client.get(f"/api/v1/declarations/{decl['id']}", headers=officer).json()
    assert after["channel"] == "red"
    assert after["risk"]["gate_mismatches"] == 1
    assert after["risk"]["score"] == decl["risk"]["score"] + 100
    assert "gate_mismatch" in {r["rule"] for r in after["risk"]["reasons"]}
    # The bus delivers at least once: the same event again changes nothing.
    with unit_of_work(runtime.read_sessions) as session:
        row = session.query(OutboxEvent).filter_by(id=event_id).one()
        event = Event(id=row.id, type=row.type, subject=row.subject, payload=row.payload, occurred_at=row.occurred_at)
    runtime.bus.publish(event)
    again = client.get(f"/api/v1/declarations/{decl['id']}", headers=officer).json()
    assert again["risk"]["gate_mismatches"] == 1


def test_gate_exit_moves_released_declaration_to_exited(runtime, client, keys, declaration_body):
    trader = keys.make("trader", "Exit Co")
    decl = _file(client, trader, declaration_body, "x-1")
    with unit_of_work(runtime.sessions) as session:  # put it straight to released for this test
        row = session.get(Declaration, decl["id"])
        row.status = "released"
    _emit(runtime, "gate.exited", {"declaration_id": decl["id"], "camera_id": "KT-OUT-1"})
    history = client.get(f"/api/v1/declarations/{decl['id']}/history", headers=trader).json()
    assert history["transitions"][-1]["action"] == "exit"
    assert history["transitions"][-1]["actor"] == "gate:KT-OUT-1"


def test_exit_for_unreleased_or_unknown_declaration_is_ignored(runtime, client, keys, declaration_body):
    trader = keys.make("trader", "Early Co")
    decl = _file(client, trader, copy.deepcopy(declaration_body), "e-1")
    _emit(runtime, "gate.exited", {"declaration_id": decl["id"]})
    _emit(runtime, "gate.exited", {"declaration_id": "no-such-id"})
    assert client.get(f"/api/v1/declarations/{decl['id']}", headers=trader).json()["status"] == "submitted"
