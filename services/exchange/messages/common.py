"""What the message types share: their schemas, the received-event helper, WCO DM shapes; our administration's
code is `services.exchange.settings.own_code` (re-exported here)."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from services.exchange.registry import Inbound
from services.exchange.settings import own_code
from services.kernel.database import utcnow
from services.kernel.outbox import record_event

__all__ = ["own_code"]

SCHEMAS = Path(__file__).resolve().parent.parent / "schemas"
# UNTDID 1001 document name code of a certificate of origin (WCO DM AdditionalDocument.TypeCode).
CERTIFICATE_OF_ORIGIN = "861"


@functools.cache
def schema(name: str) -> dict[str, Any]:
    """The JSON Schema (Draft 2020-12) of a message type's payload, as published under
    /api/v1/exchange/schemas/<name>.v1.json."""
    loaded: dict[str, Any] = json.loads((SCHEMAS / f"{name}.v1.json").read_text(encoding="utf-8"))
    return loaded


def publish_received(session: Session, type_: str, message: Inbound) -> str:
    """Tell the other services what arrived: an `exchange.*_received` event with the message's content, in the
    transaction that stores the message (the transport's)."""
    return record_event(
        session,
        type=type_,
        subject=message.correlation_id,
        payload={
            "message_id": message.message_id,
            "sender": message.sender,
            "correlation_id": message.correlation_id,
            "created_at": message.created_at.isoformat(),
            "received_at": utcnow().isoformat(),
            "payload": message.payload,
        },
    )


def party(p: Any) -> dict[str, Any]:
    """A party of ours (catalogue PartyRef) as the WCO DM names it."""
    return {"id": p.tax_id, "name": p.name, "address": {"line": p.address, "countryCode": p.country}}


def equipment(containers: Any) -> list[dict[str, Any]]:
    """Containers and their seals as WCO DM TransportEquipment."""
    return [{"id": c.number, "seal": [{"id": s} for s in c.seals]} for c in containers]


def transport_means(plate: str | None, trailer: str | None = None) -> dict[str, Any]:
    """The truck as WCO DM BorderTransportMeans (mode 3: road)."""
    return {"id": plate or "UNKNOWN", "identificationTypeCode": "plate", "modeCode": "3", "trailerId": trailer}
