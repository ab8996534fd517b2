"""crossing: the truck of a consignment left our gate (exit for an export, entry for an import)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from services.exchange.messages import events
from services.exchange.messages.common import equipment, publish_received, transport_means
from services.exchange.registry import Inbound, Outbound, Warning
from services.kernel import catalogue
from services.kernel.outbox import Event

NAME = "crossing"


def outbound(event: Event) -> list[Outbound]:
    """`declaration.crossed` → crossing, when the consignment has a reference shared with the partner."""
    crossed = catalogue.read(event, catalogue.DeclarationCrossed)
    if crossed is None or not crossed.consignment_reference:
        return []
    payload = {
        "crossingDirectionCode": crossed.direction,
        "actualDateTime": crossed.at,
        "borderLocation": {"id": crossed.border_gate},
        "declaration": {"id": crossed.number, "typeCode": "EX" if crossed.kind == "export" else "IM"},
        "borderTransportMeans": transport_means(crossed.truck_plate),
        "transportEquipment": equipment(crossed.containers),
    }
    return [Outbound(type=NAME, correlation_id=crossed.consignment_reference, recipient=None, payload=payload)]


def inbound(session: Session, message: Inbound) -> list[Warning]:
    """Published: the declarations service closes the consignment's journey with it."""
    publish_received(session, events.CROSSING_RECEIVED, message)
    return []
