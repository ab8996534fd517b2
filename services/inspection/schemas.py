"""Response shapes of the inspection service (documented in OpenAPI) and the JSON view of a gate event."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, Field

from services.inspection.matching import REASONS
from services.inspection.models import GateEvent, GateHoldResolution
from services.kernel.schemas import InputSchema, Schema

HoldReason = Literal["no_code_read", "no_declaration", "declaration_not_cleared", "code_unverified",
                     "container_not_on_declaration", "seal_mismatch", "one_substitution_match"]  # fmt: skip


class CodeReadOut(BaseModel):
    """One container code read (see ocr.reader.CodeRead); only "verified" is trusted."""

    code: str = Field(description="The ISO 6346 container number read (11 characters).", examples=["CSQU3054383"])
    status: Literal["verified", "corrected", "check_digit_computed", "failed"] = Field(
        description="`verified`: read as printed, check digit matches; `corrected`: look-alike characters (O/0, "
        "I/1, ...) substituted to make the check digit match; `check_digit_computed`: the check digit was not "
        "read and was computed; `failed`: no valid code."
    )
    confidence: float = Field(description="The reader's confidence, 0 to 1.", examples=[0.97])
    owner: str = Field(description="Owner code and category letter (first 4 characters).", examples=["CSQU"])
    category: str = Field(description="Equipment category letter: U (freight container), J or Z.", examples=["U"])
    serial: str = Field(description="The 6-digit serial number.", examples=["305438"])
    check_digit: str = Field(description="The check digit (read or computed, see `status`).", examples=["3"])
    size_type: str | None = Field(description="ISO 6346 size-type code when read, e.g. 22G1.", examples=["22G1"])
    layout: str = Field(
        description="How the code is painted: `horizontal`, `two_line` or `vertical`.", examples=["horizontal"]
    )
    changes: int = Field(
        description="Characters substituted to make the check digit match (0 when verified).", examples=[0]
    )


class BarcodeOut(BaseModel):
    """A barcode (seal) or QR code (declaration key) read."""

    type: str = Field(description="Symbology as the decoder names it: QRCODE, CODE128, ...", examples=["QRCODE"])
    data: str = Field(
        description="The decoded text (a seal number, or a declaration's QR payload).", examples=["CN1234567"]
    )


class ImageReadOut(BaseModel):
    """What was read from one image; a `failed` one was not read (`reason`: `deadline`, the gate event's OCR
    deadline passed first, or `error`, the reader failed) and contributes nothing to the decision."""

    image_sha256: str = Field(
        description="SHA-256 (hex) of the image's bytes; names it under `images`.",
        examples=["9f2c5e0b6d1a4b7c8e3f2a1d0c9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b"],
    )
    filename: str = Field(description="The image's file name as uploaded.", examples=["lane1-0831.jpg"])
    container_codes: list[CodeReadOut] = Field(description="Container codes read, best first.")
    barcodes: list[BarcodeOut] = Field(description="Barcodes and QR codes read.")
    seconds: float = Field(description="Seconds the read took.", examples=[0.84])
    status: Literal["read", "failed"] = Field("read", description="`read`, or `failed` (not read, see `reason`).")
    reason: Literal["deadline", "error"] | None = Field(
        None, description="Why a `failed` image was not read: `deadline` (OCR deadline passed) or `error`."
    )


class MatchOut(BaseModel):
    """What the reads were matched to."""

    kind: Literal["exact", "one_substitution", "qr", "none"] = Field(
        description="How the declaration was found: `exact` container number, `one_substitution` (one character "
        "differs: an officer must look), the declaration's `qr` code, or `none`."
    )
    declaration_id: str | None = Field(
        description="The declaration matched (UUID); null when none.", examples=["0192f0c4-7d55-7a3e-9c1b-3b8f4e2a9d10"]
    )
    declaration_number: str | None = Field(description="Its registration number.", examples=["KT-2026-000123"])
    container: str | None = Field(description="The declared container number matched.", examples=["CSQU3054383"])


class HoldResolutionIn(InputSchema):
    """An officer's resolution of a gate hold."""

    model_config = InputSchema.model_config | {
        "json_schema_extra": {
            "examples": [
                {"action": "escalate", "reason": "Seal CN7654321 is not on the declaration: inspect the goods"}
            ]
        }
    }

    action: Literal["release", "escalate"] = Field(
        description="`release`: the truck goes on as it would have without the hold (on the way out with the goods "
        "released, that is its exit); the declaration keeps the channel the hold raised. `escalate`: the goods go "
        "to physical inspection (kiểm tra thực tế) in the red channel.",
        examples=["release"],
    )
    reason: str = Field(
        min_length=1,
        max_length=1000,
        description="Why, in the officer's words (required): recorded with the hold, in the declaration's history "
        "and in the ledger.",
        examples=["Seal CN7654321 checked by hand: the trader's replacement seal, documented in the seal log"],
    )


