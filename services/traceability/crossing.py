"""The traced pallets' customs release and gate exit, recorded as EPCIS 2.0 events (issue 15 §3 → §4).

The declarations service says when a declaration was released and when its truck exited (`declaration.released`,
`declaration.exited`: catalogued `DeclarationStep` events, which this service already consumes). When that
declaration drew on pallets (its `trace_claims`, written by the trace check), this service records, for those
pallets, through the ordinary capture path (EPCIS 2.0 schema and CBV checks, CBV 2.0 hash, the ledger's outbox):

| declaration event | EPCIS event (of the pallets) | bizStep | disposition |
| --- | --- | --- | --- |
| `declaration.released` | ObjectEvent OBSERVE | `sg:bizstep/customs_release` (our vocabulary) | `in_transit` |
| `declaration.exited` | ObjectEvent OBSERVE | `departing` (CBV 2.0) | `in_transit` |

Both at the gate's GLN (readPoint and bizLocation; `SMARTGATE_TRACE_GATE_GLN`), at the time the declarations
service gives, with one business transaction: the declaration NUMBER as
`https://smartgate.example/epcis/declaration/{number}` of type
`https://smartgate.example/epcis/btt/customsDeclaration` (CBV 2.0 has no customs declaration type, nor a customs
release step). Nothing else of the declaration: no value, no duties, no trader, no containers or truck (the buyer's
page shows these events; the number is what a buyer may see, per issue 15 §4).

Idempotent twice over: the consumer's dedupe row (the same bus event), and the eventID, a UUID v5 of the
declaration id and the step, so a replay of the step under another bus id is a duplicate of the same event (same
eventID, same hash), never a second capture.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from typing import Any
from urllib.parse import quote

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.kernel.auth import Principal, Role
from services.kernel.catalogue import DeclarationStep
from services.traceability import identifiers, service, validation
from services.traceability.diary import NAMESPACE
from services.traceability.models import TraceClaim

logger = logging.getLogger("smartgate.traceability.crossing")

DECLARATION_BTT = f"{NAMESPACE}btt/customsDeclaration"
DECLARATION_URI = f"{NAMESPACE}declaration/"
CUSTOMS_RELEASE = f"{NAMESPACE}bizstep/customs_release"
STEPS = {"released": CUSTOMS_RELEASE, "exited": "departing"}


class _System(Principal):
    """The platform itself, named `system:traceability` in the ledger (as the declarations service names
    `system:risk`): no key recorded these events."""

    @property
    def actor(self) -> str:
        return "system:traceability"


SYSTEM = _System(key_id="traceability", role=Role.admin, organisation_id=None, label="system")
_IDS = uuid.UUID("5f0c3a52-8d0e-4d55-9a55-1b5e7a3c2e10")  # the namespace of these events' UUID v5 eventIDs


def event_id(declaration_id: str, status: str) -> str:
    """The eventID of a declaration's release or exit event: the same however often the step is delivered."""
    return f"urn:uuid:{uuid.uuid5(_IDS, f'{declaration_id}:{status}')}"


def pallets_of(session: Session, declaration_id: str) -> list[str]:
    """The SSCCs the declaration draws on (its current trace claims)."""
    rows = session.scalars(select(TraceClaim.sscc).where(TraceClaim.declaration_id == declaration_id).distinct())
    return sorted(set(rows))


def to_event(step: DeclarationStep, ssccs: list[str], gate_gln: str) -> dict[str, Any]:
    """The EPCIS 2.0 event of a traced declaration's release or exit, at the gate."""
    at = dt.datetime.fromisoformat(step.at.replace("Z", "+00:00"))
    if at.tzinfo is None:
        at = at.replace(tzinfo=dt.UTC)
    place = {"id": f"{identifiers.ID_GS1}/414/{gate_gln}"}
    return {
        "@context": service.CONTEXT,
        "type": "ObjectEvent",
        "eventID": event_id(step.declaration_id, step.status),
        "eventTime": service.iso(at),
        "eventTimeZoneOffset": "+07:00",  # the gate's (Asia/Ho_Chi_Minh; Hekou is +08:00, its events are its own)
        "action": "OBSERVE",
        "epcList": [f"{identifiers.ID_GS1}/00/{s}" for s in ssccs],
        "bizStep": STEPS[step.status],
        "disposition": "in_transit",
        "readPoint": place,
        "bizLocation": place,
        "bizTransactionList": [
            {"type": DECLARATION_BTT, "bizTransaction": DECLARATION_URI + quote(step.number or "", safe="")}
        ],
    }


def on_step(session: Session, step: DeclarationStep, gate_gln: str) -> None:
    """Record the release or exit of a declaration that drew on pallets; any other step, or a declaration that
    names no pallet, records nothing."""
    if step.status not in STEPS or not step.number:
        return
    ssccs = pallets_of(session, step.declaration_id)
    if not ssccs:
        return
    event = to_event(step, ssccs, gate_gln)
    errors = validation.single_event_errors(event)
    if errors:  # a builder or settings bug (a GLN with a wrong check digit): never stored, said loudly
        logger.error("crossing event refused", extra={"declaration_id": step.declaration_id, "errors": errors})
        return
    outcome = service.store(session, [event], None, capture_id=None, principal=SYSTEM)
    if outcome.errors:
        logger.error(
            "crossing event conflicts with a stored one",
            extra={"declaration_id": step.declaration_id, "errors": outcome.errors},
        )
