"""EPCIS 2.0 REST interface at `/epcis`: capture (documents and single events) and the events query, JSON-LD."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Body, Path, Query, Request
from starlette.responses import Response

from services.kernel import pagination
from services.kernel import sessions as kernel_sessions
from services.kernel.auth import Principal, Role
from services.kernel.database import new_id
from services.kernel.deps import CurrentPrincipal, RuntimeDep, SessionDep, require_roles
from services.kernel.errors import AppError, Conflict, NotFound, PayloadTooLarge, Unprocessable
from services.kernel.responses import JSONResponse
from services.kernel.runtime import Runtime
from services.kernel.schemas import problems
from services.traceability import cbv, diary, identifiers, service, sites, validation
from services.traceability.settings import TraceabilitySettings

SETTINGS_KEY = "traceability.settings"
JSON_LD = "application/ld+json"
CAPTURE_ROLES = (Role.producer, Role.packhouse, Role.inspector, Role.admin)
QUERY_PARAMETERS = frozenset(
    {
        "eventType",
        "EQ_bizStep",
        "EQ_disposition",
        "EQ_bizLocation",
        "MATCH_epc",
        "MATCH_anyEPC",
        "GE_eventTime",
        "LT_eventTime",
        "perPage",
        "nextPageToken",
    }
)

DOCUMENTED = (401, 403, 422)
EXAMPLE_EVENT: dict[str, Any] = {
    "type": "ObjectEvent",
    "eventTime": "2026-06-10T06:30:00+07:00",
    "eventTimeZoneOffset": "+07:00",
    "action": "ADD",
    "epcList": [],
    "quantityList": [{"epcClass": "https://id.gs1.org/01/08930001000018/10/LC2026A", "quantity": 1250.5, "uom": "KGM"}],
    "bizStep": "commissioning",
    "disposition": "active",
    "readPoint": {"id": "https://id.gs1.org/414/8930001000001"},
    "bizLocation": {"id": "https://id.gs1.org/414/8930001000001"},
    "ilmd": {"sg:growingArea": "VN-LC-001"},
}
EXAMPLE_CONTEXT: list[Any] = [service.CONTEXT, {"sg": "https://smartgate.example/epcis/"}]
EXAMPLE_DOCUMENT: dict[str, Any] = {
    "@context": EXAMPLE_CONTEXT,
    "type": "EPCISDocument",
    "schemaVersion": "2.0",
    "creationDate": "2026-06-10T07:00:00Z",
    "epcisBody": {"eventList": [EXAMPLE_EVENT]},
}

router = APIRouter(prefix="/api/v1/epcis", tags=["traceability"])
Capturer = Annotated[Principal, require_roles(*CAPTURE_ROLES)]


class InvalidQuery(AppError):
    status, title, type_slug = 400, "Invalid query", "epcis-query"


def settings_of(runtime: Runtime) -> TraceabilitySettings:
    found: TraceabilitySettings = runtime.extras[SETTINGS_KEY]
    return found


def event_url(event_id: str) -> str:
    return "/api/v1/epcis/events/" + quote(event_id, safe="")


def _json_ld(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, media_type=JSON_LD, headers=headers)


@router.post(
    "/capture",
    status_code=202,
    summary="Capture an EPCISDocument (producers, packhouses, inspectors)",
    responses=problems(*DOCUMENTED, 400, 413),
)
def capture(
    session: SessionDep,
    runtime: RuntimeDep,
    principal: Capturer,
    document: Annotated[
        dict[str, Any], Body(description="an EPCIS 2.0 EPCISDocument (JSON-LD)", examples=[EXAMPLE_DOCUMENT])
    ],
) -> JSONResponse:
    """Validate the whole document (EPCIS 2.0 JSON schema, CBV 2.0, GS1 check digits) and store its events.

    An invalid document is refused whole (400 problem+json, each problem with its JSON Pointer) and nothing of it is
    stored. A valid one answers 202 with the `Location` of its capture job, which says what was accepted, or why
    not (an eventID already stored with other content rejects the document)."""
    events = document.get("epcisBody", {}).get("eventList") if isinstance(document.get("epcisBody"), dict) else None
    limit = settings_of(runtime).epcis_max_events
    if isinstance(events, list) and len(events) > limit:
        raise PayloadTooLarge(f"{len(events)} events in one document; at most {limit}", code="epcis.too_many_events")
    errors = validation.document_errors(document)
    if errors:
        raise InvalidEpcisDocument(errors)
    job_id = new_id()
    outcome = service.store(
        session, document["epcisBody"]["eventList"], document.get("@context"), capture_id=job_id, principal=principal
    )
    job = service.record_capture(session, job_id=job_id, principal=principal, outcome=outcome)
    return JSONResponse(
        service.capture_json(job), status_code=202, headers={"Location": f"/api/v1/epcis/capture/{job.id}"}
    )


class InvalidEpcisDocument(service.InvalidEpcis):
    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__(
            f"{len(errors)} problem(s) in the document; nothing was stored", errors=errors, code="epcis.invalid"
        )


@router.get(
    "/capture/{capture_id}", summary="A capture job: accepted, or why not", responses=problems(*DOCUMENTED, 404)
)
def get_capture(session: SessionDep, _principal: Capturer, capture_id: Annotated[str, Path(max_length=64)]) -> Any:
    """What a `POST /api/v1/epcis/capture` did."""
    return service.capture_json(service.get_capture(session, capture_id))


@router.post("/events", status_code=201, summary="Capture one EPCIS event", responses=problems(*DOCUMENTED, 400, 409))
def capture_event(
    session: SessionDep,
    principal: Capturer,
    event: Annotated[
        dict[str, Any],
        Body(
            description="one EPCIS 2.0 event with its `@context` (JSON-LD)",
            examples=[{"@context": EXAMPLE_CONTEXT, **EXAMPLE_EVENT}],
        ),
    ],
) -> JSONResponse:
    """Validate and store one event; 201 with its `Location` and the stored event (eventID, recordTime, hash)."""
    errors = validation.single_event_errors(event)
    if errors:
        raise InvalidEpcisDocument(errors)
    outcome = service.store(session, [event], None, capture_id=None, principal=principal)
    if outcome.errors:
        raise Conflict(outcome.errors[0]["detail"], code="epcis.conflict")
    if not outcome.stored:  # the same event again: where it is
        row = service.get_event(session, event.get("eventID") or service.hashing.event_hash(event, event["@context"]))
        return _json_ld(row.body, 200, _event_headers(row.event_id, row.event_hash, row.id))
    row_data = outcome.stored[0]
    return _json_ld(
        row_data["body"],
        201,
        {
            "Location": event_url(row_data["event_id"]),
            **_event_headers(row_data["event_id"], row_data["event_hash"], row_data["id"]),
        },
    )


def _event_headers(event_id: str, event_hash: str, row_id: str) -> dict[str, str]:
    del event_id
    subject = service.subject_of(row_id)
    return {
        "EPCIS-Event-Hash": event_hash,
        "Link": f'</api/v1/ledger/subjects/{quote(subject, safe=":")}/bundle>; rel="provenance"',
    }


def _values(request: Request, name: str) -> list[str]:
    return [v for raw in request.query_params.getlist(name) for v in raw.split("|") if v]


def _time(request: Request, name: str) -> dt.datetime | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(raw.replace(" ", "+").replace("z", "Z"))
        if moment.tzinfo is None:
            raise ValueError("no offset")
        return moment.astimezone(dt.UTC)
    except ValueError as exc:
        raise InvalidQuery(f"{name}: {raw[:64]!r} is not a date-time with an offset", code="epcis.query") from exc


def _query(request: Request) -> service.Query:
    unknown = sorted(set(request.query_params) - QUERY_PARAMETERS)
    if unknown:
        raise InvalidQuery(f"unsupported query parameter(s): {', '.join(unknown)[:200]}", code="epcis.query")
    try:
        return service.Query(
            event_types=tuple(_values(request, "eventType")),
            biz_steps=tuple(cbv.short("bizStep", v) for v in _values(request, "EQ_bizStep")),
            dispositions=tuple(cbv.short("disposition", v) for v in _values(request, "EQ_disposition")),
            biz_locations=tuple(identifiers.normalise(v) for v in _values(request, "EQ_bizLocation")),
            epcs=tuple(identifiers.normalise(v) for v in _values(request, "MATCH_epc")),
            any_epcs=tuple(identifiers.normalise(v) for v in _values(request, "MATCH_anyEPC")),
            ge_event_time=_time(request, "GE_eventTime"),
            lt_event_time=_time(request, "LT_eventTime"),
        )
    except ValueError as exc:
        raise InvalidQuery(str(exc)[:300], code="epcis.query") from exc


@router.get(
    "/events",
    summary="Query events (EPCIS 2.0 SimpleEventQuery parameters); JSON-LD",
    responses={200: {"content": {JSON_LD: {"schema": {"type": "object"}}}}, **problems(*DOCUMENTED, 400)},
)
def list_events(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    _principal: CurrentPrincipal,
    EQ_bizStep: Annotated[list[str] | None, Query(description="CBV word, URN or URI; '|' or repeated: any")] = None,
    EQ_disposition: Annotated[list[str] | None, Query()] = None,
    EQ_bizLocation: Annotated[list[str] | None, Query(description="EPC URI or GS1 Digital Link URI")] = None,
    MATCH_epc: Annotated[list[str] | None, Query(description="epcList and childEPCs")] = None,
    MATCH_anyEPC: Annotated[list[str] | None, Query(description="also parentID, inputs, outputs")] = None,
    GE_eventTime: Annotated[str | None, Query(max_length=40)] = None,
    LT_eventTime: Annotated[str | None, Query(max_length=40)] = None,
    eventType: Annotated[list[str] | None, Query()] = None,
    perPage: Annotated[int | None, Query(ge=1)] = None,
    nextPageToken: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """Matching events in eventTime order as an EPCISQueryDocument; a `Link: <…>; rel="next"` header (and the
    `nextPageToken` to pass back) while more remain."""
    settings = settings_of(runtime)
    q = _query(request)
    limit = min(perPage or settings.epcis_page_size, settings.epcis_max_page_size)
    after = pagination.decode_cursor(nextPageToken) if nextPageToken else None
    rows = service.query(session, q, after=after, limit=limit + 1)
    headers: dict[str, str] = {}
    if len(rows) > limit:
        rows = rows[:limit]
        token = pagination.encode_cursor(rows[-1].event_time, rows[-1].id)
        params = [(k, v) for k, v in request.query_params.multi_items() if k != "nextPageToken"]
        headers["Link"] = f'</api/v1/epcis/events?{urlencode([*params, ("nextPageToken", token)])}>; rel="next"'
        headers["GS1-Next-Page-Token"] = token
    return _json_ld(service.query_document(rows), headers=headers)


@router.get(
    "/events/{event_id:path}",
    summary="One event by eventID (URL-encoded) or by the hex digest of its event hash; JSON-LD",
    responses={200: {"content": {JSON_LD: {"schema": {"type": "object"}}}}, **problems(*DOCUMENTED, 404)},
)
def get_event(
    session: SessionDep, _principal: CurrentPrincipal, event_id: Annotated[str, Path(max_length=600)]
) -> Response:
    """The event as stored (eventID, recordTime); its CBV 2.0 hash in `EPCIS-Event-Hash`, and its ledger bundle
    (the inclusion proof of the hash) in `Link: <…>; rel="provenance"`."""
    row = service.get_event(session, event_id)
    return _json_ld(row.body, headers=_event_headers(row.event_id, row.event_hash, row.id))


SiteEditor = Annotated[Principal, require_roles(Role.producer, Role.packhouse, Role.inspector, Role.admin)]


@router.put(
    "/sites/{gln}",
    summary="Register or update a farm or packing house by its GLN (producers, packhouses, inspectors)",
    responses=problems(*DOCUMENTED, 404),
)
def put_site(
    session: SessionDep,
    principal: SiteEditor,
    gln: Annotated[str, Path(pattern=r"^\d{13}$", description="the site's GLN (check digit verified)")],
    body: Annotated[sites.SiteIn, Body(examples=[sites.EXAMPLE_SITE])],
) -> JSONResponse:
    """A farm carries its growing-area code, a packing house its packing-house code; both their GACC registration."""
    site, created = sites.put_site(session, gln, body, principal)
    return JSONResponse(sites.site_json(site), status_code=201 if created else 200)


@router.get("/sites/{gln}", summary="A farm or packing house", responses=problems(*DOCUMENTED, 404))
def get_site(session: SessionDep, _principal: CurrentPrincipal, gln: Annotated[str, Path(max_length=13)]) -> Any:
    """The site with its codes and its GS1 Digital Link id (what events name as readPoint / bizLocation)."""
    return sites.site_json(sites.get_site(session, gln))


@router.get("/sites", summary="Farms and packing houses", responses=problems(*DOCUMENTED))
def list_sites(
    session: SessionDep,
    _principal: CurrentPrincipal,
    kind: Annotated[Literal["farm", "packhouse"] | None, Query()] = None,
) -> Any:
    """Up to 1,000 sites in GLN order."""
    return {"items": [sites.site_json(s) for s in sites.list_sites(session, kind)]}


@router.post(
    "/diary",
    status_code=201,
    summary="Record an e-production diary entry (planting … shipping) as an EPCIS event",
    responses=problems(*DOCUMENTED, 400),
)
def record_diary(
    session: SessionDep,
    principal: Annotated[Principal, require_roles(*CAPTURE_ROLES)],
    entry: Annotated[diary.DiaryEntry, Body(examples=[diary.EXAMPLE])],
) -> JSONResponse:
    """Producers record planting, fertilising, spraying (with its pre-harvest interval) and harvest at their farms;
    packhouses packing (lots into an SSCC pallet) and shipping; inspectors the phytosanitary inspection. The entry
    becomes an EPCIS 2.0 event, validated, stored, hashed and put in the ledger like a captured one."""
    site = session.get(sites.EpcisSite, entry.site_gln)
    diary.check(entry, principal, site)
    assert site is not None
    event = diary.to_event(entry, site)
    errors = validation.single_event_errors(event)
    if errors:  # a builder bug, not the caller's: still refused, never stored
        raise InvalidEpcisDocument(errors)
    outcome = service.store(session, [event], None, capture_id=None, principal=principal)
    row = outcome.stored[0] if outcome.stored else None
    if row is None:
        found = service.get_event(session, service.hashing.event_hash(event, event["@context"]))
        return _json_ld(found.body, 200, _event_headers(found.event_id, found.event_hash, found.id))
    return _json_ld(
        row["body"],
        201,
        {"Location": event_url(row["event_id"]), **_event_headers(row["event_id"], row["event_hash"], row["id"])},
    )


# The diary pages' sign-in (api/diary.py): like the console's, for the roles that keep a diary. Internal.
session_router = APIRouter(prefix="/api/v1/epcis/sessions", include_in_schema=False)


@session_router.post("", status_code=201)
def open_diary_session(session: SessionDep, principal: Capturer, runtime: RuntimeDep) -> JSONResponse:
    """A session id for the diary page's cookie (usable by the page only; see services/kernel/sessions.py)."""
    if principal.session_id is not None:
        raise Unprocessable("sign in with an API key, not with a session", code="session.nested")
    row, token = kernel_sessions.open_session(
        session, key_id=principal.key_id, max_seconds=runtime.settings.console_session_max_seconds
    )
    return JSONResponse({"token": token, "expires_at": service.iso(row.expires_at)}, status_code=201)


@session_router.delete("/current", status_code=204)
def end_diary_session(session: SessionDep, principal: Capturer) -> Response:
    """Sign out of the diary page."""
    if principal.session_id is None:
        raise NotFound("this call is made with a session, not with an API key")
    kernel_sessions.end(session, principal.session_id)
    return Response(status_code=204)
