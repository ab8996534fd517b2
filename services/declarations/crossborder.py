"""The declarations service's side of the exchange with the partner administration (issue 14).

Out: the events the exchange service turns into messages: `declaration.export_notice` (an export registered or
amended: the partner's pre-arrival notice), `declaration.crossed` (the truck left our gate: exit for an export,
entry for an import), `declaration.control_result` (an inspection's outcome, a mirror check's findings).

In: the `exchange.*_received` events, kept in our own read models (the partner's consignments, its Form E
certificates, both sides' crossings, its control results), which the assessment reads: the mirror check and the
Form E verification (services/declarations/mirror.py). Data arrives in either order: a declaration under review is
assessed again when the partner's data arrives later (as a gate mismatch does).

The consignment is named by its correlation id: the exporting side's declaration number (ours for an export; for an
import, the `partner_reference` the importer gave).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from services.declarations import mirror
from services.declarations.events import CONTROL_RESULT, CROSSED, EXPORT_NOTICE
from services.declarations.models import (
    ConsignmentCrossing,
    Declaration,
    OriginClaim,
    PartnerCertificate,
    PartnerConsignment,
    PartnerControl,
)
from services.declarations.schemas import Status
from services.declarations.selectivity import public_actor
from services.kernel import catalogue
from services.kernel.database import utcnow
from services.kernel.outbox import Event, event_row, record_events

logger = logging.getLogger("smartgate.declarations.crossborder")

# Claims of these declarations no longer hold quantity of a certificate.
DEAD = (Status.cancelled.value, Status.rejected.value, Status.expired.value)
REVIEW = (Status.awaiting_documents.value, Status.inspection.value)


def correlation_of(decl: Declaration) -> str | None:
    """The consignment's reference shared with the partner: the exporting side's declaration number."""
    return decl.number if decl.kind == "export" else decl.partner_reference


def _party(p: dict[str, Any]) -> dict[str, Any]:
    return {"name": p["name"], "address": p["address"], "country": p["country"], "tax_id": p.get("tax_id")}


def export_notice(decl: Declaration, now: dt.datetime) -> dict[str, Any]:
    """The `declaration.export_notice` event of a registered export (every field, as the catalogue requires)."""
    body = decl.body
    transport = body.get("transport", {})
    origin = body.get("preferential_origin") or {}
    return event_row(
        type=EXPORT_NOTICE,
        subject=decl.id,
        payload={
            "declaration_id": decl.id,
            "number": decl.number,
            "version": decl.version,
            "procedure_code": body["procedure_code"],
            "border_gate": decl.border_gate,
            "consignor": _party(body["consignor"]),
            "consignee": _party(body["consignee"]),
            "items": [
                {
                    k: str(item[k])
                    for k in (
                        "hs_code",
                        "description",
                        "origin",
                        "quantity",
                        "unit",
                        "gross_mass_kg",
                        "net_mass_kg",
                        "customs_value",
                        "currency",
                    )
                }
                for item in body["items"]
            ],
            "total_gross_mass_kg": str(body["total_gross_mass_kg"]),
            "containers": [{"number": c["number"], "seals": c.get("seals", [])} for c in body.get("containers", [])],
            "truck_plate": transport["truck_plate"],
            "trailer_plate": transport.get("trailer_plate"),
            "expected_crossing": transport["expected_arrival"],
            "origin_certificate": origin.get("form_e_number"),
            "at": now.isoformat(),
        },
    )


def crossed(decl: Declaration, now: dt.datetime) -> dict[str, Any]:
    """The `declaration.crossed` event of a declaration whose truck left our gate."""
    body = decl.body
    return event_row(
        type=CROSSED,
        subject=decl.id,
        payload={
            "declaration_id": decl.id,
            "number": decl.number,
            "kind": decl.kind,
            "consignment_reference": correlation_of(decl),
            "direction": "exit" if decl.kind == "export" else "entry",
            "border_gate": decl.border_gate,
            "truck_plate": body.get("transport", {}).get("truck_plate"),
            "containers": [{"number": c["number"], "seals": c.get("seals", [])} for c in body.get("containers", [])],
            "at": now.isoformat(),
        },
    )


def control_result(
    decl: Declaration, *, outcome: str, findings: list[dict[str, Any]], actor: str, now: dt.datetime
) -> dict[str, Any]:
    """The `declaration.control_result` event: what customs found, to share with the partner."""
    return event_row(
        type=CONTROL_RESULT,
        subject=decl.id,
        payload={
            "declaration_id": decl.id,
            "number": decl.number,
            "kind": decl.kind,
            "consignment_reference": correlation_of(decl),
            "outcome": outcome,
            "findings": [
                {
                    "code": f["code"],
                    "detail": f["detail"],
                    "line": f.get("line"),
                    "ours": f.get("ours"),
                    "theirs": f.get("theirs"),
                }
                for f in findings
            ],
            "decided_by": public_actor(actor),
            "at": now.isoformat(),
        },
    )


def step_events(decl: Declaration, action: str, to_status: str, *, now: dt.datetime) -> list[dict[str, Any]]:
    """The exchange events a lifecycle step adds to its `declaration.<verb>` event."""
    if decl.kind == "export" and decl.number and action in ("submit", "amend") and to_status != Status.draft:
        return [export_notice(decl, now)]
    if action == "exit" and correlation_of(decl):
        # Only a consignment the partner can name has a journey across both gates.
        return [crossed(decl, now)]
    return []


def copy_references(decl: Declaration) -> None:
    """Set the lookup columns from the body (on filing and on every amendment)."""
    body = decl.body
    decl.partner_reference = body.get("partner_reference") if decl.kind == "import" else None
    origin = body.get("preferential_origin") or {}
    decl.origin_certificate = origin.get("form_e_number") if decl.kind == "import" else None


# What the assessment reads -----------------------------------------------------------------------------------------


@dataclass(slots=True)
class PartnerData:
    """What the partner told us about a declaration's consignment."""

    view: dict[str, Any] | None = None
    currencies: set[str] = field(default_factory=set)
    origin_check: dict[str, Any] | None = None
    findings: list[dict[str, Any]] = field(default_factory=list)


