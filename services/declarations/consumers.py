"""Events of other services that change declarations: gate mismatches (risk hook) and trucks leaving the gate."""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from services.declarations import crossborder, service
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
