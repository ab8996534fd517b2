"""Officers resolve gate holds: release (the truck goes on) or escalate (physical inspection), once, with a reason,
and what the declarations service makes of each."""

from __future__ import annotations

from typing import Any

from ocr.barcodes import Barcode
from tests.api.support import assert_problem
from tests.services.inspection.conftest import Gate, door

CODE = "CSQU3054383"
SEAL = "CN1234567"
UNKNOWN = "0192f0c4-7d55-7a3e-9c1b-3b8f4e2a9d10"


def held_at_exit(gate: Gate, fake_reader: Any, status: str = "released") -> tuple[dict[str, Any], dict[str, Any]]:
    """A declaration in `status` whose truck shows a seal it did not declare on the way out: held."""
    decl = gate.declare([{"number": CODE, "seals": [SEAL]}], status=status)
    fake_reader(CODE, barcodes=[Barcode("CODE128", "CN7654321")])
    event = gate.post(door("X"), direction="out").json()
    assert (event["decision"], event["reasons"]) == ("hold", ["seal_mismatch"])
    assert event["resolution"] is None
    gate.runtime.relay.drain()
    return decl, event


def resolve(gate: Gate, event_id: str, body: Any, headers: dict[str, str] | None = None, **kw: Any) -> Any:
    return gate.client.post(
        f"/api/v1/gate/events/{event_id}/resolution",
        json=body,
        headers=gate.officer if headers is None else headers,
        **kw,
    )


def history(gate: Gate, decl_id: str) -> list[dict[str, Any]]:
    got = gate.client.get(f"/api/v1/declarations/{decl_id}/history", headers=gate.officer)
    assert got.status_code == 200, got.text
    transitions: list[dict[str, Any]] = got.json()["transitions"]
    return transitions


def test_release_at_the_exit_lets_the_truck_leave_and_keeps_the_channel(gate, fake_reader):
    decl, event = held_at_exit(gate, fake_reader)
    channel = gate.client.get(f"/api/v1/declarations/{decl['id']}", headers=gate.officer).json()["channel"]
    reason = "Seal CN7654321 is the replacement seal recorded in the seal log"
    resp = resolve(gate, event["id"], {"action": "release", "reason": reason})
    assert resp.status_code == 201, resp.text
    assert resp.headers["location"] == f"/api/v1/gate/events/{event['id']}"
    resolution = resp.json()["resolution"]
    assert (resolution["action"], resolution["reason"]) == ("release", reason)
    assert resolution["actor"].startswith("officer:")
    # Stored: reading the event again shows it, and so does the officers' list of holds.
    again = gate.client.get(f"/api/v1/gate/events/{event['id']}", headers=gate.officer).json()
    assert again["resolution"] == resolution
    listed = gate.client.get("/api/v1/gate/events?decision=hold", headers=gate.officer).json()["items"]
    assert [e["resolution"] for e in listed if e["id"] == event["id"]] == [resolution]

    [released] = gate.outbox("gate.hold_released")
    assert (released["gate_event_id"], released["declaration_id"], released["reason"]) == (event["id"], decl["id"],
                                                                                           reason)  # fmt: skip
    assert released["actor"] == "customs officer"  # outside customs, staff by role only (the ledger is readable)
    assert released["reasons"] == ["seal_mismatch"]
    # As it would have without the hold: the released goods leave.
    assert [e["gate_event_id"] for e in gate.outbox("gate.exited")] == [event["id"]]
    gate.runtime.relay.drain()
    after = gate.client.get(f"/api/v1/declarations/{decl['id']}", headers=gate.officer).json()
    assert after["status"] == "exited"
    assert after["channel"] == channel
    steps = [(t["action"], t["from_status"], t["to_status"]) for t in history(gate, decl["id"])]
    assert steps[-2:] == [("gate_release", "released", "released"), ("exit", "released", "exited")]
    [note] = [t for t in history(gate, decl["id"]) if t["action"] == "gate_release"]
    assert reason in note["reason"]
    assert "OUT-1" in note["reason"]


def test_release_of_an_entry_hold_changes_no_state(gate, fake_reader):
    decl = gate.declare([{"number": CODE, "seals": [SEAL]}], status="submitted")
    fake_reader(CODE, barcodes=[Barcode("CODE128", "CN7654321")])
    event = gate.post(door("X"), direction="in").json()
    assert event["decision"] == "hold"
    gate.runtime.relay.drain()
    before = gate.client.get(f"/api/v1/declarations/{decl['id']}", headers=gate.officer).json()
    assert resolve(gate, event["id"], {"action": "release", "reason": "Niêm phong đã kiểm tra"}).status_code == 201
    assert gate.outbox("gate.exited") == []
    gate.runtime.relay.drain()
    after = gate.client.get(f"/api/v1/declarations/{decl['id']}", headers=gate.officer).json()
    assert (after["status"], after["channel"]) == (before["status"], before["channel"])
    assert history(gate, decl["id"])[-1]["action"] == "gate_release"