def partner_data(session: Session, decl: Declaration, day: dt.date, *, verify_form_e: bool) -> PartnerData:
    """The partner's pre-arrival view (for an import), the Form E verification (an import claiming one, when the
    rule set verifies) and the findings the partner reported about the consignment."""
    out = PartnerData()
    reference = correlation_of(decl)
    if reference:
        if decl.kind == "import":
            row = session.get(PartnerConsignment, reference)
            if row is not None:
                out.view = row.payload
                out.currencies = {
                    str(i.get("customsValueAmount", {}).get("currencyId"))
                    for i in row.payload.get("goodsShipment", {}).get("governmentAgencyGoodsItem", [])
                }
        for control in session.scalars(
            select(PartnerControl)
            .where(PartnerControl.correlation_id == reference)
            .order_by(PartnerControl.received_at)
        ):
            for f in control.payload.get("findings", []):
                if f.get("code") in ("mirror_discrepancy", "origin_unverified"):
                    # The partner's "ours" is our "theirs".
                    out.findings.append(
                        {
                            "code": f["code"],
                            "detail": f.get("detail", ""),
                            "ours": f.get("theirs"),
                            "theirs": f.get("ours"),
                            "message_id": control.message_id,
                        }
                    )
    if verify_form_e and decl.kind == "import" and decl.body.get("preferential_origin"):
        number = decl.body["preferential_origin"]["form_e_number"]
        cert = session.get(PartnerCertificate, number)
        used: dict[str, Decimal] = {}
        if cert is not None:
            rows = session.execute(
                select(OriginClaim.hs6, func.sum(OriginClaim.quantity))
                .join(Declaration, Declaration.id == OriginClaim.declaration_id)
                .where(
                    OriginClaim.certificate_number == number,
                    OriginClaim.declaration_id != decl.id,
                    Declaration.status.not_in(DEAD),
                )
                .group_by(OriginClaim.hs6)
            )
            used = {hs6: Decimal(total) for hs6, total in rows}
        out.origin_check = mirror.verify_origin(
            decl.body,
            certificate=cert.certificate if cert else None,
            issued_on=cert.issued_on if cert else None,
            valid_until=cert.valid_until if cert else None,
            used=used,
            registration_date=day,
        )
    return out


