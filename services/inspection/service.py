"""Gate events: store what the cameras saw, decide, and publish `gate.read` / `gate.mismatch` / `gate.exited`; an
officer's resolution of a hold (`gate.hold_released` / `gate.hold_escalated`)."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.inspection import events, repository, schemas
from services.inspection.matching import (
    DEAD_STATUSES,
    EXIT_STATUSES,
    Outcome,
    codes_of,
    decide,
    normalise_code,
    pallets_of,
    split_barcodes,
)
from services.inspection.models import ExpectedDeclaration, GateEvent, GateHoldResolution
from services.inspection.reading import ImageRead
from services.kernel import catalogue
from services.kernel.auth import Principal
from services.kernel.database import utcnow
from services.kernel.errors import Conflict, NotFound
from services.kernel.outbox import Event, event_row, record_events

logger = logging.getLogger("smartgate.inspection")

CONSUMER = "inspection"


@dataclass(frozen=True, slots=True)
class Capture:
    """What one camera post carries, before OCR."""

    lane: str
    direction: str
    camera_id: str
    taken_at: dt.datetime
    plate: str | None
    image_sha256s: list[str]

    @property
    def fingerprint(self) -> str:
        """Identity of the capture: the same camera, instant and images are the same truck passing once."""
        key = "|".join([self.camera_id, self.taken_at.astimezone(dt.UTC).isoformat(), *self.image_sha256s])
        return hashlib.sha256(key.encode()).hexdigest()


def evaluate(session: Session, *, direction: str, reads: list[dict[str, Any]], plate: str | None) -> Outcome:
    """Look up the read model for what was read and decide."""
    codes = [c.code for c in codes_of(reads)]
    _, qr_keys = split_barcodes([b for r in reads for b in r.get("barcodes", [])])
    exact = repository.expected_by_container(session, codes)
    live = {c for c, found in exact.items() if any(e.status not in DEAD_STATUSES for e in found)}
    # A near match is looked for only when nothing matched exactly (it is never preferred to an exact one).
    near = repository.expected_near(session, codes) if codes and not live else {}
    by_number = repository.expected_by_number(session, [k.number for k in qr_keys])
    owners = repository.pallet_owners(session, pallets_of([b for r in reads for b in r.get("barcodes", [])]))
    return decide(direction=direction, reads=reads, exact=exact, near=near, by_number=by_number, plate=plate,
                  pallet_owners=owners)  # fmt: skip


def record(
    session: Session, *, principal: Principal, capture: Capture, images: list[ImageRead]
) -> tuple[GateEvent, bool]:
    """Store the gate event with its decision and events; returns (event, created).

    A repeat of a capture already stored (a camera retrying after a lost response) returns the first event
    and publishes nothing again.
    """
    existing = repository.by_fingerprint(session, capture.fingerprint)
    if existing is not None:
        return existing, False
    reads = [_read_json(sha, img) for sha, img in zip(capture.image_sha256s, images, strict=True)]
    outcome = evaluate(session, direction=capture.direction, reads=reads, plate=capture.plate)
    decl = outcome.declaration
    row = GateEvent(
        fingerprint=capture.fingerprint,
        lane=capture.lane,
        direction=capture.direction,
        camera_id=capture.camera_id,
        taken_at=capture.taken_at,
        received_at=utcnow(),
        plate=capture.plate,
        decision=outcome.decision,
        reasons=outcome.reasons,
        reads=reads,
        image_sha256s=capture.image_sha256s,
        container_number=outcome.code.code if outcome.code else _best_code(reads),
        match_kind=outcome.match_kind,
        matched_container=outcome.matched_container,
        declaration_id=decl.declaration_id if decl else None,
        declaration_number=decl.number if decl else None,
        evidence=outcome.evidence,
        actor=principal.actor,
    )
    session.add(row)
    try:
        # The savepoint keeps the request's transaction usable if a concurrent retry of this capture won.
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        existing = repository.by_fingerprint(session, capture.fingerprint)
        if existing is None:
            raise
        return existing, False
    record_events(session, _events(row, outcome))
    return row, True


def _read_json(sha256: str, img: ImageRead) -> dict[str, Any]:
    """One image's stored read; a failed one (not read by the deadline, or the reader failed) says why."""
    out = {"image_sha256": sha256, "filename": img.filename, **img.read.to_dict(), "seconds": round(img.seconds, 4)}
    out["status"] = img.status
    if img.reason:
        out["reason"] = img.reason
    return out


def _best_code(reads: list[dict[str, Any]]) -> str | None:
    codes = codes_of(reads)
    return codes[0].code if codes else None


def _events(row: GateEvent, outcome: Outcome) -> list[dict[str, Any]]:
    """`gate.read` always; `gate.mismatch` when the hold concerns a declaration; `gate.exited` on a cleared exit."""
    common = {
        "gate_event_id": row.id,
        "lane": row.lane,
        "direction": row.direction,
        "camera_id": row.camera_id,
        "taken_at": row.taken_at.isoformat(),
        "declaration_id": row.declaration_id,
        "declaration_number": row.declaration_number,
        # Whose webhooks receive it: the matched declaration's trader (null when nothing matched).
        "organisation_id": outcome.declaration.organisation_id if outcome.declaration else None,
    }
    codes = [{"code": c["code"], "status": c["status"]} for r in row.reads for c in r["container_codes"][:1]]
    subject = row.declaration_id or row.id
    out = [
        event_row(
            type=events.READ,
            subject=subject,
            payload={
                **common,
                "codes": codes,
                "match": outcome.match_kind,
                "matched_container": row.matched_container,
                "decision": row.decision,
                "reasons": row.reasons,
                # Digests only: the images stay in the inspection service, the ledger can still prove which.
                "image_sha256s": row.image_sha256s,
            },
        )
    ]
    if outcome.mismatch:
        out.append(
            event_row(
                type=events.MISMATCH,
                subject=subject,
                payload={**common, "reasons": row.reasons, "match": outcome.match_kind, "codes": codes},
            )
        )
    if row.direction == "out" and row.decision == "proceed" and row.declaration_id:
        out.append(event_row(type=events.EXITED, subject=subject, payload=common))
    return out


