"""What a trader reads of the gate: the events of its own declarations, read-only, in a shape that keeps the
camera, the images, the OCR detail, the evidence and the gate key with customs; another organisation gets 404."""

from __future__ import annotations

from tests.api.support import ORG_B, assert_problem
from tests.services.inspection.conftest import door

CODE = "CSQU3054383"
TRADER_FIELDS = {"id", "declaration_id", "declaration_number", "lane", "direction", "taken_at", "decision",
                 "reasons", "match", "container", "codes_read", "exited"}  # fmt: skip


def events_of(gate, decl_id: str, headers=None, **params):
    url = f"/api/v1/gate/declarations/{decl_id}/events"
    return gate.client.get(url, params=params, headers=gate.trader if headers is None else headers)


def test_a_trader_follows_its_truck_through_the_gate(gate, fake_reader):
    decl = gate.declare([{"number": CODE, "seals": []}], status="released", plate="24C-123.45")
    fake_reader(CODE)
    entered = gate.post(door("in"), direction="in", plate="24C-123.45").json()
    left = gate.post(door("out"), direction="out", plate="24C-123.45").json()
    assert (entered["decision"], left["decision"]) == ("proceed", "proceed")

    resp = events_of(gate, decl["id"])
    assert resp.status_code == 200, resp.text
    page = resp.json()
    assert page["next_cursor"] is None
    newest, oldest = page["items"]
    assert [newest["id"], oldest["id"]] == [left["id"], entered["id"]]
    assert set(newest) == TRADER_FIELDS  # nothing else: no camera, images, reads, evidence, plate or gate key
    assert newest == {
        "id": left["id"], "declaration_id": decl["id"], "declaration_number": decl["number"], "lane": "OUT-1",
        "direction": "out", "taken_at": left["taken_at"], "decision": "proceed", "reasons": [], "match": "exact",
        "container": CODE, "codes_read": [CODE], "exited": True,
    }  # fmt: skip
    assert oldest["exited"] is False
    text = resp.text
    for secret in ("KT-OUT-1", "KT-IN-1", "24C", "/images/", left["reads"][0]["image_sha256"], "gate:"):
        assert secret not in text
    # Paged like the staff list.
    first = events_of(gate, decl["id"], limit=1).json()
    assert [e["id"] for e in first["items"]] == [left["id"]]
    second = events_of(gate, decl["id"], limit=1, cursor=first["next_cursor"]).json()
    assert [e["id"] for e in second["items"]] == [entered["id"]]


def test_a_held_truck_says_why(gate, fake_reader):
    decl = gate.declare([{"number": CODE, "seals": []}], status="submitted")
    fake_reader(CODE)
    held = gate.post(door("out"), direction="out").json()
    assert held["decision"] == "hold"
    (event,) = events_of(gate, decl["id"]).json()["items"]
    assert (event["decision"], event["reasons"], event["exited"]) == ("hold", ["declaration_not_cleared"], False)


def test_another_organisation_and_other_roles_read_nothing(gate, fake_reader, keys):
    decl = gate.declare([{"number": CODE, "seals": []}], status="released")
    fake_reader(CODE)
    gate.post(door("out"), direction="out")
    assert_problem(events_of(gate, decl["id"], keys.make("trader", ORG_B)), 404)  # not 403: nothing is disclosed
    assert_problem(events_of(gate, "00000000-0000-4000-8000-000000000000"), 404)
    assert_problem(events_of(gate, "not-an-id"), 404)
    assert_problem(events_of(gate, decl["id"], gate.officer), 403)  # staff read /api/v1/gate/events
    assert_problem(events_of(gate, decl["id"], gate.camera), 403)
    assert_problem(events_of(gate, decl["id"], {}), 401)
    # Read-only.
    assert gate.client.post(f"/api/v1/gate/declarations/{decl['id']}/events", headers=gate.trader).status_code == 405


def test_gate_events_name_the_matched_declarations_organisation(gate, fake_reader, runtime):
    decl = gate.declare([{"number": CODE, "seals": []}], status="released")
    fake_reader(CODE)
    gate.post(door("out"), direction="out")
    fake_reader("MSKU1234565")  # on no declaration
    gate.post(door("stray"), direction="out")
    reads = gate.outbox("gate.read")
    assert [r["organisation_id"] for r in reads] == [decl["organisation_id"], None]
    assert gate.outbox("gate.exited")[0]["organisation_id"] == decl["organisation_id"]