def test_escalate_sends_released_goods_to_physical_inspection_in_red(gate, fake_reader):
    decl, event = held_at_exit(gate, fake_reader)
    reason = "Seal number does not match the manifest"
    resp = resolve(gate, event["id"], {"action": "escalate", "reason": reason})
    assert resp.status_code == 201, resp.text
    [escalated] = gate.outbox("gate.hold_escalated")
    assert (escalated["action"], escalated["declaration_id"]) == ("escalate", decl["id"])
    assert gate.outbox("gate.exited") == []
    gate.runtime.relay.drain()
    after = gate.client.get(f"/api/v1/declarations/{decl['id']}", headers=gate.officer).json()
    assert (after["status"], after["channel"]) == ("inspection", "red")
    last = history(gate, decl["id"])[-1]
    assert (last["action"], last["from_status"], last["to_status"]) == ("gate_escalate", "released", "inspection")
    assert reason in last["reason"]
    # In the review queue, and the trader is told as for any inspection order.
    queue = gate.client.get("/api/v1/review/queue?assigned=all", headers=gate.officer).json()
    assert decl["id"] in [d["id"] for d in queue]
    assert gate.outbox("declaration.inspection_ordered")[-1]["declaration_id"] == decl["id"]
    # The gate now knows the goods are not released: the same truck is held on its next pass.
    again = gate.post(door("Y"), direction="out").json()
    assert "declaration_not_cleared" in again["reasons"]


def test_escalating_a_declaration_in_inspection_only_turns_it_red(gate, fake_reader, runtime):
    from services.declarations import repository as declarations_repository
    from services.declarations import service as declarations_service
    from services.kernel.database import unit_of_work

    decl = gate.declare([{"number": CODE, "seals": [SEAL]}], status="submitted")
    with unit_of_work(runtime.sessions) as session:
        row = declarations_repository.get(session, decl["id"])
        declarations_service.transition(session, decl=row, action="inspect", actor="officer:test")
    runtime.relay.drain()
    fake_reader(CODE, barcodes=[Barcode("CODE128", "CN7654321")])
    event = gate.post(door("X"), direction="in").json()
    assert event["decision"] == "hold"
    assert resolve(gate, event["id"], {"action": "escalate", "reason": "seal"}).status_code == 201
    runtime.relay.drain()
    after = gate.client.get(f"/api/v1/declarations/{decl['id']}", headers=gate.officer).json()
    assert (after["status"], after["channel"]) == ("inspection", "red")
    last = history(gate, decl["id"])[-1]
    assert (last["action"], last["from_status"], last["to_status"]) == ("gate_escalate", "inspection", "inspection")


def test_a_hold_is_resolved_once(gate, fake_reader, keys):
    _, event = held_at_exit(gate, fake_reader)
    assert resolve(gate, event["id"], {"action": "escalate", "reason": "first"}).status_code == 201
    supervisor = keys.make("supervisor")
    for body in ({"action": "release", "reason": "second"}, {"action": "escalate", "reason": "first"}):
        problem = assert_problem(resolve(gate, event["id"], body, headers=supervisor), 409)
        assert problem["code"] == "gate.hold_resolved"
        assert (problem["resolution"]["action"], problem["resolution"]["reason"]) == ("escalate", "first")
    assert len(gate.outbox("gate.hold_escalated")) == 1
    assert gate.outbox("gate.hold_released") == []


def test_bad_input_roles_and_unknown_holds(gate, fake_reader, keys):
    _, event = held_at_exit(gate, fake_reader)
    path = event["id"]
    problem = assert_problem(resolve(gate, path, {"action": "release"}), 422)
    assert [(e["pointer"], e["code"]) for e in problem["errors"]] == [("/reason", "required")]
    problem = assert_problem(resolve(gate, path, {"action": "release", "reason": "   "}), 422)
    assert [(e["pointer"], e["code"]) for e in problem["errors"]] == [("/reason", "too_short")]
    problem = assert_problem(resolve(gate, path, {"action": "wave_through", "reason": "x"}), 422)
    assert [e["pointer"] for e in problem["errors"]] == ["/action"]
    problem = assert_problem(resolve(gate, path, {"action": "release", "reason": "x", "by": "me"}), 422)
    assert problem["errors"][0]["code"] == "unknown_field"
    assert_problem(resolve(gate, path, {"action": "release", "reason": "x\u0000"}), 422)
    assert_problem(resolve(gate, path, {"action": "release", "reason": "x" * 1001}), 422)
    assert_problem(resolve(gate, UNKNOWN, {"action": "release", "reason": "x"}), 404)
    assert_problem(resolve(gate, "nope", {"action": "release", "reason": "x"}), 404)
    for role in ("trader", "gate", "admin", "treasury"):
        headers = gate.trader if role == "trader" else keys.make(role)
        assert_problem(resolve(gate, path, {"action": "release", "reason": "x"}, headers=headers), 403)
    assert_problem(resolve(gate, path, {"action": "release", "reason": "x"}, headers={}), 401)
    # Nothing of the above was recorded.
    assert gate.client.get(f"/api/v1/gate/events/{path}", headers=gate.officer).json()["resolution"] is None
    assert gate.outbox("gate.hold_released") == []
    # A supervisor resolves too; a truck that proceeded has no hold to resolve.
    assert (
        resolve(gate, path, {"action": "release", "reason": "ok"}, headers=keys.make("supervisor")).status_code == 201
    )
    fake_reader(CODE)
    proceeded = gate.post(door("Z"), direction="in").json()
    assert proceeded["decision"] == "proceed", proceeded
    problem = assert_problem(resolve(gate, proceeded["id"], {"action": "release", "reason": "x"}), 409)
    assert problem["code"] == "gate.not_held"
