"""Queries of the inspection service: the expected-declarations read model and the gate events."""

from __future__ import annotations

import base64
import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, delete, insert, or_, select
from sqlalchemy.orm import Session

from services.inspection.matching import Expected, near_patterns, normalise_code
from services.inspection.models import ExpectedContainer, ExpectedDeclaration, GateEvent
from services.kernel.errors import Unprocessable


def _expected(row: ExpectedDeclaration) -> Expected:
    return Expected(
        declaration_id=row.declaration_id,
        number=row.number,
        status=row.status,
        containers=tuple(
            (normalise_code(c["number"]), tuple(str(s) for s in c.get("seals") or [])) for c in row.containers
        ),
        truck_plate=row.truck_plate,
        body_sha256=row.body_sha256,
        updated_order=row.event_seq,
    )


def upsert_expected(
    session: Session,
    *,
    declaration_id: str,
    number: str | None,
    status: str,
    version: int,
    seq: int,
    body_sha256: str | None,
    containers: list[dict[str, Any]] | None,
    truck_plate: str | None,
    truck_plate_known: bool,
) -> bool:
    """Apply one declaration event to the read model; False if the row already reflects a newer event.

    `containers` None means the event did not say (an event written before payloads carried them): the stored
    list is kept. Likewise the plate when `truck_plate_known` is False.
    """
    row = session.get(ExpectedDeclaration, declaration_id)
    # An event without a sequence (seq 0) is ordered by version alone.
    if row is not None and (version < row.version or (version == row.version and 0 < seq <= row.event_seq)):
        return False
    if row is None:
        row = ExpectedDeclaration(declaration_id=declaration_id, containers=[], version=version, event_seq=seq)
        session.add(row)
    row.number = number or row.number
    row.status = status
    row.version = version
    row.event_seq = seq
    row.body_sha256 = body_sha256 or row.body_sha256
    if truck_plate_known:
        row.truck_plate = truck_plate
    if containers is not None:
        row.containers = containers
    session.flush()
    if containers is not None:
        session.execute(delete(ExpectedContainer).where(ExpectedContainer.declaration_id == declaration_id))
        numbers = sorted({normalise_code(c["number"]) for c in containers})
        if numbers:
            session.execute(
                insert(ExpectedContainer),
                [{"number": n, "declaration_id": declaration_id} for n in numbers],
            )
    return True


def expected_by_container(session: Session, codes: list[str]) -> dict[str, list[Expected]]:
    """The declarations that list each of `codes` exactly."""
    if not codes:
        return {}
    rows = session.execute(
        select(ExpectedContainer.number, ExpectedDeclaration)
        .join(ExpectedDeclaration, ExpectedDeclaration.declaration_id == ExpectedContainer.declaration_id)
        .where(ExpectedContainer.number.in_(codes))
    ).all()
    out: dict[str, list[Expected]] = {}
    for number, decl in rows:
        out.setdefault(number, []).append(_expected(decl))
    return out


def expected_near(session: Session, codes: list[str]) -> dict[str, list[Expected]]:
    """The declarations listing a container that differs from each of `codes` in one position at most.

    Eleven LIKE patterns per code (one wildcard each) narrow it in SQL; the caller checks the exact distance.
    """
    out: dict[str, list[Expected]] = {}
    for code in codes:
        patterns = near_patterns(code)
        rows = session.execute(
            select(ExpectedContainer.number, ExpectedDeclaration)
            .join(ExpectedDeclaration, ExpectedDeclaration.declaration_id == ExpectedContainer.declaration_id)
            .where(or_(*(ExpectedContainer.number.like(p) for p in patterns)), ExpectedContainer.number != code)
        ).all()
        seen: set[str] = set()
        for _number, decl in rows:
            if decl.declaration_id not in seen:
                seen.add(decl.declaration_id)
                out.setdefault(code, []).append(_expected(decl))
    return out


def expected_by_number(session: Session, numbers: list[str]) -> dict[str, Expected]:
    """The declarations with these registration numbers."""
    if not numbers:
        return {}
    rows = session.scalars(select(ExpectedDeclaration).where(ExpectedDeclaration.number.in_(numbers)))
    return {r.number: _expected(r) for r in rows if r.number}


def by_fingerprint(session: Session, fingerprint: str) -> GateEvent | None:
    """The gate event already recorded for this camera, time and images, if any."""
    return session.scalar(select(GateEvent).where(GateEvent.fingerprint == fingerprint))


@dataclass(frozen=True, slots=True)
class EventFilter:
    """Filters of the gate event list."""

    lane: str | None = None
    direction: str | None = None
    decision: str | None = None
    declaration_id: str | None = None
    container: str | None = None


def encode_cursor(row: GateEvent) -> str:
    """An opaque cursor pointing after `row` in newest-first order."""
    raw = json.dumps([row.received_at.isoformat(), row.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[dt.datetime, str]:
    """Parse a cursor, or 422 if it was not made by us."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        received, event_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
        at = dt.datetime.fromisoformat(received)
        if at.tzinfo is None:
            raise ValueError("naive")
        at.astimezone(dt.UTC)  # out-of-range times fail here, not in the database driver
        if "\x00" in str(event_id):
            raise ValueError("NUL")
        return at, str(event_id)
    except (ValueError, TypeError, OverflowError) as exc:
        raise Unprocessable("invalid cursor; pass back the next_cursor of a previous page") from exc


def list_page(session: Session, filt: EventFilter, *, limit: int, cursor: str | None) -> list[GateEvent]:
    """Up to `limit` + 1 gate events, newest first (the extra one tells whether another page exists)."""
    stmt: Select[tuple[GateEvent]] = select(GateEvent)
    if filt.lane:
        stmt = stmt.where(GateEvent.lane == filt.lane)
    if filt.direction:
        stmt = stmt.where(GateEvent.direction == filt.direction)
    if filt.decision:
        stmt = stmt.where(GateEvent.decision == filt.decision)
    if filt.declaration_id:
        stmt = stmt.where(GateEvent.declaration_id == filt.declaration_id)
    if filt.container:
        stmt = stmt.where(
            or_(GateEvent.container_number == filt.container, GateEvent.matched_container == filt.container)
        )
    if cursor:
        at, event_id = decode_cursor(cursor)
        stmt = stmt.where(or_(GateEvent.received_at < at, (GateEvent.received_at == at) & (GateEvent.id < event_id)))
    stmt = stmt.order_by(GateEvent.received_at.desc(), GateEvent.id.desc()).limit(limit + 1)
    return list(session.scalars(stmt))
