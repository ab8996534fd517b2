"""The trace check of a declaration: do the pallets and lots its goods lines name agree with the farm diaries and
the packing records? Consumes `declaration.trace_requested`, answers `trace.checked` (catalogued events: the
declarations service turns the failures into risk hits and shows the flags to officers).

Rules (each failure is a risk hit named after it, with its evidence):

| code | fails when |
| --- | --- |
| `trace_not_packed` | a pallet has no packing record, or a lot was never packed |
| `trace_product` | a pallet carries no lot of the line's GTIN |
| `trace_quantity` | the line declares more kg than its pallets/lots hold, minus what other declarations drew on them |
| `trace_mass_balance` | a lot was packed but never harvested, or more of it was packed than harvested |
| `trace_pre_harvest` | a lot was harvested before the pre-harvest interval of a spraying at its farm had passed |
| `trace_registration` | fresh fruit (HS 0801-0810) for China from a farm or packing house without GACC registration |

The anomaly flags (`anomaly.py`) are computed over the same data and never block.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import unquote

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from services.kernel import catalogue
from services.kernel.database import utcnow
from services.kernel.outbox import Event, event_row, record_events
from services.traceability import anomaly, crossing, events, identifiers
from services.traceability.diary import NAMESPACE
from services.traceability.models import EpcisEvent, EpcisSite, TraceClaim

logger = logging.getLogger("smartgate.traceability.tracecheck")

CONSUMER = "traceability"
CHECKED = events.TRACE_CHECKED
SPRAYING = f"{NAMESPACE}bizstep/spraying"
PLANTING = f"{NAMESPACE}bizstep/planting"
FRESH_FRUIT = tuple(f"08{h:02d}" for h in range(1, 11))  # HS 0801-0810
RELEASING = frozenset({"cancelled", "rejected", "expired"})
TOLERANCE = Decimal("0.001")

Unit = tuple[str, str, str]  # (sscc, gtin, lot): one lot packed on one pallet


@dataclass(slots=True)
class Harvest:
    """A harvest record of a lot."""

    gtin: str
    lot: str
    at: dt.datetime
    kg: Decimal
    farm: str | None
    area_ha: Decimal | None
    event_id: str


@dataclass(slots=True)
class Packing:
    """A packing record: lots in, pallets out."""

    at: dt.datetime
    packhouse: str | None
    ssccs: list[str]
    inputs: list[tuple[str, str, Decimal]]  # (gtin, lot, kg)
    event_id: str


@dataclass(slots=True)
class Spraying:
    """A spraying at a farm and its pre-harvest interval."""

    at: dt.datetime
    farm: str | None
    product: str
    phi_days: int
    event_id: str


@dataclass(slots=True)
class TraceData:
    """The repository's harvests, packings, sprayings and sites, as the check reads them."""

    harvests: list[Harvest] = field(default_factory=list)
    packings: list[Packing] = field(default_factory=list)
    sprayings: list[Spraying] = field(default_factory=list)
    sites: dict[str, EpcisSite] = field(default_factory=dict)
    crops: dict[str, str] = field(default_factory=dict)  # farm GLN -> crop of its latest planting

    def harvested(self) -> dict[tuple[str, str], list[Harvest]]:
        """Harvest records by lot (gtin, lot)."""
        out: dict[tuple[str, str], list[Harvest]] = defaultdict(list)
        for h in self.harvests:
            out[(h.gtin, h.lot)].append(h)
        return out

    def units(self) -> dict[Unit, Decimal]:
        """Kilograms of each lot packed on each pallet (a packing with several pallets splits evenly)."""
        out: dict[Unit, Decimal] = defaultdict(Decimal)
        for p in self.packings:
            for sscc in p.ssccs:
                for gtin, lot, kg in p.inputs:
                    out[(sscc, gtin, lot)] += kg / len(p.ssccs)
        return out


def _gln(uri: str | None) -> str | None:
    if uri and "/414/" in uri:
        return uri.rsplit("/414/", 1)[1].split("/")[0]
    return None


def _lot_class(uri: str) -> tuple[str, str] | None:
    """(GTIN-14, lot) of an LGTIN class URI in any notation, or None."""
    try:
        canonical = identifiers.canonical(uri)
    except identifiers.IdentifierError:
        return None
    if canonical is None or "/01/" not in canonical or "/10/" not in canonical:
        return None
    rest = canonical.split("/01/", 1)[1]
    gtin, _, lot = rest.partition("/10/")
    return gtin, unquote(lot)


