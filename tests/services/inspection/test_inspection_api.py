"""The gate events API: validation, roles, retries, listing, images, and OCR kept off the event loop."""

from __future__ import annotations

import threading

from tests.api.support import assert_problem
from tests.services.inspection.conftest import door, taken_at

CODE = "CSQU3054383"
JPEG_HEADER = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"


def test_corrupt_image_is_a_422_naming_the_file(gate, fake_reader):
    fake = fake_reader(CODE)
    resp = gate.post(door("X"), JPEG_HEADER + b"\x00garbage" * 50, names=["front.png", "rear.jpg"])
    problem = assert_problem(resp, 422)
    assert problem["detail"].startswith("rear.jpg: ")
    assert problem["errors"][0]["code"] == "image.invalid"
    assert gate.outbox("gate.read") == []
    assert fake.calls <= 1  # the good image may have been read alongside; nothing was recorded


def test_non_image_is_refused_before_any_read(gate, fake_reader):
    fake = fake_reader(CODE)
    problem = assert_problem(gate.post(b"%PDF-1.7 not a photo", names=["scan.pdf"]), 422)
    assert "scan.pdf" in problem["detail"]
    assert fake.calls == 0


def test_too_many_images_and_naive_time_are_422(gate, fake_reader):
    fake_reader(CODE)
    assert_problem(gate.post(*[door("X")] * 7), 422)
    problem = assert_problem(gate.post(door("X"), taken_at="2026-11-28T08:00:00"), 422)
    assert "UTC offset" in problem["detail"]
    problem = assert_problem(gate.post(door("X"), direction="sideways"), 422)
    assert problem["errors"][0]["pointer"] == "/direction"
    assert_problem(gate.client.post("/api/v1/gate/events", data={"lane": "IN-1"}, headers=gate.camera), 422)


def test_only_gate_keys_post_and_only_officers_see_images(gate, fake_reader):
    fake_reader(CODE)
    assert_problem(gate.post(door("X"), headers=gate.trader), 403)
    assert_problem(gate.post(door("X"), headers=gate.officer), 403)
    assert_problem(gate.post(door("X"), headers={}), 401)
    event = gate.post(door("X")).json()
    assert_problem(gate.client.get("/api/v1/gate/events", headers=gate.trader), 403)
    assert gate.client.get("/api/v1/gate/events", headers=gate.officer).status_code == 200
    assert_problem(gate.client.get(event["images"][0], headers=gate.camera), 403)
    assert gate.client.get(event["images"][0], headers=gate.officer).status_code == 200
    assert_problem(gate.client.get(f"/api/v1/gate/events/{event['id']}/images/{'0' * 64}", headers=gate.officer), 404)
    assert_problem(gate.client.get("/api/v1/gate/events/nope", headers=gate.officer), 404)


def test_a_retried_capture_returns_the_first_event_and_publishes_nothing_again(gate, fake_reader):
    fake = fake_reader(CODE)
    form = {"taken_at": taken_at()}
    first = gate.post(door("A"), **form)
    again = gate.post(door("A"), **form)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert fake.calls == 1
    assert len(gate.outbox("gate.read")) == 1


