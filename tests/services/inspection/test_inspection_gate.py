"""Gate decisions with the real OCR model: proceed, each hold reason, and what declarations make of them."""

from __future__ import annotations

from ocr import iso6346
from tests.services.inspection.conftest import door, stencil

CODE = "CSQU3054383"
SEAL = "CN1234567"


def one_letter_away(code: str) -> str:
    """A valid code one substitution from `code`: an owner letter swapped for the one 11 apart in ISO 6346 values
    (the check digit stays right, so only the gate's distance check can tell them apart)."""
    for i in range(3):
        for letter in "ABCDEFGHIJKLMNOPQRSTUVWXYZ":
            other = code[:i] + letter + code[i + 1 :]
            if other != code and iso6346.is_valid(other):
                return other
    raise AssertionError("no neighbour")


def test_released_declaration_proceeds_out_then_exits(gate):
    decl = gate.declare([{"number": CODE, "size_type": "22G1", "seals": [SEAL]}], status="released")
    qr = f"SGDECL:{decl['number']};sha256={decl['body_sha256']}"
    resp = gate.post(door(stencil(CODE), seal=SEAL, qr=qr), direction="out", plate="24C-123.45")
    assert resp.status_code == 201, resp.text
    event = resp.json()
    assert (event["decision"], event["reasons"]) == ("proceed", [])
    assert event["match"] == {"kind": "exact", "declaration_id": decl["id"], "declaration_number": decl["number"],
                              "container": CODE}  # fmt: skip
    read = event["reads"][0]
    assert read["container_codes"][0]["code"] == CODE
    assert read["container_codes"][0]["status"] == "verified"
    assert {"type": "CODE128", "data": SEAL} in read["barcodes"]
    assert event["evidence"]["qr"] == {"number": decl["number"], "body_sha256": decl["body_sha256"],
                                       "body_current": True}  # fmt: skip
    assert event["evidence"]["plate_matches"] is True
    assert event["plate"] == "24C-123.45"
    assert resp.headers["location"] == f"/api/v1/gate/events/{event['id']}"

    [read_event] = gate.outbox("gate.read")
    assert read_event["decision"] == "proceed"
    assert read_event["codes"] == [{"code": CODE, "status": "verified"}]
    assert read_event["image_sha256s"] == [read["image_sha256"]]
    assert gate.outbox("gate.mismatch") == []
    [exited] = gate.outbox("gate.exited")
    assert (exited["declaration_id"], exited["camera_id"]) == (decl["id"], "KT-OUT-1")

    # Through the relay, the declarations service closes the declaration; the gate's read model follows.
    gate.runtime.relay.drain()
    assert gate.declaration(decl["id"])["status"] == "exited"
    history = gate.client.get(f"/api/v1/declarations/{decl['id']}/history", headers=gate.trader).json()
    assert history["transitions"][-1]["actor"] == "gate:KT-OUT-1"

    # The image is kept under its digest; officers can fetch it, the gate can list and show the event.
    image = gate.client.get(event["images"][0], headers=gate.officer)
    assert image.status_code == 200
    assert image.headers["content-type"] == "image/png"
    assert image.content == door(stencil(CODE), seal=SEAL, qr=qr)
    shown = gate.client.get(f"/api/v1/gate/events/{event['id']}", headers=gate.camera).json()
    assert shown == event


def test_a_registered_declaration_may_enter_but_not_leave(gate):
    decl = gate.declare([{"number": CODE, "seals": []}], status="submitted")
    image = door(stencil(CODE))
    entering = gate.post(image, direction="in").json()
    assert (entering["decision"], entering["reasons"]) == ("proceed", [])
    assert gate.outbox("gate.exited") == []

    leaving = gate.post(image, direction="out").json()
    assert (leaving["decision"], leaving["reasons"]) == ("hold", ["declaration_not_cleared"])
    [mismatch] = gate.outbox("gate.mismatch")
    assert mismatch["declaration_id"] == decl["id"]
    assert mismatch["reasons"] == ["declaration_not_cleared"]
    # The declarations service raises the declaration's risk: reassessed into the red channel.
    gate.runtime.relay.drain()
    after = gate.client.get(f"/api/v1/declarations/{decl['id']}", headers=gate.officer).json()
    assert after["risk"]["gate_mismatches"] == 1
    assert after["channel"] == "red"


def test_unknown_container_is_held_without_declaration(gate):
    event = gate.post(door(stencil(CODE))).json()
    assert (event["decision"], event["reasons"]) == ("hold", ["no_declaration"])
    assert event["match"]["kind"] == "none"
    assert event["container_number"] == CODE
    assert gate.outbox("gate.mismatch") == []  # no declaration to raise the risk of
    assert len(gate.outbox("gate.read")) == 1


def test_code_without_check_digit_is_unverified_and_held(gate):
    gate.declare([{"number": CODE, "seals": []}], status="released")
    event = gate.post(door(f"{CODE[:4]} {CODE[4:10]}")).json()
    assert event["reads"][0]["container_codes"][0]["status"] != "verified"
    assert (event["decision"], event["reasons"]) == ("hold", ["code_unverified"])
    assert event["match"]["kind"] == "exact"
    # A camera that could not verify a code says nothing against the declaration.
    assert gate.outbox("gate.mismatch") == []
    assert gate.outbox("gate.exited") == []


def test_one_substitution_match_is_flagged_not_trusted(gate):
    declared = one_letter_away(CODE)
    decl = gate.declare([{"number": declared, "seals": []}], status="released")
    event = gate.post(door(stencil(CODE))).json()
    assert event["decision"] == "hold"
    assert event["reasons"] == ["one_substitution_match"]
    assert event["match"] == {"kind": "one_substitution", "declaration_id": decl["id"],
                              "declaration_number": decl["number"], "container": declared}  # fmt: skip
    [mismatch] = gate.outbox("gate.mismatch")
    assert (mismatch["declaration_id"], mismatch["match"]) == (decl["id"], "one_substitution")
    assert gate.outbox("gate.exited") == []


def test_seal_that_was_not_declared_holds_the_truck(gate):
    decl = gate.declare([{"number": CODE, "seals": [SEAL]}], status="released")
    event = gate.post(door(stencil(CODE), seal="CN7654321")).json()
    assert (event["decision"], event["reasons"]) == ("hold", ["seal_mismatch"])
    assert event["evidence"]["undeclared_seals"] == ["CN7654321"]
    assert [m["declaration_id"] for m in gate.outbox("gate.mismatch")] == [decl["id"]]


def test_qr_names_a_declaration_whose_container_was_not_read(gate):
    decl = gate.declare([{"number": "MSCU5605860", "seals": []}], status="released")
    event = gate.post(door(stencil(CODE), qr=f"SGDECL:{decl['number']}")).json()
    assert (event["decision"], event["reasons"]) == ("hold", ["container_not_on_declaration"])
    assert (event["match"]["kind"], event["match"]["declaration_id"]) == ("qr", decl["id"])
    assert [m["declaration_id"] for m in gate.outbox("gate.mismatch")] == [decl["id"]]


def test_blank_image_has_no_code(gate):
    event = gate.post(door("")).json()
    assert (event["decision"], event["reasons"], event["container_number"]) == ("hold", ["no_code_read"], None)