class HoldResolutionOut(BaseModel):
    """How an officer resolved a hold (once per hold)."""

    action: Literal["release", "escalate"] = Field(
        description="`release` (the truck went on) or `escalate` (physical inspection).", examples=["escalate"]
    )
    reason: str = Field(description="The officer's reason.", examples=["Seal number does not match the manifest"])
    actor: str = Field(description="Who resolved it (`officer:<key id>`).", examples=["officer:3f9a1c2b7d4e"])
    resolved_at: dt.datetime = Field(
        description="When it was resolved (ISO 8601, UTC offset).", examples=["2026-11-28T01:40:12+00:00"]
    )


class GateEventOut(Schema):
    """A gate event: the capture, the reads, the match and the decision."""

    id: str = Field(
        description="Identifier of the gate event (UUID).", examples=["0192f0c4-7d55-7a3e-9c1b-3b8f4e2a9d10"]
    )
    lane: str = Field(description="Gate lane, as the gate system names it.", examples=["IN-1"])
    direction: Literal["in", "out"] = Field(description="`in`: entering the control zone; `out`: leaving it.")
    camera_id: str = Field(description="The camera that took the images.", examples=["KT-IN-1"])
    taken_at: dt.datetime = Field(
        description="When the images were taken (ISO 8601, UTC offset).", examples=["2026-11-28T08:31:05+07:00"]
    )
    received_at: dt.datetime = Field(
        description="When the platform received them (ISO 8601, UTC offset).", examples=["2026-11-28T08:31:06+07:00"]
    )
    plate: str | None = Field(description="Plate read by the ANPR camera, if any.", examples=["24C-123.45"])
    decision: Literal["proceed", "hold"] = Field(
        description="`proceed`: the barrier may open; `hold`: the truck waits for an officer (see `reasons`)."
    )
    reasons: list[str] = Field(
        description="Why a hold: no_code_read, no_declaration, declaration_not_cleared, code_unverified, "
        "container_not_on_declaration, seal_mismatch, one_substitution_match.",
        examples=[["seal_mismatch"]],
    )
    container_number: str | None = Field(
        description="The container number the decision rests on, if any.", examples=["CSQU3054383"]
    )
    match: MatchOut = Field(description="The declaration the reads were matched to.")
    reads: list[ImageReadOut] = Field(description="What was read from each image.")
    evidence: dict[str, Any] = Field(
        description="Facts behind the decision, e.g. `qr` (number and body hash read), `declared_seals`, "
        "`undeclared_seals`, `undeclared_containers`.",
        examples=[{"declared_seals": ["CN1234567"], "undeclared_seals": ["CN7654321"]}],
    )
    resolution: HoldResolutionOut | None = Field(
        None,
        description="A hold's resolution by an officer (release or escalate); null while the hold waits for one, "
        "and for a truck that proceeded.",
        examples=[None],
    )
    images: list[str] = Field(
        description="Paths to download each image (same key).",
        examples=[
            [
                "/api/v1/gate/events/0192f0c4-7d55-7a3e-9c1b-3b8f4e2a9d10/images/9f2c5e0b6d1a4b7c8e3f2a1d0c9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b"
            ]
        ],
    )


class GateEventPage(BaseModel):
    """A page of gate events, newest first."""

    items: list[GateEventOut] = Field(description="The gate events of this page, newest first.")
    next_cursor: str | None = Field(
        description="Opaque cursor of the next page; null on the last page.",
        examples=["MjAyNi0xMS0yOFQwMTozMToxMiswMDowMA"],
    )


class TraderGateEventOut(Schema):
    """A gate event of the trader's own declaration, as its trader sees it: where the truck is and what the gate
    decided. Not the camera, the images or their digests, the OCR detail, the evidence, the plate or the gate
    key: those stay with customs (and may concern another organisation's truck)."""

    id: str = Field(description="The gate event (UUID)", examples=["0192f0c4-7d55-7a3e-9c1b-3b8f4e2a9d11"])
    declaration_id: str = Field(
        description="The trader's declaration the event was matched to",
        examples=["0192f0c4-7d55-7a3e-9c1b-3b8f4e2a9d10"],
    )
    declaration_number: str | None = Field(description="Its registration number", examples=["KT-2026-000123"])
    lane: str = Field(description="The gate lane the truck passed", examples=["OUT-1"])
    direction: Literal["in", "out"] = Field(description="`in`: entering the control zone; `out`: leaving it")
    taken_at: dt.datetime = Field(description="When the camera saw the truck", examples=["2026-11-28T08:30:00+07:00"])
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
    next_cursor: str | None = Field(
        description="Cursor of the next page, null on the last", examples=["MjAyNi0xMS0yOA"]
    )


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


def resolution_json(resolution: GateHoldResolution | None) -> dict[str, Any] | None:
    """The API view of a hold's resolution (shape: `HoldResolutionOut`)."""
    if resolution is None:
        return None
    return {
        "action": resolution.action,
        "reason": resolution.reason,
        "actor": resolution.actor,
        "resolved_at": resolution.resolved_at.isoformat(),
    }


def to_json(row: GateEvent, resolution: GateHoldResolution | None = None) -> dict[str, Any]:
    """The API view of a stored gate event (shape: `GateEventOut`) with its hold's resolution, if any."""
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
        "resolution": resolution_json(resolution),
        "images": [f"/api/v1/gate/events/{row.id}/images/{sha}" for sha in row.image_sha256s],
    }
