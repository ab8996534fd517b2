"""A hostile truck cannot starve the gate: pixel caps from the header, fair lanes, and the per-event deadline."""

from __future__ import annotations

import io
import threading
from typing import Any

from PIL import Image

from ocr.reader import GateRead
from tests.api.support import assert_problem
from tests.services.inspection.conftest import FakeReader, door
from tests.support import wait_for

CODE = "CSQU3054383"


def flat_png(width: int, height: int) -> bytes:
    """A one-colour PNG: tens of kB on disk, width x height pixels once decoded (the audit's bomb)."""
    out = io.BytesIO()
    Image.new("RGB", (width, height), (30, 60, 120)).save(out, format="PNG", optimize=True)
    return out.getvalue()


class HeldReader(FakeReader):
    """Reads normal doors at once; holds every image larger than a door (the hostile ones) until released."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.held = threading.Event()
        self.release = threading.Event()
        self.deadlines: list[float | None] = []
        self.shapes: list[tuple[int, ...]] = []

    def read_array(self, bgr: Any, *, deadline: float | None = None) -> GateRead:
        if bgr.shape[0] > 600:
            self.held.set()
            self.deadlines.append(deadline)
            self.shapes.append(bgr.shape)
            assert self.release.wait(60), "the test did not release the reader"
            return GateRead([], [], 0.0)
        return super().read_array(bgr, deadline=deadline)


def post_in_background(gate: Any, *images: bytes, **form: str) -> tuple[threading.Thread, dict[str, Any]]:
    """POST a gate event from another thread; the response lands in the returned dict under "resp"."""
    result: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: result.update(resp=gate.post(*images, **form)), daemon=True)
    thread.start()
    return thread, result


def test_a_6000x6600_png_is_refused_from_its_header(gate, fake_reader):
    fake = fake_reader(CODE)
    bomb = flat_png(6000, 6600)
    assert len(bomb) < 300_000  # a small upload...
    problem = assert_problem(gate.post(door("X"), bomb, names=["front.png", "bomb.png"]), 413)
    assert problem["code"] == "image.too_large"
    assert problem["detail"].startswith("bomb.png: 6000x6600 pixels")
    assert problem["errors"][0]["pointer"] == "/image/1"
    # ...refused before any image was decoded or read, and nothing was recorded.
    assert fake.calls == 0
    assert gate.outbox("gate.read") == []


def test_the_pixels_of_one_event_are_capped(gate, fake_reader, runtime):
    fake = fake_reader(CODE)
    runtime.extras["inspection.ocr"].max_event_pixels = 700_000  # one 800x600 door fits, two do not
    problem = assert_problem(gate.post(door("A"), door("B")), 413)
    assert problem["code"] == "images.too_large"
    assert fake.calls == 0
    assert gate.post(door("A")).status_code == 201


def test_a_lane_flooded_with_large_images_does_not_hold_up_another_lane(gate, runtime):
    pool = runtime.extras["inspection.ocr"]
    # Six images each just under the per-image cap (15.6 Mpx), over the event cap together: raised here so that
    # they are decoded and read, which is the case the scheduler is for.
    pool.max_event_pixels = 100_000_000
    pool.deadline_seconds = 120  # this test is about fairness; the deadline has its own test
    reader = HeldReader(CODE)
    pool.reader = reader
    hostile = flat_png(4000, 3900)
    lane_a, result = post_in_background(gate, *[hostile] * 6, direction="in", lane="IN-1")
    try:
        assert reader.held.wait(60)
        # Lane A holds one worker with its first image and has five more queued: lane B's truck is read and
        # answered on the other worker meanwhile.
        normal = gate.post(door("B"), direction="in", lane="IN-2")
        assert normal.status_code == 201, normal.text
        assert normal.json()["reads"][0]["container_codes"][0]["code"] == CODE
        assert "resp" not in result
        assert pool.pool.pending("IN-1") == 6
    finally:
        reader.release.set()
        lane_a.join(120)
    flooded = result["resp"]
    assert flooded.status_code == 201, flooded.text
    reads = flooded.json()["reads"]
    assert [r["status"] for r in reads] == ["read"] * 6
    # The images were reduced while decoding: OCR never saw 4000 px.
    assert reader.shapes == [(1560, 1600, 3)] * 6


def test_images_not_read_by_the_deadline_are_reported_failed(gate, runtime):
    pool = runtime.extras["inspection.ocr"]
    pool.deadline_seconds = 1.0
    reader = HeldReader(CODE)
    pool.reader = reader
    # A normal door first, then three larger images that the reader holds.
    large = flat_png(1200, 900)
    resp = gate.post(door("X"), large, large, large, direction="in", lane="IN-3")
    try:
        assert resp.status_code == 201, resp.text
        event = resp.json()
        statuses = [(r["status"], r.get("reason")) for r in event["reads"]]
        # The door was read; the first large image was being read when the deadline passed (the reader was
        # given that deadline and its result is ignored), the last two never got their turn.
        assert statuses == [("read", None)] + [("failed", "deadline")] * 3
        assert event["reads"][1]["container_codes"] == []
        assert len(reader.deadlines) == 1
        assert reader.deadlines[0] is not None
        # The images are kept for the officer all the same.
        assert gate.client.get(event["images"][1], headers=gate.officer).status_code == 200
    finally:
        reader.release.set()
    # The abandoned read ends and frees the lane: the next truck on it is read normally.
    assert wait_for(lambda: pool.pool.pending("IN-3") == 0, 60)
    again = gate.post(door("Y"), direction="in", lane="IN-3")
    assert [r["status"] for r in again.json()["reads"]] == ["read"]


class BrokenReader:
    """A reader that crashes (a bug, or an image that trips the model)."""

    def read_array(self, bgr: Any, *, deadline: float | None = None) -> GateRead:
        raise RuntimeError("model exploded")


def test_a_crashing_reader_is_a_failed_read_not_a_500(gate, runtime):
    runtime.extras["inspection.ocr"].reader = BrokenReader()
    resp = gate.post(door("X"))
    assert resp.status_code == 201, resp.text
    event = resp.json()
    assert [(r["status"], r["reason"]) for r in event["reads"]] == [("failed", "error")]
    assert (event["decision"], event["reasons"]) == ("hold", ["no_code_read"])
