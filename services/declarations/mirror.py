"""What customs does with the partner administration's data (issue 14, §4): the mirror check of our declaration
against the partner's view of the same consignment, and the verification of a Form E claim against the
certificates the exporting side issued. Pure functions: the assessment gathers the data and stores the results.

Payloads of the partner are the exchange messages (services/exchange/schemas/*.v1.json, WCO Data Model names);
amounts travel as decimal strings.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any


@dataclass(frozen=True, slots=True)
class Tolerances:
    """How far the two sides may differ before it is a discrepancy (percent of the larger figure)."""

    mass_percent: Decimal = Decimal(2)
    value_percent: Decimal = Decimal(5)
    quantity_percent: Decimal = Decimal(0)
    same_hs6: bool = True


def _dec(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value)) if value is not None else None
    except (InvalidOperation, ValueError):
        return None


@dataclass(slots=True)
class Group:
    """The lines of one HS6 subheading, summed (the two sides may split lines differently)."""

    quantity: Decimal = Decimal(0)
    units: set[str] = field(default_factory=set)
    gross_kg: Decimal = Decimal(0)
    value_vnd: Decimal | None = Decimal(0)
    origins: set[str] = field(default_factory=set)


def our_groups(body: dict[str, Any], fx: dict[str, Decimal]) -> dict[str, Group]:
    """Our declaration's lines by HS6 (values in VND at our rates; None when a rate is missing)."""
    groups: dict[str, Group] = defaultdict(Group)
    for item in body.get("items", []):
        g = groups[str(item["hs_code"])[:6]]
        g.quantity += Decimal(str(item["quantity"]))
        g.units.add(item["unit"])
        g.gross_kg += Decimal(str(item["gross_mass_kg"]))
        g.origins.add(item["origin"])
        g.value_vnd = _add_vnd(g.value_vnd, item["customs_value"], item["currency"], fx)
    return dict(groups)


def partner_groups(payload: dict[str, Any], fx: dict[str, Decimal]) -> dict[str, Group]:
    """The partner's pre-arrival lines by HS6 (GoodsShipment.GovernmentAgencyGoodsItem)."""
    groups: dict[str, Group] = defaultdict(Group)
    for item in payload.get("goodsShipment", {}).get("governmentAgencyGoodsItem", []):
        classification = item.get("commodity", {}).get("classification", {})
        g = groups[str(classification.get("id", ""))[:6]]
        measure = item.get("goodsMeasure", {})
        quantity = measure.get("tariffQuantity", {})
        g.quantity += _dec(quantity.get("value")) or Decimal(0)
        g.units.add(str(quantity.get("unitCode", "")))
        g.gross_kg += _dec(measure.get("grossMassMeasure", {}).get("value")) or Decimal(0)
        g.origins.add(str(item.get("origin", {}).get("countryCode", "")))
        amount = item.get("customsValueAmount", {})
        g.value_vnd = _add_vnd(g.value_vnd, amount.get("value"), amount.get("currencyId"), fx)
    return dict(groups)


def _add_vnd(total: Decimal | None, value: Any, currency: Any, fx: dict[str, Decimal]) -> Decimal | None:
    amount = _dec(value)
    rate = Decimal(1) if currency == "VND" else fx.get(str(currency))
    if total is None or amount is None or rate is None:
        return None
    return total + amount * rate


def _off(ours: Decimal, theirs: Decimal, percent: Decimal) -> bool:
    """Whether two figures differ by more than `percent` of the larger one."""
    larger = max(abs(ours), abs(theirs))
    return larger > 0 and abs(ours - theirs) * 100 > percent * larger


def _fmt(value: Decimal) -> str:
    return f"{value.quantize(Decimal('0.001')).normalize():f}"


