"""Response shapes of the inspection service (documented in OpenAPI) and the JSON view of a gate event."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, Field

from services.inspection.matching import REASONS
from services.inspection.models import GateEvent
from services.kernel.schemas import Schema

HoldReason = Literal["no_code_read", "no_declaration", "declaration_not_cleared", "code_unverified",
                     "container_not_on_declaration", "seal_mismatch", "one_substitution_match"]  # fmt: skip


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


class TraderGateEventOut(Schema):
    """A gate event of the trader's own declaration, as its trader sees it: where the truck is and what the gate
    decided. Not the camera, the images or their digests, the OCR detail, the evidence, the plate or the gate
    key: those stay with customs (and may concern another organisation's truck)."""

    id: str = Field(description="The gate event (UUID)")
    declaration_id: str = Field(description="The trader's declaration the event was matched to")
    declaration_number: str | None = Field(description="Its registration number", examples=["KT-2026-000123"])
    lane: str = Field(description="The gate lane the truck passed", examples=["OUT-1"])
    direction: Literal["in", "out"] = Field(description="`in`: entering the control zone; `out`: leaving it")
    taken_at: dt.datetime = Field(description="When the camera saw the truck")
    decision: Literal["proceed", "hold"] = Field(description="Whether the truck may proceed or is held for customs")
    reasons: list[HoldReason] = Field(
        description="Why it is held (empty when it may proceed): no container code read, none on a live "
        "declaration, the declaration not cleared for this direction, a code read unverified (ISO 6346 check "
        "digit), a container not on the declaration, a seal not declared, a container one character off a "
        "declared one"
    )
    match: Literal["exact", "one_substitution", "qr"] = Field(
        description="How the read matched the declaration: a declared container exactly, one character off a "
        "declared container (a misread or a typo: held), or only by the declaration's QR code"
    )
    container: str | None = Field(
        description="The declared container the read matched (null for a match by QR code)", examples=["CSQU3054383"]
    )
    codes_read: list[str] = Field(
        description="The container codes the cameras read (each image's best reading)", examples=[["CSQU3054383"]]
    )
    exited: bool = Field(description="Whether this was the truck leaving the gate with the goods released")


class TraderGateEventPage(Schema):
    """A page of a declaration's gate events, newest first; pass `next_cursor` as `cursor` for the next."""

    items: list[TraderGateEventOut] = Field(description="The gate events, newest first")
    next_cursor: str | None = Field(description="Cursor of the next page, null on the last")


def trader_json(row: GateEvent) -> dict[str, Any]:
    """The trader's view of a gate event of its declaration (shape: `TraderGateEventOut`)."""
    return {
        "id": row.id,
        "declaration_id": row.declaration_id,
        "declaration_number": row.declaration_number,
        "lane": row.lane,
        "direction": row.direction,
        "taken_at": row.taken_at.isoformat(),
        "decision": row.decision,
        "reasons": [r for r in row.reasons if r in REASONS],
        "match": row.match_kind,
        "container": row.matched_container,
        # As the `gate.read` event lists them: each image's best reading.
        "codes_read": [c["code"] for r in row.reads for c in r.get("container_codes", [])[:1]],
        "exited": row.direction == "out" and row.decision == "proceed",
    }


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
