"""HTTP endpoints of the inspection service: gate cameras post events; gate staff and officers read them."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, Query, UploadFile
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from services.inspection import repository, service
from services.inspection.models import ExpectedDeclaration, GateEvent
from services.inspection.reading import OcrPool
from services.inspection.schemas import (
    GateEventOut,
    GateEventPage,
    HoldResolutionIn,
    TraderGateEventPage,
    to_json,
    trader_json,
)
from services.inspection.storage import ImageStore, media_type
from services.kernel.auth import Principal, Role
from services.kernel.database import unit_of_work
from services.kernel.deps import RuntimeDep, SessionDep, require_roles
from services.kernel.errors import NotFound, Unprocessable
from services.kernel.runtime import Runtime
from services.kernel.schemas import problems

# Gate events and declarations are UUIDs; anything else (NUL included) is a 404 or a 422, never a database error.
ID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"

router = APIRouter(prefix="/api/v1/gate/events", tags=["gate"])
# What a trader reads of the gate: its own declarations' events, in the trader's shape.
declarations_router = APIRouter(prefix="/api/v1/gate/declarations", tags=["gate"])

# A truck is photographed from a handful of angles (door, both sides, top, plate); more is a misconfigured camera.
MAX_IMAGES = 6
POOL_KEY = "inspection.ocr"
STORE_KEY = "inspection.images"

CurrentGate = Annotated[Principal, require_roles(Role.gate)]
GateOrOfficer = Annotated[Principal, require_roles(Role.gate, Role.officer, Role.supervisor, Role.admin)]
CurrentOfficer = Annotated[Principal, require_roles(Role.officer, Role.supervisor, Role.admin)]
CurrentTrader = Annotated[Principal, require_roles(Role.trader)]
# Who resolves a hold: customs officers and supervisors (admins run the platform, they decide no customs matter).
CurrentDecider = Annotated[Principal, require_roles(Role.officer, Role.supervisor)]


def pool_of(runtime: Runtime) -> OcrPool:
    """The OCR pool installed for this runtime."""
    pool: OcrPool = runtime.extras[POOL_KEY]
    return pool


def store_of(runtime: Runtime) -> ImageStore:
    """The image store installed for this runtime."""
    store: ImageStore = runtime.extras[STORE_KEY]
    return store


def _respond(row: GateEvent, *, created: bool) -> JSONResponse:
    headers = {"Location": f"/api/v1/gate/events/{row.id}"}
    if not created:
        headers["Idempotent-Replayed"] = "true"
    return JSONResponse(to_json(row), status_code=201 if created else 200, headers=headers)


@router.post(
    "",
    status_code=201,
    response_model=GateEventOut,
    responses={
        200: {"description": "The same capture was already recorded: the first event"},
        **problems(401, 403, 413, 422, 503, 507),  # 413: image.too_large, images.too_large (pixels)
    },
    summary="Post a gate event (camera images)",
    openapi_extra={
        "requestBody": {
            "content": {
                "multipart/form-data": {
                    "example": {
                        "image": ["(the JPEG's bytes)"],
                        "lane": "IN-1",
                        "direction": "in",
                        "camera_id": "KT-IN-1",
                        "taken_at": "2026-11-28T08:31:05+07:00",
                        "plate": "24C-123.45",
                    }
                }
            }
        }
    },
)
async def post_gate_event(
    runtime: RuntimeDep,
    session: SessionDep,
    principal: CurrentGate,
    image: Annotated[list[UploadFile], File(description=f"1 to {MAX_IMAGES} JPEG/PNG/WebP images of one truck")],
    lane: Annotated[
        str, Form(pattern=r"^[A-Z0-9][A-Z0-9-]{0,15}$", examples=["IN-1"], description="Gate lane of the camera")
    ],
    direction: Annotated[Literal["in", "out"], Form(description="in: entering the control zone; out: leaving it")],
    camera_id: Annotated[
        str,
        Form(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$", examples=["KT-IN-1"], description="Camera identifier"),
    ],
    taken_at: Annotated[
        dt.datetime,
        Form(description="When the images were taken, with a UTC offset", examples=["2026-11-28T08:31:05+07:00"]),
    ],
    plate: Annotated[
        str | None,
        Form(
            pattern=r"^\s*[0-9A-Za-z][0-9A-Za-z.\- ]{0,14}[0-9A-Za-z]\s*$",
            description="Plate read by the ANPR camera",
            examples=["24C-123.45"],
        ),
    ] = None,
) -> JSONResponse:
    """Read the container code(s), seals and declaration QR code from the images, match them to the declarations
    expected at the gate, and decide: `proceed`, or `hold` with reasons (`no_code_read`, `no_declaration`,
    `declaration_not_cleared`, `code_unverified`, `container_not_on_declaration`, `seal_mismatch`,
    `one_substitution_match`). The same camera, time and images posted again return the first event (200)."""
    # Authentication opened a transaction (on SQLite: the writer lock). End it: OCR takes far longer than any
    # write, and other requests must not queue behind it. The write after OCR opens a fresh one.
    await run_in_threadpool(session.rollback)
    if taken_at.tzinfo is None:
        raise Unprocessable("taken_at must carry a UTC offset", errors=[_field_error("taken_at", "datetime.timezone")])
    try:
        taken_utc = taken_at.astimezone(dt.UTC)
    except OverflowError as exc:
        raise Unprocessable("taken_at is out of range", errors=[_field_error("taken_at", "datetime.range")]) from exc
    if len(image) > MAX_IMAGES:
        raise Unprocessable(
            f"at most {MAX_IMAGES} images per gate event, got {len(image)}",
            errors=[_field_error("image", "too_many_items")],
        )
    files: list[tuple[str, bytes]] = []
    for i, upload in enumerate(image):
        name = upload.filename or f"image {i + 1}"
        data = await upload.read()
        if not data:
            raise Unprocessable(f"{name}: empty file", errors=[_field_error("image", "image.empty")])
        files.append((name, data))
    capture = service.Capture(
        lane=lane,
        direction=direction,
        camera_id=camera_id,
        taken_at=taken_utc,
        plate=plate.strip().upper() if plate else None,
        image_sha256s=[hashlib.sha256(data).hexdigest() for _, data in files],
    )
    # A retried upload is answered from the database without reading the images again.
    seen = await run_in_threadpool(_find_capture, runtime, capture.fingerprint)
    if seen is not None:
        return _respond(seen, created=False)
    reads = await pool_of(runtime).read_all(files, lane=lane)
    store = store_of(runtime)
    await run_in_threadpool(lambda: [store.put(data) for _, data in files])
    row, created = await run_in_threadpool(
        lambda: service.record(session, principal=principal, capture=capture, images=reads)
    )
    return _respond(row, created=created)


def _find_capture(runtime: Runtime, fingerprint: str) -> GateEvent | None:
    with unit_of_work(runtime.read_sessions) as session:
        return repository.by_fingerprint(session, fingerprint)


def _field_error(field: str, code: str) -> dict[str, str]:
    return {"pointer": f"/{field}", "in": "body", "code": code, "detail": field}


@router.get("", response_model=GateEventPage, responses=problems(401, 403, 422), summary="List gate events")
def list_gate_events(
    session: SessionDep,
    principal: GateOrOfficer,
    lane: Annotated[str | None, Query(pattern=r"^[A-Z0-9][A-Z0-9-]{0,15}$")] = None,
    direction: Literal["in", "out"] | None = None,
    decision: Literal["proceed", "hold"] | None = None,
    declaration_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    container: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9 ]{1,13}$")] = None,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> JSONResponse:
    """Gate events newest first; `?decision=hold` is the officers' list of trucks to review. Page with `cursor`."""
    filt = repository.EventFilter(
        lane=lane,
        direction=direction,
        decision=decision,
        declaration_id=declaration_id,
        container=container.replace(" ", "").upper() if container else None,
    )
    rows = repository.list_page(session, filt, limit=limit, cursor=cursor)
    more = len(rows) > limit
    rows = rows[:limit]
    resolved = repository.resolutions_of(session, [r.id for r in rows if r.decision == "hold"])
    return JSONResponse(
        {
            "items": [to_json(r, resolved.get(r.id)) for r in rows],
            "next_cursor": repository.encode_cursor(rows[-1]) if more and rows else None,
        }
    )