def compare(ours: dict[str, Group], theirs: dict[str, Group], tol: Tolerances) -> list[dict[str, Any]]:
    """The discrepancies between our lines and the partner's, per HS6, each with both figures as evidence."""
    findings: list[dict[str, Any]] = []

    def add(code: str, hs6: str, detail: str, mine: str | None, other: str | None) -> None:
        findings.append({"code": code, "hs6": hs6, "detail": detail, "ours": mine, "theirs": other})

    if tol.same_hs6:
        for hs6 in sorted(ours.keys() - theirs.keys()):
            add("hs6", hs6, f"HS {hs6} declared here, not by the partner", hs6, None)
        for hs6 in sorted(theirs.keys() - ours.keys()):
            add("hs6", hs6, f"HS {hs6} declared by the partner, not here", None, hs6)
    for hs6 in sorted(ours.keys() & theirs.keys()):
        a, b = ours[hs6], theirs[hs6]
        if a.units == b.units and _off(a.quantity, b.quantity, tol.quantity_percent):
            add(
                "quantity",
                hs6,
                f"quantity differs by more than {tol.quantity_percent} %",
                _fmt(a.quantity),
                _fmt(b.quantity),
            )
        if _off(a.gross_kg, b.gross_kg, tol.mass_percent):
            add(
                "gross_mass",
                hs6,
                f"gross mass differs by more than {tol.mass_percent} %",
                _fmt(a.gross_kg),
                _fmt(b.gross_kg),
            )
        if a.value_vnd is not None and b.value_vnd is not None and _off(a.value_vnd, b.value_vnd, tol.value_percent):
            add(
                "value",
                hs6,
                f"value differs by more than {tol.value_percent} % (VND at our rates)",
                _fmt(a.value_vnd),
                _fmt(b.value_vnd),
            )
        if a.origins != b.origins:
            add("origin", hs6, "origin differs", ",".join(sorted(a.origins)), ",".join(sorted(b.origins)))
    return findings


# Form E verification ----------------------------------------------------------------------------------------------

VERIFIED, NOT_FOUND, MISMATCH = "verified", "not_found", "mismatch"


def certificate_lines(certificate: dict[str, Any]) -> dict[str, tuple[Decimal, str]]:
    """The certificate's quantity and unit per HS6 (originCertificate goods items)."""
    out: dict[str, tuple[Decimal, str]] = {}
    for item in certificate.get("governmentAgencyGoodsItem", []):
        hs6 = str(item.get("commodity", {}).get("classification", {}).get("id", ""))[:6]
        quantity = item.get("goodsMeasure", {}).get("tariffQuantity", {})
        previous = out.get(hs6, (Decimal(0), str(quantity.get("unitCode", ""))))
        out[hs6] = (previous[0] + (_dec(quantity.get("value")) or Decimal(0)), previous[1])
    return out


def verify_origin(
    body: dict[str, Any],
    *,
    certificate: dict[str, Any] | None,
    issued_on: dt.date | None,
    valid_until: dt.date | None,
    used: dict[str, Decimal],
    registration_date: dt.date,
) -> dict[str, Any]:
    """Verify an import declaration's Form E claim against the certificate the exporting side sent (None: not
    received). `used`: quantity per HS6 that other declarations' verified claims already took. Returns the result
    recorded with the assessment: status, the reasons of a mismatch, and the evidence."""
    claim = body.get("preferential_origin") or {}
    number = claim.get("form_e_number")
    result: dict[str, Any] = {"certificate": number, "status": NOT_FOUND, "reasons": [], "claims": {}}
    if certificate is None or issued_on is None or valid_until is None:
        result["reasons"].append(f"no Form E {number} received from the exporting administration")
        return result
    result["issued_on"], result["valid_until"] = issued_on.isoformat(), valid_until.isoformat()
    reasons: list[str] = result["reasons"]
    if claim.get("issued_on") and claim["issued_on"] != issued_on.isoformat():
        reasons.append(f"declared issue date {claim['issued_on']}, certificate issued {issued_on.isoformat()}")
    if not issued_on <= registration_date <= valid_until:
        reasons.append(
            f"registered {registration_date.isoformat()}, certificate valid {issued_on.isoformat()} to "
            f"{valid_until.isoformat()}"
        )
    lines = certificate_lines(certificate)
    claimed: dict[str, tuple[Decimal, str]] = {}
    for item in body.get("items", []):
        hs6 = str(item["hs_code"])[:6]
        quantity, _unit = claimed.get(hs6, (Decimal(0), item["unit"]))
        claimed[hs6] = (quantity + Decimal(str(item["quantity"])), item["unit"])
    for hs6, (quantity, unit) in sorted(claimed.items()):
        line = lines.get(hs6)
        if line is None:
            reasons.append(f"HS {hs6} is not on the certificate")
            continue
        if line[1] and unit != line[1]:
            reasons.append(f"HS {hs6}: declared in {unit}, certified in {line[1]}")
            continue
        remaining = line[0] - used.get(hs6, Decimal(0))
        if quantity > remaining:
            reasons.append(
                f"HS {hs6}: {_fmt(quantity)} {unit} declared, {_fmt(max(remaining, Decimal(0)))} "
                f"remain of {_fmt(line[0])} certified"
            )
        result["claims"][hs6] = {"quantity": _fmt(quantity), "unit": unit, "remaining": _fmt(remaining)}
    result["status"] = MISMATCH if reasons else VERIFIED
    return result