def _sscc(uri: str) -> str | None:
    try:
        canonical = identifiers.canonical(uri)
    except identifiers.IdentifierError:
        return None
    if canonical and "/00/" in canonical:
        return canonical.rsplit("/00/", 1)[1]
    return None


def _kg(item: dict[str, Any]) -> Decimal | None:
    if item.get("uom", "KGM") not in ("KGM", None):
        return None
    try:
        return Decimal(str(item["quantity"]))
    except (KeyError, ArithmeticError, ValueError):
        return None


def load(session: Session) -> TraceData:
    """Read the harvests, packings, sprayings and plantings (by their bizStep index) and the sites."""
    data = TraceData()
    # Columns, not ORM objects: a check reads every such event, and building 10,000 instances was a third of it.
    rows = session.execute(
        select(
            EpcisEvent.event_id,
            EpcisEvent.event_type,
            EpcisEvent.event_time,
            EpcisEvent.biz_step,
            EpcisEvent.biz_location,
            EpcisEvent.body,
        )
        .where(EpcisEvent.biz_step.in_(["commissioning", "packing", SPRAYING, PLANTING]))
        .order_by(EpcisEvent.event_time, EpcisEvent.id)
    )
    for row in rows:
        body, place = row.body, _gln(row.biz_location)
        if row.biz_step == "commissioning" and row.event_type == "ObjectEvent":
            ilmd = body.get("ilmd") or {}
            area = ilmd.get("sg:harvestAreaHa")
            for item in body.get("quantityList") or []:
                key, kg = _lot_class(item.get("epcClass", "")), _kg(item)
                if key and kg is not None:
                    data.harvests.append(
                        Harvest(
                            key[0],
                            key[1],
                            row.event_time,
                            kg,
                            place,
                            Decimal(str(area)) if area else None,
                            row.event_id,
                        )
                    )
        elif row.biz_step == "packing" and row.event_type == "TransformationEvent":
            ssccs = [s for s in (_sscc(u) for u in body.get("outputEPCList") or []) if s]
            inputs = []
            for item in body.get("inputQuantityList") or []:
                key, kg = _lot_class(item.get("epcClass", "")), _kg(item)
                if key and kg is not None:
                    inputs.append((key[0], key[1], kg))
            if ssccs:
                data.packings.append(Packing(row.event_time, place, ssccs, inputs, row.event_id))
        elif row.biz_step == SPRAYING:
            phi = body.get("sg:preHarvestIntervalDays")
            if isinstance(phi, int):
                data.sprayings.append(
                    Spraying(row.event_time, place, str(body.get("sg:product", "")), phi, row.event_id)
                )
        elif row.biz_step == PLANTING and place and body.get("sg:crop"):
            data.crops[place] = str(body["sg:crop"])
    data.sites = {s.gln: s for s in session.scalars(select(EpcisSite))}
    return data


def _fmt(kg: Decimal) -> str:
    return f"{kg.quantize(TOLERANCE).normalize():f}"


def _claims_elsewhere(session: Session, declaration_id: str, units: set[Unit]) -> dict[Unit, list[TraceClaim]]:
    if not units:
        return {}
    ssccs = sorted({u[0] for u in units})
    out: dict[Unit, list[TraceClaim]] = defaultdict(list)
    for claim in session.scalars(
        select(TraceClaim).where(TraceClaim.sscc.in_(ssccs), TraceClaim.declaration_id != declaration_id)
    ):
        unit = (claim.sscc, claim.gtin, claim.lot)
        if unit in units:
            out[unit].append(claim)
    return out