def record_claims(session: Session, decl: Declaration, origin_check: dict[str, Any] | None) -> None:
    """Keep the quantity a verified claim takes from its certificate (replacing the declaration's earlier claim)."""
    if origin_check is None and decl.version == 1:
        return  # nothing claimed, nothing to replace: filings without a Form E pay no statement here
    session.execute(delete(OriginClaim).where(OriginClaim.declaration_id == decl.id))
    if origin_check is None or origin_check.get("status") != mirror.VERIFIED:
        return
    for hs6, claim in origin_check["claims"].items():
        session.add(
            OriginClaim(
                declaration_id=decl.id,
                hs6=hs6,
                certificate_number=origin_check["certificate"],
                quantity=Decimal(claim["quantity"]),
                unit=claim["unit"],
            )
        )
    session.flush()


def mirror_hits(decl: Declaration) -> list[dict[str, Any]]:
    """The cross-border rule hits of the declaration's latest assessment."""
    reasons = (decl.risk or {}).get("reasons", [])
    return [h for h in reasons if h.get("rule") in ("mirror_discrepancy", "origin_unverified")]


# Consumers of the exchange service's events --------------------------------------------------------------------


def _received(event: Event) -> catalogue.ExchangeReceived | None:
    return catalogue.read(event, catalogue.ExchangeReceived)


