"""The buyer's view of a pallet, a lot or a product: its trace assembled from the stored EPCIS events.

What is public is chosen field by field (an allowlist): the farm and its growing-area code, the diary's planting,
fertilising and spraying (with the pre-harvest interval) and harvest, the packing and its packing-house code, the
phytosanitary certificate, the declaration number and the gate exit when events name them. Nothing else of an event
(extensions a capturer added, quantities of other lots, business transactions other than the certificate and the
declaration) and nothing of the declarations service (values, duties, traders) is ever read here.

Each fact names the event it comes from by its CBV 2.0 event hash; `verify` (resolver.py) proves each of those
hashes is in the ledger.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from services.traceability import diary, identifiers
from services.traceability.models import EpcisEvent, EpcisEventEpc, EpcisSite
from services.traceability.service import iso, subject_of

ID_GS1 = identifiers.ID_GS1
OWN_STEP = diary.NAMESPACE + "bizstep/"
PHYTO = diary.NAMESPACE + "phyto/"
# A customs declaration named by an event (bizTransactionList): our vocabulary, CBV 2.0 has no type for it.
DECLARATION_BTT = diary.NAMESPACE + "btt/customsDeclaration"
DECLARATION = diary.NAMESPACE + "declaration/"
# Bounds of what one page reads: a pallet holds a few lots; a lot goes onto a few hundred pallets at most.
MAX_EVENTS = 500
MAX_LOTS = 100


class NotTraced(LookupError):
    """No stored event names the identifier."""


@dataclass(frozen=True)
class Key:
    """What a GS1 Digital Link path names: a pallet (SSCC), a lot (GTIN + lot) or a product (GTIN)."""

    kind: str  # pallet | lot | product
    sscc: str | None = None
    gtin: str | None = None
    lot: str | None = None

    @property
    def uri(self) -> str:
        """The constrained canonical GS1 Digital Link URI."""
        if self.kind == "pallet":
            return f"{ID_GS1}/00/{self.sscc}"
        if self.kind == "lot":
            return identifiers.normalise(f"{ID_GS1}/01/{self.gtin}/10/{self.lot}")
        return f"{ID_GS1}/01/{self.gtin}"

    @property
    def path(self) -> str:
        return self.uri.removeprefix(ID_GS1)


def _gln(location: Any) -> str | None:
    if isinstance(location, dict) and isinstance(location.get("id"), str):
        uri = identifiers.normalise(location["id"])
        if uri.startswith(f"{ID_GS1}/414/"):
            return uri.split("/")[4]
    return None


def _lot_of(epc_class: str) -> tuple[str, str] | None:
    parts = identifiers.normalise(epc_class).removeprefix(ID_GS1).split("/")
    if len(parts) == 5 and parts[1] == "01" and parts[3] == "10":
        return parts[2], unquote(parts[4])
    return None


def _sscc_of(uri: str) -> str | None:
    parts = identifiers.normalise(uri).removeprefix(ID_GS1).split("/")
    return parts[2] if len(parts) == 3 and parts[1] == "00" else None


def _events_naming(session: Session, uris: Iterable[str], roles: Sequence[str]) -> list[EpcisEvent]:
    uris = sorted(set(uris))
    if not uris:
        return []
    named = select(EpcisEventEpc.event_pk).where(EpcisEventEpc.epc.in_(uris), EpcisEventEpc.role.in_(roles))
    stmt = select(EpcisEvent).where(EpcisEvent.id.in_(named)).order_by(EpcisEvent.event_time, EpcisEvent.id)
    return list(session.scalars(stmt.limit(MAX_EVENTS)))


def _ref(row: EpcisEvent) -> str:
    return row.event_hash


def _site(session: Session, gln: str | None) -> EpcisSite | None:
    return session.get(EpcisSite, gln) if gln else None


def _place(site: EpcisSite | None, gln: str | None) -> dict[str, Any]:
    return {
        "gln": gln,
        "name": site.name if site else None,
        "code": site.vn_code if site else None,
        "cn_registration": site.cn_registration if site else None,
        "province": site.province if site else None,
    }


class Trace:
    """The events of one key's trace and the public facts drawn from them."""

    def __init__(self, session: Session, key: Key) -> None:
        self.session = session
        self.key = key
        self.rows: dict[str, EpcisEvent] = {}

    def _keep(self, rows: Iterable[EpcisEvent]) -> list[EpcisEvent]:
        kept = []
        for row in rows:
            self.rows.setdefault(row.id, row)
            kept.append(row)
        return kept

    # --- what each key reaches --------------------------------------------------------------------------------

    def pallets_and_lots(self) -> tuple[list[str], list[tuple[str, str]]]:
        """The pallets (SSCC URIs) and lots (GTIN, lot) of the trace."""
        if self.key.kind == "pallet":
            packings = [
                r
                for r in _events_naming(self.session, [self.key.uri], ("other",))
                if r.event_type == "TransformationEvent" and self.key.uri in _outputs(r)
            ]
            lots = sorted({lot for r in packings for lot in _input_lots(r)})
            return [self.key.uri], lots[:MAX_LOTS]
        if self.key.kind == "lot":
            assert self.key.gtin is not None
            assert self.key.lot is not None
            packings = [
                r
                for r in _events_naming(self.session, [self.key.uri], ("class",))
                if r.event_type == "TransformationEvent"
            ]
            pallets = sorted({p for r in packings for p in _outputs(r) if _sscc_of(p)})
            return pallets[:MAX_LOTS], [(self.key.gtin, self.key.lot)]
        return [], []

    def product_lots(self) -> list[dict[str, Any]]:
        """A product's lots (harvests of its GTIN), newest first."""
        prefix = f"{ID_GS1}/01/{self.key.gtin}/10/"
        named = select(EpcisEventEpc.event_pk).where(
            and_(EpcisEventEpc.epc.like(prefix.replace("%", r"\%").replace("_", r"\_") + "%", escape="\\")),
            EpcisEventEpc.role == "class",
        )
        stmt = (
            select(EpcisEvent)
            .where(EpcisEvent.id.in_(named), EpcisEvent.biz_step == "commissioning")
            .order_by(EpcisEvent.event_time.desc(), EpcisEvent.id)
            .limit(MAX_LOTS)
        )
        lots = []
        for row in self._keep(self.session.scalars(stmt)):
            for item in row.body.get("quantityList") or []:
                found = _lot_of(item.get("epcClass", ""))
                if found and found[0] == self.key.gtin:
                    lots.append(
                        {
                            "gtin": found[0],
                            "lot": found[1],
                            "harvested_at": row.body["eventTime"],
                            "path": f"/01/{found[0]}/10/{quote(found[1], safe='')}",
                            "event_hash": _ref(row),
                        }
                    )
        return lots

    # --- the facts --------------------------------------------------------------------------------------------

    def build(self) -> dict[str, Any]:  # noqa: C901 - one block per kind of fact, in the order the page shows them
        """The public trace: facts, each with the hash of the event it comes from. Raises NotTraced."""
        out: dict[str, Any] = {"id": self.key.uri, "kind": self.key.kind, "path": self.key.path}
        out.update({k: v for k, v in (("sscc", self.key.sscc), ("gtin", self.key.gtin), ("lot", self.key.lot)) if v})
        if self.key.kind == "product":
            out["lots"] = self.product_lots()
            if not out["lots"]:
                raise NotTraced(self.key.uri)
            return out
        pallets, lots = self.pallets_and_lots()
        lot_uris = [identifiers.normalise(f"{ID_GS1}/01/{g}/10/{n}") for g, n in lots]
        # A lot's packings onto other pallets are not this pallet's story: only its harvests and the packings
        # whose output is one of the trace's pallets.
        lot_events = self._keep(
            r
            for r in _events_naming(self.session, lot_uris, ("class",))
            if r.event_type != "TransformationEvent" or set(_outputs(r)) & set(pallets)
        )
        pallet_events = self._keep(_events_naming(self.session, pallets, ("direct", "other")))
        if not lot_events and not pallet_events:
            raise NotTraced(self.key.uri)

        harvests = [r for r in lot_events if r.biz_step == "commissioning"]
        out["harvests"] = []
        farms: dict[str, EpcisEvent] = {}
        for row in harvests:
            gln = _gln(row.body.get("bizLocation")) or _gln(row.body.get("readPoint"))
            ilmd = row.body.get("ilmd") or {}
            for item in row.body.get("quantityList") or []:
                found = _lot_of(item.get("epcClass", ""))
                if found and found in lots:
                    out["harvests"].append(
                        {
                            "gtin": found[0],
                            "lot": found[1],
                            "at": row.body["eventTime"],
                            "farm_gln": gln,
                            "quantity_kg": item.get("quantity") if item.get("uom") == "KGM" else None,
                            "area_ha": _number(ilmd.get("sg:harvestAreaHa")),
                            "growing_area_code": _text(ilmd.get("sg:growingArea")),
                            "event_hash": _ref(row),
                        }
                    )
            if gln:
                farms[gln] = max(row, farms.get(gln, row), key=lambda r: r.event_time)
        out["farms"] = []
        out["diary"] = []
        for gln, last_harvest in sorted(farms.items()):
            site = _site(self.session, gln)
            out["farms"].append(
                {
                    **_place(site, gln),
                    "growing_area_code": _text((last_harvest.body.get("ilmd") or {}).get("sg:growingArea"))
                    or (site.vn_code if site else None),
                    "event_hash": _ref(last_harvest),
                }
            )
            harvested = [r.event_time for r in harvests if (_gln(r.body.get("bizLocation")) or _gln(
                r.body.get("readPoint"))) == gln]  # fmt: skip
            out["diary"].extend(self._diary(gln, last_harvest, harvested))

        out["packing"] = []
        for row in pallet_events:
            if row.event_type != "TransformationEvent" or row.biz_step != "packing":
                continue
            outputs = [s for s in (_sscc_of(p) for p in _outputs(row) if p in pallets) if s]
            if not outputs:
                continue
            gln = _gln(row.body.get("bizLocation")) or _gln(row.body.get("readPoint"))
            site = _site(self.session, gln)
            out["packing"].append(
                {
                    "at": row.body["eventTime"],
                    **{f"packhouse_{k}": v for k, v in _place(site, gln).items()},
                    "packing_house_code": _text(row.body.get("sg:packingHouse")) or (site.vn_code if site else None),
                    "ssccs": outputs,
                    "lots": [{"gtin": g, "lot": n} for g, n in sorted(_input_lots(row)) if (g, n) in lots],
                    "event_hash": _ref(row),
                }
            )
        out["inspections"], out["shipping"], out["declarations"], out["gate_exits"] = [], [], [], []
        for row in pallet_events:
            named = [
                s
                for s in (_sscc_of(p) for p in row.body.get("epcList") or [] if identifiers.normalise(p) in pallets)
                if s
            ]
            if not named:
                continue
            if row.biz_step == "inspecting":
                for tx in row.body.get("bizTransactionList") or []:
                    if _short(tx.get("type")) == "cert" and str(tx.get("bizTransaction", "")).startswith(PHYTO):
                        out["inspections"].append(
                            {
                                "at": row.body["eventTime"],
                                "certificate": tx["bizTransaction"].removeprefix(PHYTO),
                                "conformant": row.disposition == "conformant",
                                "ssccs": named,
                                "event_hash": _ref(row),
                            }
                        )
            elif row.biz_step == "shipping":
                dest = [_gln({"id": d.get("destination")}) for d in row.body.get("destinationList") or []]
                out["shipping"].append(
                    {
                        "at": row.body["eventTime"],
                        "destination_gln": next((d for d in dest if d), None),
                        "ssccs": named,
                        "event_hash": _ref(row),
                    }
                )
            elif row.biz_step == "departing":
                out["gate_exits"].append(
                    {
                        "at": row.body["eventTime"],
                        "location_gln": _gln(row.body.get("readPoint")) or _gln(row.body.get("bizLocation")),
                        "ssccs": named,
                        "event_hash": _ref(row),
                    }
                )
            for tx in row.body.get("bizTransactionList") or []:
                value = str(tx.get("bizTransaction", ""))
                if tx.get("type") == DECLARATION_BTT and value.startswith(DECLARATION):
                    number = value.removeprefix(DECLARATION)[:40]
                    if number not in {d["number"] for d in out["declarations"]}:
                        out["declarations"].append(
                            {"number": number, "at": row.body["eventTime"], "event_hash": _ref(row)}
                        )
        return out

    def _diary(self, gln: str, harvest: EpcisEvent, harvested: list[dt.datetime]) -> list[dict[str, Any]]:
        """The farm's diary up to the harvest, from the last planting before it: planting, fertilising, spraying
        (each spraying with the day the pre-harvest interval ends, and whether the harvest respected it)."""
        farm = f"{ID_GS1}/414/{gln}"
        steps = [OWN_STEP + s for s in ("planting", "fertilising", "spraying")]
        stmt = (
            select(EpcisEvent)
            .where(
                EpcisEvent.biz_location == farm,
                EpcisEvent.biz_step.in_(steps),
                EpcisEvent.event_time <= harvest.event_time,
            )
            .order_by(EpcisEvent.event_time, EpcisEvent.id)
            .limit(MAX_EVENTS)
        )
        rows = list(self.session.scalars(stmt))
        plantings = [i for i, r in enumerate(rows) if r.biz_step == OWN_STEP + "planting"]
        rows = self._keep(rows[plantings[-1] :] if plantings else rows)
        entries = []
        for row in rows:
            step = (row.biz_step or "").removeprefix(OWN_STEP)
            entry: dict[str, Any] = {
                "step": step,
                "at": row.body["eventTime"],
                "farm_gln": gln,
                "event_hash": _ref(row),
            }
            if step == "planting":
                entry.update(crop=_text(row.body.get("sg:crop")), area_ha=_number(row.body.get("sg:areaHa")))
            else:
                entry.update(product=_text(row.body.get("sg:product")))
            if step == "fertilising":
                entry["quantity_kg"] = _number(row.body.get("sg:quantityKg"))
            if step == "spraying":
                days = row.body.get("sg:preHarvestIntervalDays")
                entry["active_ingredient"] = _text(row.body.get("sg:activeIngredient"))
                if isinstance(days, int) and not isinstance(days, bool):
                    safe = row.event_time + dt.timedelta(days=days)
                    entry.update(
                        pre_harvest_interval_days=days,
                        harvest_allowed_from=iso(safe),
                        # every harvest of the trace after the spraying waited for the interval
                        interval_respected=all(at >= safe for at in harvested if at >= row.event_time),
                    )
            entries.append(entry)
        return entries

    def subjects(self) -> dict[str, EpcisEvent]:
        """{ledger subject: event} of every event the trace shows."""
        return {subject_of(row.id): row for row in self.rows.values()}


def _outputs(row: EpcisEvent) -> list[str]:
    return [identifiers.normalise(p) for p in row.body.get("outputEPCList") or [] if isinstance(p, str)]


def _input_lots(row: EpcisEvent) -> set[tuple[str, str]]:
    found = set()
    for item in row.body.get("inputQuantityList") or []:
        lot = _lot_of(item.get("epcClass", "")) if isinstance(item, dict) else None
        if lot:
            found.add(lot)
    return found


def _short(value: Any) -> str:
    text = str(value or "")
    for prefix in ("urn:epcglobal:cbv:btt:", "https://ref.gs1.org/cbv/BTT-"):
        text = text.removeprefix(prefix)
    return text


def _text(value: Any) -> str | None:
    return value[:200] if isinstance(value, str) else None


def _number(value: Any) -> int | float | None:
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def event_summary(row: EpcisEvent) -> dict[str, Any]:
    """What the trace says of an event itself (no body: its extensions may hold what is not public)."""
    return {
        "event_hash": row.event_hash,
        "type": row.event_type,
        "biz_step": row.biz_step,
        "event_time": iso(row.event_time),
        "subject": subject_of(row.id),
    }