def check(session: Session, request: catalogue.DeclarationTraceRequested, data: TraceData) -> dict[str, Any]:  # noqa: C901 - one block per rule, in the order the docs list them
    """Run every rule over the declaration's lines; replace its claims; the `trace.checked` payload."""
    failures: list[dict[str, Any]] = []
    packed = data.units()
    harvested = data.harvested()
    packings_of: dict[str, list[Packing]] = defaultdict(list)
    for p in data.packings:
        for sscc in p.ssccs:
            packings_of[sscc].append(p)

    def fail(code: str, line: int | None, detail: str, **evidence: Any) -> None:
        failures.append({"code": code, "line": line, "detail": detail, "evidence": evidence})

    line_units: dict[int, list[Unit]] = {}
    for ref in request.lines:
        found: set[Unit] = set()
        for sscc in ref.ssccs:
            on_pallet = [u for u in packed if u[0] == sscc]
            if not on_pallet:
                fail("trace_not_packed", ref.line, f"pallet {sscc} has no packing record", sscc=sscc)
                continue
            mine = [u for u in on_pallet if u[1] == ref.gtin]
            if not mine:
                fail(
                    "trace_product",
                    ref.line,
                    f"pallet {sscc} carries no lot of GTIN {ref.gtin}",
                    sscc=sscc,
                    gtin=ref.gtin,
                    lots_on_pallet=sorted(f"{g}/{lot}" for _, g, lot in on_pallet),
                )
            found.update(mine)
        for lot in ref.lots:
            of_lot = [u for u in packed if u[1] == ref.gtin and u[2] == lot]
            if not of_lot:
                fail(
                    "trace_not_packed",
                    ref.line,
                    f"lot {lot} of GTIN {ref.gtin} was never packed",
                    gtin=ref.gtin,
                    lot=lot,
                )
            found.update(of_lot)
        line_units[ref.line] = sorted(found)
    all_units = {u for on_line in line_units.values() for u in on_line}
    elsewhere = _claims_elsewhere(session, request.declaration_id, all_units)
    claims: list[dict[str, Any]] = []
    taken: dict[Unit, Decimal] = defaultdict(Decimal)  # by this declaration's earlier lines
    for ref in request.lines:
        units = line_units.get(ref.line, [])
        if not units:
            continue
        declared = Decimal(ref.net_mass_kg)
        total = sum((packed[u] for u in units), Decimal(0))
        used = sum((c.kg for u in units for c in elsewhere.get(u, [])), Decimal(0))
        available: dict[Unit, Decimal] = {
            u: max(Decimal(0), packed[u] - sum((c.kg for c in elsewhere.get(u, [])), Decimal(0)) - taken[u])
            for u in units
        }
        left = sum(available.values(), Decimal(0))
        if declared > left + TOLERANCE:
            users = sorted({c.number or c.declaration_id for u in units for c in elsewhere.get(u, [])})
            fail(
                "trace_quantity",
                ref.line,
                f"declares {_fmt(declared)} kg; its pallets and lots hold {_fmt(total)} kg packed, of which "
                f"{_fmt(used)} kg are declared by earlier declarations: {_fmt(left)} kg left",
                declared_kg=_fmt(declared),
                packed_kg=_fmt(total),
                used_elsewhere_kg=_fmt(used),
                available_kg=_fmt(left),
                used_by=users,
            )
        remaining = declared
        for u in units:
            share = min(remaining, available[u])
            if share > 0:
                taken[u] += share
                remaining -= share
                claims.append(
                    {
                        "declaration_id": request.declaration_id,
                        "line": ref.line,
                        "sscc": u[0],
                        "gtin": u[1],
                        "lot": u[2],
                        "kg": share,
                        "number": request.number,
                        "version": request.version,
                        "claimed_at": utcnow(),
                    }
                )
    lots = sorted({(u[1], u[2]) for u in all_units})
    lines_of_lot: dict[tuple[str, str], list[int]] = defaultdict(list)
    for line, on_line in line_units.items():
        for u in on_line:
            if line not in lines_of_lot[(u[1], u[2])]:
                lines_of_lot[(u[1], u[2])].append(line)
    packed_by_lot: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for p in data.packings:
        for gtin, lot, kg in p.inputs:
            packed_by_lot[(gtin, lot)] += kg
    for key in lots:
        line = lines_of_lot[key][0]
        records = harvested.get(key, [])
        got = sum((h.kg for h in records), Decimal(0))
        if not records:
            fail(
                "trace_mass_balance",
                line,
                f"lot {key[1]} of GTIN {key[0]} was packed but never harvested",
                gtin=key[0],
                lot=key[1],
                packed_kg=_fmt(packed_by_lot[key]),
                harvested_kg="0",
            )
        elif packed_by_lot[key] > got + TOLERANCE:
            fail(
                "trace_mass_balance",
                line,
                f"lot {key[1]}: {_fmt(packed_by_lot[key])} kg packed, only {_fmt(got)} kg harvested",
                gtin=key[0],
                lot=key[1],
                packed_kg=_fmt(packed_by_lot[key]),
                harvested_kg=_fmt(got),
                harvest_events=[h.event_id for h in records],
            )
        for h in records:
            for s in data.sprayings:
                if s.farm != h.farm or s.at > h.at:
                    continue
                allowed = s.at + dt.timedelta(days=s.phi_days)
                if h.at < allowed:
                    days = (h.at - s.at).total_seconds() / 86400
                    fail(
                        "trace_pre_harvest",
                        line,
                        f"lot {h.lot} harvested {days:.1f} days after spraying {s.product}, whose pre-harvest "
                        f"interval is {s.phi_days} days",
                        gtin=h.gtin,
                        lot=h.lot,
                        farm_gln=h.farm,
                        harvested_at=h.at.isoformat(),
                        sprayed_at=s.at.isoformat(),
                        product=s.product,
                        pre_harvest_interval_days=s.phi_days,
                        harvest_event=h.event_id,
                        spraying_event=s.event_id,
                    )
    fruit_for_china = request.destination == "CN"
    for ref in request.lines if fruit_for_china else []:
        if not ref.hs_code.startswith(FRESH_FRUIT):
            continue
        refs = line_units.get(ref.line, [])
        farms = sorted({h.farm or "" for u in refs for h in harvested.get((u[1], u[2]), [])})
        packhouses = sorted(
            {
                p.packhouse or ""
                for u in refs
                for p in packings_of[u[0]]
                if any((g, lot) == (u[1], u[2]) for g, lot, _ in p.inputs)
            }
        )
        for kind, glns in (("farm", farms), ("packhouse", packhouses)):
            for gln in glns:
                site = data.sites.get(gln)
                if site is None or site.kind != kind or not site.cn_registration:
                    what = "growing area" if kind == "farm" else "packing house"
                    state = (
                        "not registered"
                        if site is None or site.kind != kind
                        else f"registered as {site.vn_code} but without a GACC registration number"
                    )
                    fail(
                        "trace_registration",
                        ref.line,
                        f"fresh fruit for China from {what} {gln or '?'}: {state}",
                        gln=gln,
                        kind=kind,
                        vn_code=site.vn_code if site else None,
                        cn_registration=site.cn_registration if site else None,
                    )
    session.execute(delete(TraceClaim).where(TraceClaim.declaration_id == request.declaration_id))
    if claims:
        session.add_all(TraceClaim(**c) for c in claims)
    flags = anomaly.flags(data, lots=lots, packhouses=_packhouses(data, all_units))
    return {
        "declaration_id": request.declaration_id,
        "version": request.version,
        "failures": failures,
        "flags": [
            {
                "code": f["code"],
                "line": lines_of_lot[f["lot"]][0] if f["lot"] in lines_of_lot else None,
                "detail": f["detail"],
                "evidence": f["evidence"],
            }
            for f in flags
        ],
        "pallets": sorted({u[0] for u in all_units} | {s for ref in request.lines for s in ref.ssccs}),
        "checked_at": utcnow().isoformat(),
    }


def _packhouses(data: TraceData, units: set[Unit]) -> list[str]:
    out = set()
    for p in data.packings:
        if any((s, g, lot) in units for s in p.ssccs for g, lot, _ in p.inputs) and p.packhouse:
            out.add(p.packhouse)
    return sorted(out)


def on_declaration_event(session: Session, event: Event, *, gate_gln: str | None = None) -> None:
    """`declaration.trace_requested`: check and answer; a cancelled, rejected or expired declaration releases
    what it drew on; a released or exited one that drew on pallets is recorded for them (`crossing.py`, at the
    gate's GLN)."""
    if event.type == "declaration.trace_requested":
        request = catalogue.read(event, catalogue.DeclarationTraceRequested)
        if request is None:
            return
        payload = check(session, request, load(session))
        record_events(
            session, [event_row(type=CHECKED, subject=f"trace-check:{request.declaration_id}", payload=payload)]
        )
        return
    step = catalogue.read(event, catalogue.DeclarationStep)
    if step is not None and step.status in RELEASING:
        session.execute(delete(TraceClaim).where(TraceClaim.declaration_id == step.declaration_id))
    elif step is not None and gate_gln is not None:
        crossing.on_step(session, step, gate_gln)
