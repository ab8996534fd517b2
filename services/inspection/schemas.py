"""Response shapes of the inspection service (documented in OpenAPI) and the JSON view of a gate event."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel

from services.inspection.models import GateEvent
from services.kernel.schemas import Schema


class CodeReadOut(BaseModel):
    """One container code read (see ocr.reader.CodeRead); only "verified" is trusted."""

    code: str
    status: Literal["verified", "corrected", "check_digit_computed", "failed"]
    confidence: float
    owner: str
    category: str
    serial: str
    check_digit: str
    size_type: str | None
    layout: str
    changes: int


class BarcodeOut(BaseModel):
    """A barcode (seal) or QR code (declaration key) read."""

    type: str
    data: str


class ImageReadOut(BaseModel):
    """What was read from one image; a `failed` one was not read (`reason`: `deadline`, the gate event's OCR
    deadline passed first, or `error`, the reader failed) and contributes nothing to the decision."""

    image_sha256: str
    filename: str
    container_codes: list[CodeReadOut]
    barcodes: list[BarcodeOut]
    seconds: float
    status: Literal["read", "failed"] = "read"
    reason: Literal["deadline", "error"] | None = None


class MatchOut(BaseModel):
    """What the reads were matched to."""

    kind: Literal["exact", "one_substitution", "qr", "none"]
    declaration_id: str | None
    declaration_number: str | None
    container: str | None


class GateEventOut(Schema):
    """A gate event: the capture, the reads, the match and the decision."""

    id: str
    lane: str
    direction: Literal["in", "out"]
    camera_id: str
    taken_at: dt.datetime
    received_at: dt.datetime
    plate: str | None
    decision: Literal["proceed", "hold"]
    reasons: list[str]
    container_number: str | None
    match: MatchOut
    reads: list[ImageReadOut]
    evidence: dict[str, Any]
    images: list[str]


class GateEventPage(BaseModel):
    """A page of gate events, newest first."""

    items: list[GateEventOut]
    next_cursor: str | None


def to_json(row: GateEvent) -> dict[str, Any]:
    """The API view of a stored gate event (shape: `GateEventOut`)."""
    return {
        "id": row.id,
        "lane": row.lane,
        "direction": row.direction,
        "camera_id": row.camera_id,
        "taken_at": row.taken_at.isoformat(),
        "received_at": row.received_at.isoformat(),
        "plate": row.plate,
        "decision": row.decision,
        "reasons": row.reasons,
        "container_number": row.container_number,
        "match": {
            "kind": row.match_kind,
            "declaration_id": row.declaration_id,
            "declaration_number": row.declaration_number,
            "container": row.matched_container,
        },
        # Events stored before reads had a status were all read.
        "reads": [{"status": "read", **r} for r in row.reads],
        "evidence": row.evidence,
        "images": [f"/api/v1/gate/events/{row.id}/images/{sha}" for sha in row.image_sha256s],
    }
