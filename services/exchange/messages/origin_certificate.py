"""originCertificate: ACFTA Form E certificates issued on the exporting side (an issuer role), sent to the
importing side, whose duty engine verifies Form E claims against them (services/declarations/mirror.py)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.exchange.messages import events
from services.exchange.messages.common import own_code, publish_received
from services.exchange.messages.models import OriginCertificate
from services.exchange.messages.schemas import CertificateIn
from services.exchange.registry import Inbound, Outbound, Rejected, Warning
from services.kernel import catalogue
from services.kernel.auth import Principal, Role
from services.kernel.errors import Conflict, NotFound
from services.kernel.outbox import Event, record_event

NAME = "originCertificate"
ISSUED, RECEIVED = "issued", "received"


def _party(p: Any) -> dict[str, Any]:
    return {"id": p.tax_id, "name": p.name, "address": {"line": p.address, "countryCode": p.country}}


def payload_of(body: CertificateIn, *, issuer: str) -> dict[str, Any]:
    """The originCertificate payload of a certificate as the issuer filed it (WCO DM names, decimals as strings)."""
    assert body.valid_until is not None  # the schema sets the default
    return {
        "id": body.number,
        "typeCode": "ACFTA-E",
        "issueDate": body.issue_date.isoformat(),
        "validityEndDate": body.valid_until.isoformat(),
        "issuingAuthority": {"id": issuer, "name": body.issuing_authority},
        "exporter": _party(body.exporter),
        "importer": _party(body.importer),
        "importingCountryCode": body.importer.country,
        "governmentAgencyGoodsItem": [
            {
                "sequenceNumeric": i,
                "commodity": {
                    "description": line.description,
                    "classification": {
                        "id": line.hs_code[:6],
                        "identificationTypeCode": "HS",
                        "nationalTariffCode": line.hs_code if len(line.hs_code) > 6 else None,
                    },
                },
                "goodsMeasure": {
                    "tariffQuantity": {"value": _dec(line.quantity), "unitCode": line.unit},
                    "grossMassMeasure": {"value": _dec(line.gross_mass_kg), "unitCode": "KGM"},
                },
                "originCriterion": line.origin_criterion,
            }
            for i, line in enumerate(body.lines, start=1)
        ],
    }


def _dec(value: Any) -> str:
    return f"{value.normalize():f}" if hasattr(value, "normalize") else str(value)


def issue(session: Session, *, principal: Principal, body: CertificateIn) -> OriginCertificate:
    """Issue a Form E here (the exporting side): stored, and an `exchange.origin_certificate_issued` event that
    the transport sends to the importing side as originCertificate."""
    principal.require(Role.origin_issuer)
    assert body.valid_until is not None
    if session.get(OriginCertificate, (body.number, ISSUED)) is not None:
        raise Conflict(
            f"Form E {body.number} was already issued; a certificate number is issued once",
            code="origin_certificate.duplicate",
        )
    payload = payload_of(body, issuer=own_code())
    row = OriginCertificate(
        number=body.number,
        direction=ISSUED,
        partner=None,
        certificate=payload,
        issued_on=body.issue_date,
        valid_until=body.valid_until,
        message_id=None,
        created_by=principal.actor,
    )
    session.add(row)
    record_event(
        session,
        type=events.ORIGIN_CERTIFICATE_ISSUED,
        subject=f"form-e:{body.number}",
        payload={"number": body.number, "recipient": None, "certificate": payload, "actor": principal.actor},
    )
    session.flush()
    return row


def get(session: Session, *, principal: Principal, number: str) -> list[OriginCertificate]:
    """A certificate by number: as issued here and/or as received (issuers and customs staff)."""
    principal.require(Role.origin_issuer, Role.officer, Role.supervisor, Role.admin)
    rows = list(session.scalars(select(OriginCertificate).where(OriginCertificate.number == number[:32])))
    if not rows:
        raise NotFound(f"no Form E {number[:32]}")
    return rows


def outbound(event: Event) -> list[Outbound]:
    """`exchange.origin_certificate_issued` → originCertificate, correlated by the certificate number."""
    issued = catalogue.read(event, catalogue.OriginCertificateIssued)
    if issued is None:
        return []
    return [Outbound(type=NAME, correlation_id=issued.number, recipient=issued.recipient, payload=issued.certificate)]


def inbound(session: Session, message: Inbound) -> list[Warning]:
    """Stored as received and published (`exchange.origin_certificate_received`) for the declarations service's
    duty engine. A certificate whose validity ends before it was issued is refused; a number received again
    replaces the earlier content (the issuer's correction), with a warning."""
    cert = message.payload
    issued, valid = dt.date.fromisoformat(cert["issueDate"]), dt.date.fromisoformat(cert["validityEndDate"])
    if valid < issued:
        raise Rejected("originCertificate.validity", "validityEndDate is before issueDate", "/payload/validityEndDate")
    if issued > message.created_at.date() + dt.timedelta(days=1):
        raise Rejected("originCertificate.issueDate", "issued after the message was created", "/payload/issueDate")
    if cert["id"] != message.correlation_id:
        raise Rejected(
            "originCertificate.correlation", "the correlation id of a certificate is its number", "/correlationId"
        )
    warnings: list[Warning] = []
    row = session.get(OriginCertificate, (cert["id"], RECEIVED))
    if row is None:
        session.add(
            OriginCertificate(
                number=cert["id"],
                direction=RECEIVED,
                partner=message.sender,
                certificate=cert,
                issued_on=issued,
                valid_until=valid,
                message_id=message.message_id,
                created_by=f"partner:{message.sender}",
            )
        )
    else:
        if row.certificate != cert:
            warnings.append(
                {
                    "code": "originCertificate.replaced",
                    "detail": f"Form E {cert['id']} was received before; this content replaces it",
                }
            )
        row.certificate, row.issued_on, row.valid_until, row.message_id = cert, issued, valid, message.message_id
    session.flush()
    publish_received(session, events.ORIGIN_CERTIFICATE_RECEIVED, message)
    return warnings
