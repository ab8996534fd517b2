"""preArrival: an export declaration registered here becomes the partner's pre-arrival notice."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from services.exchange.messages import events
from services.exchange.messages.common import CERTIFICATE_OF_ORIGIN, equipment, party, publish_received
from services.exchange.registry import Inbound, Outbound, Warning
from services.kernel import catalogue
from services.kernel.outbox import Event

NAME = "preArrival"


def payload_of(n: catalogue.DeclarationExportNotice) -> dict[str, Any]:
    """The message payload of a `declaration.export_notice` (WCO Data Model element names)."""
    return {
        "declaration": {
            "id": n.number,
            "typeCode": "EX",
            "procedureCode": n.procedure_code,
            "version": n.version,
            "exitOffice": {"id": n.border_gate},
        },
        "consignor": party(n.consignor),
        "consignee": party(n.consignee),
        "goodsShipment": {
            "totalGrossMassMeasure": {"value": n.total_gross_mass_kg, "unitCode": "KGM"},
            "governmentAgencyGoodsItem": [
                {
                    "sequenceNumeric": i,
                    "commodity": {
                        "description": line.description,
                        "classification": {
                            "id": line.hs_code[:6],
                            "identificationTypeCode": "HS",
                            "nationalTariffCode": line.hs_code,
                        },
                    },
                    "origin": {"countryCode": line.origin},
                    "goodsMeasure": {
                        "tariffQuantity": {"value": line.quantity, "unitCode": line.unit},
                        "grossMassMeasure": {"value": line.gross_mass_kg, "unitCode": "KGM"},
                        "netNetWeightMeasure": {"value": line.net_mass_kg, "unitCode": "KGM"},
                    },
                    "customsValueAmount": {"value": line.customs_value, "currencyId": line.currency},
                }
                for i, line in enumerate(n.items, start=1)
            ],
        },
        "transportEquipment": equipment(n.containers),
        "borderTransportMeans": {
            "id": n.truck_plate,
            "identificationTypeCode": "plate",
            "modeCode": "3",
            "trailerId": n.trailer_plate,
        },
        "additionalDocument": (
            [{"id": n.origin_certificate, "typeCode": CERTIFICATE_OF_ORIGIN}] if n.origin_certificate else []
        ),
        "expectedCrossing": {"dateTime": n.expected_crossing, "borderLocation": {"id": n.border_gate}},
    }


def outbound(event: Event) -> list[Outbound]:
    """`declaration.export_notice` → preArrival to the partner, correlated by our declaration number."""
    notice = catalogue.read(event, catalogue.DeclarationExportNotice)
    if notice is None:
        return []
    return [Outbound(type=NAME, correlation_id=notice.number, recipient=None, payload=payload_of(notice))]


def inbound(session: Session, message: Inbound) -> list[Warning]:
    """Published for the declarations service, which keeps the partner's view of the consignment."""
    warnings: list[Warning] = []
    if message.payload["declaration"]["id"] != message.correlation_id:
        warnings.append(
            {
                "code": "preArrival.correlation",
                "detail": "declaration.id differs from the correlation id; the correlation id is kept",
            }
        )
    publish_received(session, events.PRE_ARRIVAL_RECEIVED, message)
    return warnings