def _get(session: SessionDep, event_id: str) -> GateEvent:
    row = session.get(GateEvent, event_id) if re.fullmatch(ID_PATTERN, event_id) else None
    if row is None:
        raise NotFound(f"gate event {event_id[:64]} not found")
    return row


@router.get(
    "/{event_id}", response_model=GateEventOut, responses=problems(401, 403, 404, 422), summary="Get a gate event"
)
def get_gate_event(event_id: str, session: SessionDep, principal: GateOrOfficer) -> JSONResponse:
    """One gate event with its reads, match, decision, a hold's resolution and the links to its images."""
    row = _get(session, event_id)
    return JSONResponse(to_json(row, repository.resolutions_of(session, [row.id]).get(row.id)))


@router.post(
    "/{event_id}/resolution",
    status_code=201,
    response_model=GateEventOut,
    responses=problems(401, 403, 404, 409, 422),
    summary="Release or escalate a gate hold (officers)",
)
def resolve_hold(event_id: str, body: HoldResolutionIn, session: SessionDep, principal: CurrentDecider) -> JSONResponse:
    """Resolve a held truck, with the reason (required): `release` lets it go on as it would have without the hold
    (on the way out with its declaration's goods released, that is its exit: `gate.exited`; the channel the hold
    raised stays), `escalate` sends the declaration to physical inspection in the red channel. Published as
    `gate.hold_released` or `gate.hold_escalated`; the declarations service records it in the declaration's
    history. A hold is resolved once: a second resolution is 409 `gate.hold_resolved` (the answer carries the
    first), an event that was not a hold 409 `gate.not_held`. Officers and supervisors."""
    if not re.fullmatch(ID_PATTERN, event_id):
        raise NotFound(f"gate event {event_id[:64]} not found")
    row, resolution = service.resolve_hold(
        session, principal=principal, event_id=event_id, action=body.action, reason=body.reason
    )
    return JSONResponse(
        to_json(row, resolution), status_code=201, headers={"Location": f"/api/v1/gate/events/{row.id}"}
    )