def _when(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _reassess(session: Session, decls: list[Declaration], reassess: Any) -> None:
    """Assess again the declarations the partner's data concerns, when still before a decision."""
    for decl in decls:
        if decl.status == Status.submitted or decl.status in REVIEW:
            before = decl.channel
            reassess(session, decl, route=decl.status == Status.submitted)
            if decl.channel != before:
                logger.info("channel raised by partner data", extra={"declaration_id": decl.id})


def share_findings(session: Session, decl: Declaration) -> None:
    """Tell the partner what our mirror check found about an import (its `controlResult`), so that the exporting
    side flags its own declaration too."""
    if decl.kind != "import" or not decl.partner_reference:
        return
    findings = []
    for hit in mirror_hits(decl):
        evidence = hit.get("evidence")
        if hit["rule"] == "mirror_discrepancy" and isinstance(evidence, list):
            findings += [
                {
                    "code": "mirror_discrepancy",
                    "detail": e["detail"] + (f" (HS {e['hs6']})" if e.get("hs6") else ""),
                    "ours": e.get("ours"),
                    "theirs": e.get("theirs"),
                }
                for e in evidence
                if e.get("reported_by") != "partner"
            ]
        elif hit["rule"] == "origin_unverified" and isinstance(evidence, dict):
            findings.append({"code": "origin_unverified", "detail": hit["detail"]})
    if findings:
        record_events(
            session,
            [control_result(decl, outcome="mirrorDiscrepancy", findings=findings, actor="system:mirror", now=utcnow())],
        )


def on_pre_arrival(session: Session, event: Event, reassess: Any) -> None:
    """The partner's pre-arrival notice: kept (the newest replaces an older one); our import declarations naming
    the consignment are assessed again."""
    got = _received(event)
    if got is None:
        return
    row = session.get(PartnerConsignment, got.correlation_id)
    sent = _when(got.created_at)
    if row is None:
        session.add(
            PartnerConsignment(
                correlation_id=got.correlation_id,
                sender=got.sender,
                message_id=got.message_id,
                payload=got.payload,
                sent_at=sent,
                received_at=_when(got.received_at),
            )
        )
    elif sent >= row.sent_at:
        row.sender, row.message_id, row.payload, row.sent_at = got.sender, got.message_id, got.payload, sent
        row.received_at = _when(got.received_at)
    else:
        return  # an older notice arriving late changes nothing
    session.flush()
    decls = list(
        session.scalars(
            select(Declaration).where(Declaration.partner_reference == got.correlation_id, Declaration.kind == "import")
        )
    )
    _reassess(session, decls, reassess)


def on_origin_certificate(session: Session, event: Event, reassess: Any) -> None:
    """A Form E the exporting administration issued: kept; import declarations claiming it are assessed again."""
    got = _received(event)
    if got is None:
        return
    cert = got.payload
    number = str(cert.get("id") or got.correlation_id)
    try:
        issued = dt.date.fromisoformat(cert["issueDate"])
        valid = dt.date.fromisoformat(cert["validityEndDate"])
    except (KeyError, ValueError):
        logger.warning("origin certificate without valid dates skipped", extra={"event_id": event.id})
        return
    row = session.get(PartnerCertificate, number)
    if row is None:
        session.add(
            PartnerCertificate(
                number=number,
                sender=got.sender,
                message_id=got.message_id,
                certificate=cert,
                issued_on=issued,
                valid_until=valid,
                received_at=_when(got.received_at),
            )
        )
    else:
        row.certificate, row.issued_on, row.valid_until, row.message_id = cert, issued, valid, got.message_id
    session.flush()
    decls = list(session.scalars(select(Declaration).where(Declaration.origin_certificate == number)))
    _reassess(session, decls, reassess)


def on_crossing(session: Session, event: Event) -> None:
    """The partner's crossing of a consignment (its exit or its entry): with ours, it closes the journey."""
    got = _received(event)
    if got is None:
        return
    p = got.payload
    direction = "exit" if p.get("crossingDirectionCode") == "exit" else "entry"
    _store_crossing(
        session,
        got.correlation_id,
        side="partner",
        direction=direction,
        at=_when(p["actualDateTime"]),
        gate=p.get("borderLocation", {}).get("id"),
        plate=p.get("borderTransportMeans", {}).get("id"),
        declaration_id=None,
        message_id=got.message_id,
    )


def on_own_crossing(session: Session, event: Event) -> None:
    """Our own `declaration.crossed`: the other half of the journey."""
    own = catalogue.read(event, catalogue.DeclarationCrossed)
    if own is None or not own.consignment_reference:
        return
    _store_crossing(
        session,
        own.consignment_reference,
        side="ours",
        direction=own.direction,
        at=_when(own.at),
        gate=own.border_gate,
        plate=own.truck_plate,
        declaration_id=own.declaration_id,
        message_id=None,
    )


def _store_crossing(
    session: Session,
    correlation_id: str,
    *,
    side: str,
    direction: str,
    at: dt.datetime,
    gate: str | None,
    plate: str | None,
    declaration_id: str | None,
    message_id: str | None,
) -> None:
    row = session.get(ConsignmentCrossing, (correlation_id, side))
    if row is None:
        session.add(
            ConsignmentCrossing(
                correlation_id=correlation_id,
                side=side,
                direction=direction,
                at=at,
                gate=gate,
                truck_plate=plate,
                declaration_id=declaration_id,
                message_id=message_id,
            )
        )
    else:
        row.direction, row.at, row.gate, row.truck_plate = direction, at, gate, plate
    session.flush()


def on_control_result(session: Session, event: Event, reassess: Any) -> None:
    """A control result of the partner: kept and shown to officers; mirror or origin findings about one of our
    declarations raise its risk (assessed again while under review)."""
    got = _received(event)
    if got is None or session.get(PartnerControl, got.message_id) is not None:
        return
    session.add(
        PartnerControl(
            message_id=got.message_id,
            correlation_id=got.correlation_id,
            sender=got.sender,
            payload=got.payload,
            received_at=_when(got.received_at),
        )
    )
    session.flush()
    if not any(f.get("code") in ("mirror_discrepancy", "origin_unverified") for f in got.payload.get("findings", [])):
        return
    decls = list(
        session.scalars(
            select(Declaration).where(
                ((Declaration.kind == "export") & (Declaration.number == got.correlation_id))
                | ((Declaration.kind == "import") & (Declaration.partner_reference == got.correlation_id))
            )
        )
    )
    for decl in decls:
        if decl.status == Status.submitted or decl.status in REVIEW:
            reassess(session, decl, route=decl.status == Status.submitted, share=False)


# Queries -----------------------------------------------------------------------------------------------------------


def journey(session: Session, correlation_id: str) -> dict[str, Any]:
    """Both sides' crossings of a consignment, and the cross-border time once an exit and an entry are known."""
    rows = {
        r.side: r
        for r in session.scalars(
            select(ConsignmentCrossing).where(ConsignmentCrossing.correlation_id == correlation_id)
        )
    }
    out: dict[str, Any] = {
        "correlation_id": correlation_id,
        "crossings": [
            {
                "side": r.side,
                "direction": r.direction,
                "at": r.at.isoformat(),
                "gate": r.gate,
                "truck_plate": r.truck_plate,
            }
            for r in sorted(rows.values(), key=lambda r: r.at)
        ],
        "closed": False,
        "cross_border_seconds": None,
    }
    exits = [r for r in rows.values() if r.direction == "exit"]
    entries = [r for r in rows.values() if r.direction == "entry"]
    if exits and entries:
        out["closed"] = True
        out["cross_border_seconds"] = int((entries[0].at - exits[0].at).total_seconds())
    return out


def cross_border_times(session: Session, *, since: dt.datetime | None = None) -> dict[str, Any]:
    """The Time Release Study across the border: for every closed journey, exit on one side to entry on the other
    (count, median, p90 and max, in seconds)."""
    stmt = select(ConsignmentCrossing)
    if since is not None:
        stmt = stmt.where(ConsignmentCrossing.at >= since)
    by_ref: dict[str, dict[str, dt.datetime]] = {}
    for r in session.scalars(stmt):
        by_ref.setdefault(r.correlation_id, {})[r.direction] = r.at
    times = sorted(
        int((d["entry"] - d["exit"]).total_seconds()) for d in by_ref.values() if {"exit", "entry"} <= d.keys()
    )
    if not times:
        return {"journeys": 0, "median_seconds": None, "p90_seconds": None, "max_seconds": None}
    return {
        "journeys": len(times),
        "median_seconds": times[len(times) // 2],
        "p90_seconds": times[min(len(times) - 1, int(0.9 * len(times)))],
        "max_seconds": times[-1],
    }


def partner_side(session: Session, decl: Declaration) -> dict[str, Any]:
    """Our lines and the partner's side by side, per HS6, with what differs (the console's mirror view)."""
    reference = correlation_of(decl)
    row = session.get(PartnerConsignment, reference) if reference and decl.kind == "import" else None
    controls = (
        list(
            session.scalars(
                select(PartnerControl)
                .where(PartnerControl.correlation_id == reference)
                .order_by(PartnerControl.received_at)
            )
        )
        if reference
        else []
    )
    cert = session.get(PartnerCertificate, decl.origin_certificate) if decl.origin_certificate else None
    out: dict[str, Any] = {
        "reference": reference,
        "received": row is not None,
        "rows": [],
        "controls": [
            {
                "outcome": c.payload.get("outcomeCode"),
                "findings": c.payload.get("findings", []),
                "at": c.received_at.isoformat(),
                "sender": c.sender,
            }
            for c in controls
        ],
        "certificate": cert.certificate if cert else None,
        "origin_check": (decl.duties or {}).get("origin_check"),
        "hits": mirror_hits(decl),
    }
    if row is None:
        return out
    fx: dict[str, Decimal] = {}
    ours, theirs = mirror.our_groups(decl.body, fx), mirror.partner_groups(row.payload, fx)
    flagged = {
        (f.get("hs6"), f.get("code")) for h in out["hits"] if isinstance(h.get("evidence"), list) for f in h["evidence"]
    }
    for hs6 in sorted(ours.keys() | theirs.keys()):
        a, b = ours.get(hs6), theirs.get(hs6)
        out["rows"].append(
            {
                "hs6": hs6,
                "fields": [
                    {
                        "name": name,
                        "ours": getter(a) if a else None,
                        "theirs": getter(b) if b else None,
                        "differs": (hs6, code) in flagged or (hs6, "hs6") in flagged,
                    }
                    for name, code, getter in (
                        ("quantity", "quantity", lambda g: f"{mirror._fmt(g.quantity)} {'/'.join(sorted(g.units))}"),
                        ("gross_mass_kg", "gross_mass", lambda g: mirror._fmt(g.gross_kg)),
                        ("origin", "origin", lambda g: ", ".join(sorted(g.origins))),
                    )
                ],
            }
        )
    return out