# Outside customs (events reach the ledger, which traders read) staff are named by role, never by key id.
STAFF_ROLES = {"officer": "customs officer", "supervisor": "customs supervisor"}
RESOLUTION_EVENTS = {"release": events.HOLD_RELEASED, "escalate": events.HOLD_ESCALATED}


def resolve_hold(
    session: Session, *, principal: Principal, event_id: str, action: str, reason: str
) -> tuple[GateEvent, GateHoldResolution]:
    """Record an officer's resolution of a held gate event, once, with its event.

    `release`: the truck goes on as it would have without the hold; on the way out with its declaration released,
    that is its exit (`gate.exited` too). `escalate`: the declarations service sends the goods to physical
    inspection in the red channel. 404 for an unknown event, 409 `gate.not_held` for one that was not held, 409
    `gate.hold_resolved` for a hold already resolved (the first resolution stands; the answer carries it).
    """
    row = session.get(GateEvent, event_id)
    if row is None:
        raise NotFound(f"gate event {event_id[:64]} not found")
    if row.decision != "hold":
        raise Conflict("this gate event was not a hold: there is nothing to resolve", code="gate.not_held")
    existing = session.get(GateHoldResolution, row.id)
    if existing is None:
        resolution = GateHoldResolution(
            gate_event_id=row.id, action=action, reason=reason, actor=principal.actor, resolved_at=utcnow()
        )
        session.add(resolution)
        try:
            # Two officers at once: the primary key lets one in; the other is answered like a late second one.
            with session.begin_nested():
                session.flush()
        except IntegrityError:
            existing = session.get(GateHoldResolution, row.id, populate_existing=True)
            if existing is None:
                raise
        else:
            record_events(session, _resolution_events(session, row, resolution))
            return row, resolution
    raise Conflict(
        f"this hold was already resolved ({existing.action}) by {existing.actor}; a hold is resolved once",
        code="gate.hold_resolved",
        resolution=schemas.resolution_json(existing),
    )


def _resolution_events(session: Session, row: GateEvent, resolution: GateHoldResolution) -> list[dict[str, Any]]:
    expected = session.get(ExpectedDeclaration, row.declaration_id) if row.declaration_id else None
    common = {
        "gate_event_id": row.id,
        "lane": row.lane,
        "direction": row.direction,
        "camera_id": row.camera_id,
        "taken_at": row.taken_at.isoformat(),
        "declaration_id": row.declaration_id,
        "declaration_number": row.declaration_number,
        "organisation_id": expected.organisation_id if expected else None,
    }
    subject = row.declaration_id or row.id
    role = resolution.actor.partition(":")[0]
    out = [
        event_row(
            type=RESOLUTION_EVENTS[resolution.action],
            subject=subject,
            payload={
                **common,
                "reasons": row.reasons,
                "action": resolution.action,
                "reason": resolution.reason,
                "actor": STAFF_ROLES.get(role, role),
                "at": resolution.resolved_at.isoformat(),
            },
        )
    ]
    # Released on the way out with the goods released: the truck leaves, as it would have without the hold.
    if (
        resolution.action == "release"
        and row.direction == "out"
        and expected is not None
        and expected.status in EXIT_STATUSES
    ):
        out.append(event_row(type=events.EXITED, subject=subject, payload=common))
    return out


def on_declaration_event(session: Session, event: Event) -> None:
    """Keep the read model of declarations expected at the gate (consumer of `declaration.*`).

    Only events that carry a status change it (`assessed`, `paid`, `assigned` do not); an event older than what
    the row already reflects is ignored, so redelivery and reordering are harmless.
    """
    on_declaration_events(session, [event])


def on_declaration_events(session: Session, events: list[Event]) -> None:
    """The batch form of `on_declaration_event`: the events of one declaration, in order, are folded into one
    update of its row (a filing's created, submitted and cleared arrive together)."""
    folded: dict[str, dict[str, Any]] = {}
    for event in events:
        step = catalogue.read(event, catalogue.DeclarationStep)
        if step is None:  # assessed, paid, assigned: no status change (or a malformed event, logged)
            continue
        state = folded.setdefault(step.declaration_id, {"number": None, "body_sha256": None, "containers": None,
                                                        "truck_plate": None, "truck_plate_known": False})  # fmt: skip
        state.update(status=step.status, version=step.version, seq=event.seq)
        state["number"] = step.number or state["number"]
        state["organisation_id"] = step.organisation_id
        state["body_sha256"] = step.body_sha256 or state["body_sha256"]
        if "containers" in step.model_fields_set:
            state["containers"] = [
                {"number": normalise_code(c.number), "seals": list(c.seals)} for c in step.containers if c.number
            ]
        if "truck_plate" in step.model_fields_set:
            state["truck_plate"] = step.truck_plate
            state["truck_plate_known"] = True
    repository.upsert_expected_many(session, folded)


def on_trace_checked(session: Session, event: Event) -> None:
    """Keep which pallets each declaration draws on (consumer of `trace.checked`); a late answer about an older
    version of the declaration than the read model knows is ignored."""
    checked = catalogue.read(event, catalogue.TraceChecked)
    if checked is None:
        return
    known = repository.expected_version(session, checked.declaration_id)
    if known is not None and checked.version < known:
        return
    repository.replace_pallets(session, checked.declaration_id, list(checked.pallets))
