"""The message types that cross the border (issue 14, §2): `MESSAGE_TYPES`, which the transport
(services/exchange) sends from our events and calls on receipt. Catalogue: docs/exchange-messages.md."""

from __future__ import annotations

from services.exchange.messages import control_result, crossing, origin_certificate, pre_arrival
from services.exchange.messages.common import schema
from services.exchange.registry import MessageType

MESSAGE_TYPES: dict[str, MessageType] = {
    m.NAME: MessageType(name=m.NAME, version=1, schema=schema(m.NAME), outbound=m.outbound, inbound=m.inbound)
    for m in (pre_arrival, origin_certificate, crossing, control_result)
}