@router.get(
    "/{event_id}/images/{sha256}",
    responses={**problems(401, 403, 404, 422), 200: {"content": {"image/jpeg": {}, "image/png": {}, "image/webp": {}}}},
    summary="Get a gate event's image",
)
def get_gate_image(
    event_id: str, sha256: str, session: SessionDep, principal: CurrentOfficer, runtime: RuntimeDep
) -> Response:
    """The image bytes as the camera sent them (officers and admins)."""
    row = _get(session, event_id)
    if sha256 not in row.image_sha256s:
        raise NotFound(f"gate event {row.id} has no image {sha256[:64]}")
    data = store_of(runtime).get(sha256)
    if data is None:
        raise NotFound("the image is missing from storage")
    # Content-addressed: the bytes behind this URL never change.
    return Response(
        data, media_type=media_type(data), headers={"Cache-Control": "private, max-age=31536000, immutable"}
    )


@declarations_router.get(
    "/{declaration_id}/events",
    response_model=TraderGateEventPage,
    responses=problems(401, 403, 404, 422),
    summary="Gate events of your declaration (traders)",
)
def list_declaration_gate_events(
    declaration_id: str,
    session: SessionDep,
    principal: CurrentTrader,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> JSONResponse:
    """Where your truck is: the gate events matched to one of your organisation's declarations, newest first
    (lane, direction, time, what was read, how it matched, proceed or hold and why, exit). Read-only; another
    organisation's declaration, or one the gate has not heard of yet, is a 404."""
    expected = session.get(ExpectedDeclaration, declaration_id) if re.fullmatch(ID_PATTERN, declaration_id) else None
    if expected is None or principal.organisation_id is None or expected.organisation_id != principal.organisation_id:
        raise NotFound(f"declaration {declaration_id[:64]} not found")
    filt = repository.EventFilter(declaration_id=declaration_id)
    rows = repository.list_page(session, filt, limit=limit, cursor=cursor)
    more = len(rows) > limit
    rows = rows[:limit]
    return JSONResponse(
        {
            "items": [trader_json(r) for r in rows],
            "next_cursor": repository.encode_cursor(rows[-1]) if more and rows else None,
        }
    )
