"""controlResult: an inspection's outcome, or the mirror check's findings, shared with the partner."""

from __future__ import annotations

from sqlalchemy.orm import Session

from services.exchange.messages import events
from services.exchange.messages.common import publish_received
from services.exchange.registry import Inbound, Outbound, Warning
from services.kernel import catalogue
from services.kernel.outbox import Event

NAME = "controlResult"


def outbound(event: Event) -> list[Outbound]:
    """`declaration.control_result` → controlResult, when the consignment has a reference shared with the
    partner."""
    result = catalogue.read(event, catalogue.DeclarationControlResult)
    if result is None or not result.consignment_reference:
        return []
    payload = {
        "declaration": {"id": result.number, "typeCode": "EX" if result.kind == "export" else "IM"},
        "outcomeCode": result.outcome,
        "findings": [f.model_dump() for f in result.findings],
        "decidedBy": result.decided_by,
        "dateTime": result.at,
    }
    return [Outbound(type=NAME, correlation_id=result.consignment_reference, recipient=None, payload=payload)]


def inbound(session: Session, message: Inbound) -> list[Warning]:
    """Published: the declarations service shows it to officers and raises the risk of what it concerns."""
    publish_received(session, events.CONTROL_RESULT_RECEIVED, message)
    return []
