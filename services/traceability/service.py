"""Capture and query of EPCIS 2.0 events; each captured event's hash goes to the ledger through the outbox."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, insert, or_, select
from sqlalchemy.orm import Session

from services.kernel.auth import Principal
from services.kernel.database import new_id, table_of, utcnow
from services.kernel.errors import AppError, NotFound
from services.kernel.outbox import event_row, record_events
from services.traceability import cbv, events, hashing, identifiers
from services.traceability.models import EpcisCapture, EpcisEvent, EpcisEventEpc

CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
EVENT_TYPE = events.EVENT_CAPTURED


class InvalidEpcis(AppError):
    """A document or event that the EPCIS 2.0 schema, CBV 2.0 or the GS1 key rules refuse."""

    status, title, type_slug = 400, "Invalid EPCIS document", "epcis-invalid"


def subject_of(row_id: str) -> str:
    """The ledger subject of one event: its bundle is the event's inclusion proof."""
    return f"epcis:{row_id}"


def iso(moment: dt.datetime) -> str:
    """UTC with milliseconds and `Z`, as EPCIS writes times."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass
class Prepared:
    """An event ready to insert: its row, its EPCs and its outbox event."""

    row: dict[str, Any]
    epcs: list[dict[str, str]]
    outbox: dict[str, Any]


@dataclass
class Outcome:
    """What a capture did."""

    stored: list[dict[str, Any]] = field(default_factory=list)
    duplicates: int = 0
    errors: list[dict[str, str]] = field(default_factory=list)


def _epcs(event: dict[str, Any]) -> list[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for name, role in (
        ("epcList", "direct"),
        ("childEPCs", "direct"),
        ("inputEPCList", "other"),
        ("outputEPCList", "other"),
    ):
        for epc in event.get(name) or []:
            found.add((identifiers.normalise(epc), role))
    if event.get("parentID"):
        found.add((identifiers.normalise(event["parentID"]), "other"))
    # Classes (a lot: GTIN + lot number) of the quantity lists: how a lot's harvest and packing are found. Neither
    # MATCH_epc nor MATCH_anyEPC reads this role (EPCIS has MATCH_epcClass for it, not served yet).
    for name in ("quantityList", "childQuantityList", "inputQuantityList", "outputQuantityList"):
        for item in event.get(name) or []:
            if isinstance(item, dict) and isinstance(item.get("epcClass"), str):
                found.add((identifiers.normalise(item["epcClass"]), "class"))
    return sorted(found)


def prepare(event: dict[str, Any], context: Any, *, capture_id: str | None, actor: str, now: dt.datetime) -> Prepared:
    """The stored form of a valid event: eventID (the hash when none was given), recordTime, its @context."""
    body = dict(event)
    if context is not None and "@context" not in body:
        body["@context"] = context
    digest = hashing.event_hash(body, body.get("@context"))
    body.setdefault("eventID", digest)
    body["recordTime"] = iso(now)
    row_id = new_id()
    biz_step = cbv.short("bizStep", body["bizStep"]) if body.get("bizStep") else None
    disposition = cbv.short("disposition", body["disposition"]) if body.get("disposition") else None
    location = identifiers.normalise(body["bizLocation"]["id"]) if body.get("bizLocation") else None
    event_time = dt.datetime.fromisoformat(hashing.time_value(body["eventTime"]).replace("Z", "+00:00"))
    outbox = event_row(
        type=EVENT_TYPE,
        subject=subject_of(row_id),
        payload={
            "event_id": body["eventID"],
            "event_hash": digest,
            "event_type": body["type"],
            "event_time": iso(event_time),
            "biz_step": biz_step,
            "capture_id": capture_id,
            "actor": actor,
        },
    )
    row = {
        "id": row_id,
        "event_id": body["eventID"],
        "event_hash": digest,
        "event_type": body["type"],
        "event_time": event_time,
        "record_time": now,
        "biz_step": biz_step,
        "disposition": disposition,
        "biz_location": location,
        "capture_id": capture_id,
        "recorded_by": actor,
        "ledger_event_id": outbox["id"],
        "body": body,
    }
    epcs = [{"event_pk": row_id, "epc": epc, "role": role} for epc, role in _epcs(body)]
    return Prepared(row, epcs, outbox)


def store(
    session: Session, events: Sequence[dict[str, Any]], context: Any, *, capture_id: str | None, principal: Principal
) -> Outcome:
    """Insert events that are new; an eventID already stored with the same hash is a duplicate (accepted, not
    stored twice); with another hash, a conflict (nothing is stored)."""
    now = utcnow()
    prepared = [prepare(e, context, capture_id=capture_id, actor=principal.actor, now=now) for e in events]
    outcome = Outcome()
    ids = [p.row["event_id"] for p in prepared]
    existing: dict[str, str] = {}
    for chunk in range(0, len(ids), 500):
        part = ids[chunk : chunk + 500]
        existing.update(
            session.execute(select(EpcisEvent.event_id, EpcisEvent.event_hash).where(EpcisEvent.event_id.in_(part)))
            .tuples()
            .all()
        )
    fresh: list[Prepared] = []
    seen: set[str] = set()
    for i, item in enumerate(prepared):
        event_id, digest = item.row["event_id"], item.row["event_hash"]
        if event_id in seen or existing.get(event_id) == digest:
            outcome.duplicates += 1
        elif event_id in existing:
            outcome.errors.append(
                {
                    "pointer": f"/epcisBody/eventList/{i}/eventID",
                    "code": "conflict",
                    "detail": f"eventID {event_id!r} is already stored with other content",
                }
            )
        else:
            fresh.append(item)
        seen.add(event_id)
    if outcome.errors:
        return outcome
    if fresh:
        session.execute(insert(table_of(EpcisEvent)), [p.row for p in fresh])
        epcs = [e for p in fresh for e in p.epcs]
        if epcs:
            session.execute(insert(table_of(EpcisEventEpc)), epcs)
        record_events(session, [p.outbox for p in fresh])
    outcome.stored = [p.row for p in fresh]
    return outcome


def record_capture(session: Session, *, job_id: str, principal: Principal, outcome: Outcome) -> EpcisCapture:
    """The capture job of a document, accepted or rejected (then none of its events was stored)."""
    failed = outcome.errors
    job = EpcisCapture(
        id=job_id,
        status="rejected" if failed else "accepted",
        event_count=0 if failed else len(outcome.stored),
        duplicate_count=0 if failed else outcome.duplicates,
        errors=failed,
        created_by=principal.actor,
        finished_at=utcnow(),
    )
    session.add(job)
    session.flush()
    return job


def capture_json(job: EpcisCapture) -> dict[str, Any]:
    """A capture job as EPCIS 2.0 describes it (`running`, `success`, `errors`), with counts."""
    return {
        "captureID": job.id,
        "status": job.status,
        "running": False,
        "success": job.status == "accepted",
        "captureErrorBehaviour": "rollback",
        "createdAt": iso(job.created_at),
        "finishedAt": iso(job.finished_at) if job.finished_at else None,
        "eventCount": job.event_count,
        "duplicateCount": job.duplicate_count,
        "errors": job.errors,
    }


def get_capture(session: Session, capture_id: str) -> EpcisCapture:
    job = session.get(EpcisCapture, capture_id) if len(capture_id) <= 36 else None
    if job is None:
        raise NotFound(f"no capture job {capture_id[:64]!r}", code="epcis.no_capture")
    return job


def get_event(session: Session, event_id: str) -> EpcisEvent:
    """By eventID, or by the hex digest of its event hash."""
    row = session.scalar(select(EpcisEvent).where(EpcisEvent.event_id == event_id)) if len(event_id) <= 512 else None
    if row is None and len(event_id) == 64 and all(c in "0123456789abcdef" for c in event_id):
        row = session.scalars(
            select(EpcisEvent)
            .where(EpcisEvent.event_hash == f"ni:///sha-256;{event_id}?ver={hashing.VERSION}")
            .order_by(EpcisEvent.record_time)
            .limit(1)
        ).first()
    if row is None:
        raise NotFound(f"no event {event_id[:100]!r}", code="epcis.no_event")
    return row


@dataclass(frozen=True)
class Query:
    """The EPCIS 2.0 SimpleEventQuery parameters this repository answers."""

    event_types: tuple[str, ...] = ()
    biz_steps: tuple[str, ...] = ()
    dispositions: tuple[str, ...] = ()
    biz_locations: tuple[str, ...] = ()
    epcs: tuple[str, ...] = ()
    any_epcs: tuple[str, ...] = ()
    ge_event_time: dt.datetime | None = None
    lt_event_time: dt.datetime | None = None


def query(session: Session, q: Query, *, after: tuple[dt.datetime, str] | None, limit: int) -> list[EpcisEvent]:
    """Matching events in eventTime order (then id), after the keyset `after`, at most `limit`."""
    stmt = select(EpcisEvent)
    if q.event_types:
        stmt = stmt.where(EpcisEvent.event_type.in_(q.event_types))
    if q.biz_steps:
        stmt = stmt.where(EpcisEvent.biz_step.in_(q.biz_steps))
    if q.dispositions:
        stmt = stmt.where(EpcisEvent.disposition.in_(q.dispositions))
    if q.biz_locations:
        stmt = stmt.where(EpcisEvent.biz_location.in_(q.biz_locations))
    if q.ge_event_time is not None:
        stmt = stmt.where(EpcisEvent.event_time >= q.ge_event_time)
    if q.lt_event_time is not None:
        stmt = stmt.where(EpcisEvent.event_time < q.lt_event_time)
    for values, roles in ((q.epcs, ("direct",)), (q.any_epcs, ("direct", "other"))):
        if values:
            named = select(EpcisEventEpc.event_pk).where(EpcisEventEpc.epc.in_(values), EpcisEventEpc.role.in_(roles))
            stmt = stmt.where(EpcisEvent.id.in_(named))
    if after is not None:
        at, row_id = after
        stmt = stmt.where(or_(EpcisEvent.event_time > at, and_(EpcisEvent.event_time == at, EpcisEvent.id > row_id)))
    return list(session.scalars(stmt.order_by(EpcisEvent.event_time, EpcisEvent.id).limit(limit)))


def query_document(events: Sequence[EpcisEvent]) -> dict[str, Any]:
    """An EPCISQueryDocument (JSON-LD) of `events`."""
    return {
        "@context": [CONTEXT],
        "type": "EPCISQueryDocument",
        "schemaVersion": "2.0",
        "creationDate": iso(utcnow()),
        "epcisBody": {
            "queryResults": {
                "queryName": "SimpleEventQuery",
                "resultsBody": {"eventList": [e.body for e in events]},
            }
        },
    }