def test_list_filters_and_pages_newest_first(gate, fake_reader):
    decl = gate.declare([{"number": CODE, "seals": []}], status="released")
    fake_reader(CODE)
    ids = [gate.post(door(str(i)), direction="in").json()["id"] for i in range(3)]
    fake_reader("MSCU5605860")
    held = gate.post(door("held")).json()
    assert held["decision"] == "hold"
    client, officer = gate.client, gate.officer

    page = client.get("/api/v1/gate/events?limit=2", headers=officer).json()
    assert [e["id"] for e in page["items"]] == [held["id"], ids[2]]
    rest = client.get(f"/api/v1/gate/events?limit=2&cursor={page['next_cursor']}", headers=officer).json()
    assert [e["id"] for e in rest["items"]] == [ids[1], ids[0]]
    assert rest["next_cursor"] is None

    holds = client.get("/api/v1/gate/events?decision=hold", headers=officer).json()["items"]
    assert [e["id"] for e in holds] == [held["id"]]
    by_decl = client.get(f"/api/v1/gate/events?declaration_id={decl['id']}", headers=officer).json()["items"]
    assert {e["id"] for e in by_decl} == set(ids)
    by_container = client.get("/api/v1/gate/events?container=mscu 560586 0", headers=officer).json()["items"]
    assert [e["id"] for e in by_container] == [held["id"]]
    by_lane = client.get("/api/v1/gate/events?lane=IN-1&direction=in", headers=officer).json()["items"]
    assert len(by_lane) == 3
    assert_problem(client.get("/api/v1/gate/events?cursor=bogus", headers=officer), 422)


class BlockingReader:
    """A reader that holds its worker until released: stands in for one very slow image."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def read_array(self, bgr, *, deadline=None):  # type: ignore[no-untyped-def]
        from ocr.reader import GateRead

        self.entered.set()
        assert self.release.wait(30), "test did not release the reader"
        return GateRead([], [], 0.0)


def test_a_slow_read_blocks_neither_health_checks_nor_other_writes(gate, runtime):
    slow = BlockingReader()
    runtime.extras["inspection.ocr"].reader = slow
    result: dict[str, object] = {}
    poster = threading.Thread(target=lambda: result.update(resp=gate.post(door("slow"))))
    poster.start()
    try:
        assert slow.entered.wait(30)
        # While the image is being read: the event loop answers, and the database takes other writes
        # (the gate request does not hold SQLite's writer lock through OCR).
        assert gate.client.get("/healthz").json() == {"status": "ok"}
        decl = gate.declare([{"number": CODE, "seals": []}], status="submitted")
        assert decl["status"] == "submitted"
        assert "resp" not in result
    finally:
        slow.release.set()
        poster.join(30)
    resp = result["resp"]
    assert resp.status_code == 201  # type: ignore[attr-defined]
    assert resp.json()["reasons"] == ["no_code_read"]  # type: ignore[attr-defined]


def test_out_of_range_times_blank_plates_and_nul_are_4xx_not_500(gate, fake_reader):
    fake_reader(CODE)
    for when in ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-05:00"):
        problem = assert_problem(gate.post(door("X"), taken_at=when), 422)
        assert "out of range" in problem["detail"]
    assert_problem(gate.post(door("X"), plate="   "), 422)
    assert_problem(gate.post(door("X"), plate="AB\x00C"), 422)
    client, officer = gate.client, gate.officer
    assert_problem(client.get("/api/v1/gate/events?declaration_id=%00", headers=officer), 422)
    assert_problem(client.get("/api/v1/gate/events/%00abc", headers=officer), 404)
    assert_problem(client.get("/api/v1/gate/events/%00abc/images/" + "0" * 64, headers=officer), 404)
    import base64
    import json

    for forged in (["0001-01-01T00:30:00+01:00", "x"], ["2026-11-28T08:00:00+00:00", "a\x00b"]):
        cursor = base64.urlsafe_b64encode(json.dumps(forged).encode()).decode().rstrip("=")
        assert_problem(client.get(f"/api/v1/gate/events?cursor={cursor}", headers=officer), 422)


def test_an_unwritable_image_store_is_503_and_records_no_event(gate, fake_reader, runtime):
    from tests.support import leftovers, make_unwritable

    fake_reader(CODE)
    make_unwritable(runtime.settings.var_dir / "gate-images")
    problem = assert_problem(gate.post(door("A")), 503)
    assert problem["code"] == "storage.unavailable"
    assert gate.outbox("gate.read") == []
    assert gate.client.get("/api/v1/gate/events", headers=gate.officer).json()["items"] == []
    assert leftovers(runtime.settings.var_dir) == []
