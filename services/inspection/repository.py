"""Queries of the inspection service: the expected-declarations read model and the gate events."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, bindparam, delete, insert, or_, select, update
from sqlalchemy.orm import Session

from services.inspection.matching import Expected, near_patterns, normalise_code
from services.inspection.models import (
    ExpectedContainer,
    ExpectedDeclaration,
    ExpectedPallet,
    GateEvent,
    GateHoldResolution,
)
from services.kernel import pagination
from services.kernel.database import table_of, utcnow


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
        organisation_id=row.organisation_id,
    )


_UPDATED = ("number", "status", "version", "event_seq", "body_sha256", "truck_plate", "containers", "updated_at",
            "organisation_id")  # fmt: skip
_ED = table_of(ExpectedDeclaration)
_EC = table_of(ExpectedContainer)
_CURRENT = select(
    _ED.c.declaration_id, _ED.c.version, _ED.c.event_seq, _ED.c.number, _ED.c.body_sha256, _ED.c.truck_plate,
    _ED.c.containers, _ED.c.organisation_id,
).where(_ED.c.declaration_id.in_(bindparam("ids", expanding=True)))  # fmt: skip
_INSERT_EXPECTED = insert(_ED)
_UPDATE_EXPECTED = (
    update(_ED).where(_ED.c.declaration_id == bindparam("b_id")).values({c: bindparam(f"b_{c}") for c in _UPDATED})
)
_DELETE_CONTAINERS = delete(_EC).where(_EC.c.declaration_id.in_(bindparam("ids", expanding=True)))
_INSERT_CONTAINERS = insert(_EC)


def upsert_expected_many(session: Session, states: dict[str, dict[str, Any]]) -> int:
    """Apply the latest known state of several declarations to the read model, in a few statements.

    Each state holds number, status, version, seq (the outbox sequence of its last event), body_sha256,
    containers, truck_plate and organisation_id. A row that already reflects a newer event is left alone.
    `containers` None means the events did not say (written before payloads carried them): the stored list is
    kept; likewise the plate unless `truck_plate_known`. Returns how many rows changed.
    """
    if not states:
        return 0
    conn = session.connection()
    current = {r.declaration_id: r for r in conn.execute(_CURRENT, {"ids": list(states)})}
    now = utcnow()
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    replaced: list[str] = []
    container_rows: list[dict[str, str]] = []
    for decl_id, state in states.items():
        row = current.get(decl_id)
        version, seq = state["version"], state["seq"]
        # An event without a sequence (seq 0) is ordered by version alone.
        if row is not None and (version < row.version or (version == row.version and 0 < seq <= row.event_seq)):
            continue
        given = state["containers"]
        values = {
            "number": state["number"] or (row.number if row else None),
            "status": state["status"],
            "version": version,
            "event_seq": seq,
            "body_sha256": state["body_sha256"] or (row.body_sha256 if row else None),
            "truck_plate": state["truck_plate"] if state["truck_plate_known"] else (row.truck_plate if row else None),
            "containers": given if given is not None else (row.containers if row else []),
            "updated_at": now,
            "organisation_id": state.get("organisation_id") or (row.organisation_id if row else None),
        }
        if row is None:
            inserts.append({"declaration_id": decl_id, **values})
        else:
            updates.append({"b_id": decl_id, **{f"b_{k}": v for k, v in values.items()}})
        if given is not None:
            replaced.append(decl_id)
            numbers = sorted({normalise_code(c["number"]) for c in given})
            container_rows.extend({"number": n, "declaration_id": decl_id} for n in numbers)
    if inserts:
        conn.execute(_INSERT_EXPECTED, inserts)
    if updates:
        conn.execute(_UPDATE_EXPECTED, updates)
    if replaced:
        conn.execute(_DELETE_CONTAINERS, {"ids": replaced})
    if container_rows:
        conn.execute(_INSERT_CONTAINERS, container_rows)
    return len(inserts) + len(updates)


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


def replace_pallets(session: Session, declaration_id: str, ssccs: list[str]) -> None:
    """The pallets a declaration draws on, as its latest trace check says."""
    session.execute(delete(ExpectedPallet).where(ExpectedPallet.declaration_id == declaration_id))
    if ssccs:
        session.execute(insert(ExpectedPallet), [{"sscc": s, "declaration_id": declaration_id} for s in set(ssccs)])


def expected_version(session: Session, declaration_id: str) -> int | None:
    """The declaration's version as the read model knows it (None: not known yet)."""
    return session.scalar(
        select(ExpectedDeclaration.version).where(ExpectedDeclaration.declaration_id == declaration_id)
    )


def pallet_owners(session: Session, ssccs: list[str]) -> dict[str, frozenset[str]]:
    """For each pallet read, the declarations that draw on it."""
    if not ssccs:
        return {}
    found: dict[str, set[str]] = {}
    for sscc, decl_id in session.execute(
        select(ExpectedPallet.sscc, ExpectedPallet.declaration_id).where(ExpectedPallet.sscc.in_(ssccs))
    ):
        found.setdefault(sscc, set()).add(decl_id)
    return {k: frozenset(v) for k, v in found.items()}


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
    return pagination.encode_cursor(row.received_at, row.id)


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
        at, event_id = pagination.decode_cursor(cursor)
        stmt = stmt.where(or_(GateEvent.received_at < at, (GateEvent.received_at == at) & (GateEvent.id < event_id)))
    stmt = stmt.order_by(GateEvent.received_at.desc(), GateEvent.id.desc()).limit(limit + 1)
    return list(session.scalars(stmt))


def resolutions_of(session: Session, event_ids: list[str]) -> dict[str, GateHoldResolution]:
    """The officers' resolutions of these gate events' holds, by gate event id (one query)."""
    if not event_ids:
        return {}
    rows = session.scalars(select(GateHoldResolution).where(GateHoldResolution.gate_event_id.in_(event_ids)))
    return {r.gate_event_id: r for r in rows}
