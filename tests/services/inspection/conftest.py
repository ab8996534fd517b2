"""Fixtures of the inspection tests: door images drawn on demand, declarations in a chosen state, a posting helper."""

from __future__ import annotations

import copy
import datetime as dt
import io
import itertools
from collections.abc import Callable
from typing import Any

import pytest

from ocr.barcodes import Barcode
from ocr.reader import CodeRead, GateRead
from services.declarations import repository as declarations_repository
from services.declarations import service as declarations_service
from services.kernel.database import unit_of_work
from services.kernel.runtime import Runtime

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"
_times = itertools.count()

# From a freshly filed (submitted) declaration to each state, through the platform's own transitions.
PATHS = {
    "submitted": [],
    "cleared": ["clear"],
    "released": ["clear", "release"],
    "exited": ["clear", "release", "exit"],
    "cancelled": ["cancel"],
}


def door(text: str = "", *, seal: str | None = None, qr: str | None = None) -> bytes:
    """A PNG of a container door with `text` stencilled large, optionally a Code 128 seal tag and a QR code.

    Plain and high-contrast on purpose: these tests are about the gate's decisions, not about OCR accuracy
    (tests/ocr measures that on realistic images).
    """
    from PIL import Image, ImageDraw, ImageFont

    img = Image.new("RGB", (800, 600), (30, 60, 120))
    if text:
        ImageDraw.Draw(img).text((60, 60), text, font=ImageFont.truetype(FONT, 56), fill=(245, 245, 245))
    if seal:
        barcode = pytest.importorskip("barcode")
        from barcode.writer import ImageWriter

        buf = io.BytesIO()
        barcode.get("code128", seal, writer=ImageWriter()).write(
            buf, options={"write_text": False, "module_width": 0.3, "module_height": 10, "quiet_zone": 4}
        )
        img.paste(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"), (40, 250))
    if qr:
        import qrcode

        img.paste(qrcode.make(qr, box_size=4).get_image().convert("RGB"), (620, 420))
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


def stencil(code: str) -> str:
    """How a code is painted: owner+category, serial, check digit."""
    return f"{code[:4]} {code[4:10]} {code[10:]}"


def taken_at() -> str:
    """A distinct capture time per call (the same camera, time and images are one capture)."""
    moment = dt.datetime(2026, 11, 28, 8, 0, tzinfo=dt.timezone(dt.timedelta(hours=7)))
    return (moment + dt.timedelta(seconds=next(_times))).isoformat()


class FakeReader:
    """Stands in for the model where a test is about the API, not the reading: returns what it is told."""

    def __init__(self, code: str | None = None, status: str = "verified", barcodes: list[Barcode] | None = None):
        self.code, self.status, self.barcodes = code, status, barcodes or []
        self.calls = 0

    def read_array(self, bgr: Any, *, deadline: float | None = None) -> GateRead:
        self.calls += 1
        codes = []
        if self.code:
            c = self.code
            codes.append(CodeRead(c, self.status, 0.99, c[:4], c[3], c[4:10], c[10], None, "horizontal", 0))
        return GateRead(codes, list(self.barcodes), 0.0)


class Gate:
    """Drives the platform the way the gate and the traders do."""

    def __init__(self, client: Any, runtime: Runtime, keys: Any, body: dict[str, Any]) -> None:
        self.client, self.runtime, self.body = client, runtime, body
        self.trader = keys.make("trader", "Lao Cai Fruit Export JSC")
        self.camera = keys.make("gate")
        self.officer = keys.make("officer")

    def declare(
        self, containers: list[dict[str, Any]], status: str = "released", plate: str | None = None
    ) -> dict[str, Any]:
        """File a declaration for `containers`, bring it to `status`, and let its events reach the gate."""
        body = copy.deepcopy(self.body)
        body["containers"] = containers
        if plate:
            body["transport"]["truck_plate"] = plate
        resp = self.client.post(
            "/api/v1/declarations?submit=true",
            json=body,
            headers={**self.trader, "Idempotency-Key": f"gate-{next(_times)}"},
        )
        assert resp.status_code == 201, resp.text
        decl: dict[str, Any] = resp.json()
        for action in PATHS[status]:
            with unit_of_work(self.runtime.sessions) as session:
                row = declarations_repository.get(session, decl["id"])
                assert row is not None
                if row.status == status:
                    break
                declarations_service.transition(session, decl=row, action=action, actor="officer:test")
        self.runtime.relay.drain()
        return self.declaration(decl["id"])

    def declaration(self, decl_id: str) -> dict[str, Any]:
        """The declaration as its trader sees it now."""
        got: dict[str, Any] = self.client.get(f"/api/v1/declarations/{decl_id}", headers=self.trader).json()
        return got

    def post(
        self,
        *images: bytes,
        direction: str = "out",
        headers: dict[str, str] | None = None,
        names: list[str] | None = None,
        **form: str,
    ) -> Any:
        """POST a gate event with `images` (multipart, as a camera does)."""
        data = {"lane": "OUT-1" if direction == "out" else "IN-1", "direction": direction,
                "camera_id": f"KT-{direction.upper()}-1", "taken_at": taken_at(), **form}  # fmt: skip
        files = [("image", ((names or [])[i] if names else f"door{i}.png", img, "image/png"))
                 for i, img in enumerate(images)]  # fmt: skip
        return self.client.post(
            "/api/v1/gate/events", data=data, files=files, headers=self.camera if headers is None else headers
        )

    def outbox(self, type_: str) -> list[dict[str, Any]]:
        """Payloads of the events of `type_` written so far."""
        from sqlalchemy import select

        from services.kernel.outbox import OutboxEvent

        with unit_of_work(self.runtime.read_sessions) as session:
            rows = session.scalars(select(OutboxEvent).where(OutboxEvent.type == type_).order_by(OutboxEvent.seq))
            return [r.payload for r in rows]


@pytest.fixture
def gate(client: Any, runtime: Runtime, keys: Any, declaration_body: dict[str, Any]) -> Gate:
    """The platform with a trader, a gate camera key and an officer."""
    return Gate(client, runtime, keys, declaration_body)


@pytest.fixture
def fake_reader(runtime: Runtime, client: Any) -> Callable[..., FakeReader]:
    """Replace the model with a FakeReader for this test."""

    def install(*args: Any, **kwargs: Any) -> FakeReader:
        fake = FakeReader(*args, **kwargs)
        runtime.extras["inspection.ocr"].reader = fake
        return fake

    return install
