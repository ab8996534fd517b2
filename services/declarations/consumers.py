"""Events of other services that change declarations: gate mismatches (risk hook), officers' resolutions of gate
holds, and trucks leaving the gate."""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from services.declarations import crossborder, routing, service
from services.declarations.exceptions import CustomsValueTooLarge
from services.declarations.models import Declaration
from services.declarations.schemas import Status
from services.kernel import catalogue
from services.kernel.outbox import Event

logger = logging.getLogger("smartgate.declarations.consumers")

CONSUMER = "declarations"


def on_gate_mismatch(session: Session, event: Event) -> None:
    """A gate read that does not match raises the declaration's risk: reassessed if still under review."""
    mismatch = catalogue.read(event, catalogue.GateMismatch)
    decl_id = mismatch.declaration_id if mismatch else None
    decl = session.get(Declaration, decl_id) if decl_id else None
    if decl is None:
        return
    risk = dict(decl.risk or {})
    risk["gate_mismatches"] = int(risk.get("gate_mismatches", 0)) + 1
    risk.setdefault("gate_events", []).append(event.id)
    decl.risk = risk
    if decl.status == Status.submitted:
        try:
            service.assess_and_route(session, decl)
        except CustomsValueTooLarge:
            # Only a rate re-posted for the registration day can bring a registered declaration here; a consumer
            # cannot answer 422, and refusing the event would stop the queue: the declaration goes to review.
            logger.warning("reassessment refused: customs value too large", extra={"declaration_id": decl.id})
            decl.channel = "red"
    elif decl.status in (Status.awaiting_documents, Status.inspection):
        decl.channel = "red"


def on_trace_checked(session: Session, event: Event) -> None:
    """The traceability service answered the trace check: kept with the risk record (officers see the failures,
    the anomaly flags and their evidence); failures of the current version are risk hits (`trace_*`), so a
    declaration still under review is re-assessed, one waiting for the check is cleared or queued. An answer for
    an older version is kept for officers only."""
    checked = catalogue.read(event, catalogue.TraceChecked)
    decl = session.get(Declaration, checked.declaration_id) if checked else None
    if checked is None or decl is None:
        return
    previous = (decl.risk or {}).get("trace") or {}
    if int(previous.get("version", 0)) > checked.version:
        return  # a late answer about an older version: the newer one stands
    risk = dict(decl.risk or {})
    risk["trace"] = {
        "version": checked.version,
        "failures": [f.model_dump() for f in checked.failures],
        "flags": [f.model_dump() for f in checked.flags],
        "pallets": list(checked.pallets),
        "checked_at": checked.checked_at,
        "event_id": event.id,
    }
    decl.risk = risk
    if checked.version != decl.version:
        return
    if decl.status == Status.submitted:
        try:
            service.assess_and_route(session, decl)
        except CustomsValueTooLarge:
            logger.warning("reassessment refused: customs value too large", extra={"declaration_id": decl.id})
            decl.channel = "red"
    elif checked.failures and decl.status in (Status.awaiting_documents, Status.inspection):
        decl.channel = "red"


def on_gate_exit(session: Session, event: Event) -> None:
    """The truck carrying a released declaration's goods left through the gate."""
    exited = catalogue.read(event, catalogue.GateExited)
    decl_id = exited.declaration_id if exited else None
    decl = session.get(Declaration, decl_id) if decl_id else None
    if exited is None or decl is None:
        return
    if decl.status != Status.released:
        logger.warning("exit reported for a declaration that is not released", extra={"declaration_id": decl_id})
        return
    service.transition(session, decl=decl, action="exit", actor=f"gate:{exited.camera_id}", reason="truck exited")


def on_gate_hold_resolved(session: Session, event: Event) -> None:
    """An officer resolved a gate hold of this declaration's truck; recorded in its history either way.

    Released: the declaration goes on as it would have without the hold. The channel the mismatch raised stays
    (the risk it revealed is still the declaration's), but the hold itself no longer stands in the way: a truck
    released on the way out with its goods released leaves (the gate's `gate.exited` closes the declaration).
    Escalated: red channel and physical inspection (kiểm tra thực tế): a declaration still under customs control
    goes to `inspection` in the review queue (its assignee, or the next officer in rotation; a supervisor decides
    any), even one already cleared or released; one already in inspection only turns red.
    """
    resolved = catalogue.read(event, catalogue.GateHoldResolved)
    decl = session.get(Declaration, resolved.declaration_id) if resolved and resolved.declaration_id else None
    if resolved is None or decl is None:
        return
    where = f"{resolved.lane}, {'exit' if resolved.direction == 'out' else 'entry'}"
    if resolved.action == "release":
        text = f"gate hold released ({where}): {resolved.reason}"
        service.note(session, decl, action="gate_release", actor=resolved.actor, reason=text)
        return
    text = f"gate hold escalated to physical inspection ({where}): {resolved.reason}"
    decl.channel = "red"
    if (decl.status, "gate_escalate") in service.TRANSITIONS:
        routing.enqueue(session, decl)
        service.transition(session, decl=decl, action="gate_escalate", actor=resolved.actor, reason=text)
    else:
        service.note(session, decl, action="gate_escalate", actor=resolved.actor, reason=text)


# The partner administration's data, as the exchange service publishes it (issue 14): kept in our read models, and
# the declarations it concerns assessed again (services/declarations/crossborder.py).


def on_pre_arrival_received(session: Session, event: Event) -> None:
    """The exporting side's pre-arrival notice of a consignment."""
    crossborder.on_pre_arrival(session, event, service.reassess)


def on_origin_certificate_received(session: Session, event: Event) -> None:
    """A Form E the exporting side issued."""
    crossborder.on_origin_certificate(session, event, service.reassess)


def on_crossing_received(session: Session, event: Event) -> None:
    """The partner's exit or entry of a consignment."""
    crossborder.on_crossing(session, event)


def on_control_result_received(session: Session, event: Event) -> None:
    """The partner's control result (inspection outcome, mirror findings)."""
    crossborder.on_control_result(session, event, service.reassess)


def on_crossed(session: Session, event: Event) -> None:
    """Our own truck's exit or entry: the other half of the consignment's journey."""
    crossborder.on_own_crossing(session, event)


EXCHANGE_CONSUMERS = {
    "exchange.pre_arrival_received": on_pre_arrival_received,
    "exchange.origin_certificate_received": on_origin_certificate_received,
    "exchange.crossing_received": on_crossing_received,
    "exchange.control_result_received": on_control_result_received,
    "declaration.crossed": on_crossed,
}
