"""Events of other services that change declarations: gate mismatches (risk hook) and trucks leaving the gate."""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from services.declarations import service
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
