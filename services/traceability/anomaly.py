"""AI in tracing: anomaly flags over the trace data, for what the trace-check rules do not catch.

Each flag compares one fact of the declaration's lots with the history in the repository by a **robust z-score**
(Iglewicz and Hoaglin's modified z: 0.6745 (x - median) / MAD, on a log scale for yields, sizes and delays, which
are skewed), and fires beyond 3.5 — and only when the difference also matters in plain terms (so a farm whose
history is very regular is not flagged for a few kilograms). The statistics are explainable by construction: each
flag says in words what is unusual, against which history (how many records, median), and by how much. There is no
learned model to train, export or drift: the history is the model, read at each check. Flags never block: they are
shown to officers with the trace check, and change no channel.

- `yield_implausible`: kg per hectare of the lot's harvest, against other lots of the same product (GTIN)
  harvested within a month of the same calendar month (the season), at any farm;
- `packhouse_output_exceeds_inputs`: a packing house's kg packed over time, against the kg harvested by then of
  the lots it packed (output running ahead of inputs: packing recorded before the harvest it packs);
- `lot_size_unusual`: kg of the lot's harvest, against the same farm's other harvests;
- `timing_unusual`: hours from harvest to packing of the lot, against the same farm's other lots.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from services.traceability.tracecheck import Harvest, TraceData

THRESHOLD = 3.5  # modified z-score beyond which a value is an outlier (Iglewicz & Hoaglin)
MIN_SEASON_HISTORY = 8  # harvests of the product in the season before yields are compared
MIN_FARM_HISTORY = 5  # harvests (lots) of the farm before its sizes and timings are compared
MIN_RATIO = 1.5  # and the value differs from the median by this factor at least (yields, sizes)
MIN_DELAY_HOURS = 24  # and a delay differs from the median by a day at least
OUTPUT_SLACK = Decimal("0.01")  # packed may run ahead of harvested by 1 % (weighing) before it is flagged


@dataclass(frozen=True, slots=True)
class Robust:
    """Where a value stands in its history."""

    z: float
    median: float
    count: int


def robust_z(value: float, history: list[float]) -> Robust | None:
    """The modified z-score of `value` against `history` (None below two values). A zero MAD falls back to the
    mean absolute deviation (x 1.2533); a history of equal values gives an infinite z for any other value."""
    if len(history) < 2:
        return None
    med = statistics.median(history)
    mad = statistics.median(abs(h - med) for h in history)
    if mad > 0:
        z = 0.6745 * (value - med) / mad
    else:
        mean_ad = statistics.fmean(abs(h - med) for h in history)
        z = (
            (value - med) / (1.2533 * mean_ad)
            if mean_ad > 0
            else (0.0 if value == med else math.copysign(math.inf, value - med))
        )
    return Robust(z, med, len(history))


def _month_gap(a: int, b: int) -> int:
    d = abs(a - b) % 12
    return min(d, 12 - d)


def _kg(value: float) -> str:
    return f"{value:,.0f}"


def _z(r: Robust) -> str:
    return "beyond any" if math.isinf(r.z) else f"{r.z:+.1f}"


def flags(data: TraceData, *, lots: list[tuple[str, str]], packhouses: list[str]) -> list[dict[str, Any]]:
    """The anomaly flags of the declaration's lots and packing houses: {code, detail, evidence, lot}."""
    out: list[dict[str, Any]] = []
    by_lot: dict[tuple[str, str], list[Harvest]] = defaultdict(list)
    for h in data.harvests:
        by_lot[(h.gtin, h.lot)].append(h)
    first_packed: dict[tuple[str, str], Any] = {}
    for p in data.packings:
        for gtin, lot, _ in p.inputs:
            if (gtin, lot) not in first_packed or p.at < first_packed[(gtin, lot)]:
                first_packed[(gtin, lot)] = p.at
    for key in lots:
        for h in by_lot.get(key, []):
            out.extend(_harvest_flags(data, h, key, by_lot, first_packed))
    for gln in packhouses:
        flag = _packhouse_flag(data, gln, by_lot)
        if flag:
            out.append(flag)
    return out


def _crop(data: TraceData, h: Harvest) -> str:
    site = data.sites.get(h.farm or "")
    return data.crops.get(h.farm or "") or (site.crops[0] if site is not None and site.crops else f"GTIN {h.gtin}")


def _harvest_flags(
    data: TraceData,
    h: Harvest,
    key: tuple[str, str],
    by_lot: dict[tuple[str, str], list[Harvest]],
    first_packed: dict[tuple[str, str], Any],
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    crop = _crop(data, h)
    others = [o for k, hs in by_lot.items() if k != key for o in hs]
    # Yield per hectare against the product's season, any farm.
    if h.area_ha and h.area_ha > 0:
        value = float(h.kg / h.area_ha)
        season = [
            float(o.kg / o.area_ha)
            for o in others
            if o.gtin == h.gtin and o.area_ha and o.area_ha > 0 and _month_gap(o.at.month, h.at.month) <= 1
        ]
        r = robust_z(math.log(value), [math.log(v) for v in season]) if len(season) >= MIN_SEASON_HISTORY else None
        if r and abs(r.z) > THRESHOLD and max(value, math.exp(r.median)) / min(value, math.exp(r.median)) >= MIN_RATIO:
            med = math.exp(r.median)
            out.append(
                {
                    "code": "yield_implausible",
                    "lot": key,
                    "detail": f"lot {h.lot} at farm {h.farm}: {_kg(value)} kg/ha "
                    f"({_kg(float(h.kg))} kg on {h.area_ha} ha) "
                    f"is {'far above' if r.z > 0 else 'far below'} the {r.count} {crop} harvests of the same "
                    f"season (month {h.at.month} ±1) in the history: median {_kg(med)} kg/ha, "
                    f"{value / med:.1f} times it (robust z {_z(r)})",
                    "evidence": {
                        "gtin": h.gtin,
                        "lot": h.lot,
                        "farm_gln": h.farm,
                        "kg_per_ha": round(value, 1),
                        "median_kg_per_ha": round(med, 1),
                        "history": r.count,
                        "robust_z": None if math.isinf(r.z) else round(r.z, 2),
                    },
                }
            )
    farm = [o for o in others if o.farm == h.farm]
    # Lot size against the farm's own history.
    sizes = [float(o.kg) for o in farm]
    if len(sizes) >= MIN_FARM_HISTORY:
        r = robust_z(math.log(float(h.kg)), [math.log(s) for s in sizes])
        med = math.exp(r.median) if r else 0.0
        if r and abs(r.z) > THRESHOLD and max(float(h.kg), med) / min(float(h.kg), med) >= MIN_RATIO:
            out.append(
                {
                    "code": "lot_size_unusual",
                    "lot": key,
                    "detail": f"lot {h.lot}: {_kg(float(h.kg))} kg harvested, unlike farm {h.farm}'s {r.count} other "
                    f"harvests (median {_kg(med)} kg; {float(h.kg) / med:.1f} times it, robust z {_z(r)})",
                    "evidence": {
                        "gtin": h.gtin,
                        "lot": h.lot,
                        "farm_gln": h.farm,
                        "kg": float(h.kg),
                        "median_kg": round(med, 1),
                        "history": r.count,
                        "robust_z": None if math.isinf(r.z) else round(r.z, 2),
                    },
                }
            )
    # Harvest-to-packing delay against the farm's other lots.
    if key in first_packed:
        delay = (first_packed[key] - h.at).total_seconds() / 3600
        delays = [
            (first_packed[(o.gtin, o.lot)] - o.at).total_seconds() / 3600
            for o in farm
            if (o.gtin, o.lot) in first_packed
        ]
        if len(delays) >= MIN_FARM_HISTORY:
            r = robust_z(math.log1p(max(delay, 0)), [math.log1p(max(d, 0)) for d in delays])
            med = math.expm1(r.median) if r else 0.0
            if r and abs(r.z) > THRESHOLD and abs(delay - med) >= MIN_DELAY_HOURS:
                out.append(
                    {
                        "code": "timing_unusual",
                        "lot": key,
                        "detail": f"lot {h.lot} was packed {delay:,.0f} hours after its harvest; farm {h.farm}'s "
                        f"{r.count} other lots were packed after a median {med:,.0f} hours (robust z {_z(r)})",
                        "evidence": {
                            "gtin": h.gtin,
                            "lot": h.lot,
                            "farm_gln": h.farm,
                            "hours_to_packing": round(delay, 1),
                            "median_hours": round(med, 1),
                            "history": r.count,
                            "robust_z": None if math.isinf(r.z) else round(r.z, 2),
                        },
                    }
                )
    return out


def _packhouse_flag(data: TraceData, gln: str, by_lot: dict[tuple[str, str], list[Harvest]]) -> dict[str, Any] | None:
    """The first moment a packing house's cumulative output (kg packed) ran ahead of its cumulative inputs (kg
    harvested by then of the lots it packed)."""
    packings = [p for p in data.packings if p.packhouse == gln]
    lots = {(g, lot) for p in packings for g, lot, _ in p.inputs}
    timeline: list[tuple[Any, int, Decimal]] = [(h.at, 0, h.kg) for k in lots for h in by_lot.get(k, [])]
    timeline += [(p.at, 1, sum((kg for _, _, kg in p.inputs), Decimal(0))) for p in packings]
    cum_in = cum_out = Decimal(0)
    for at, kind, kg in sorted(timeline, key=lambda t: (t[0], t[1])):
        if kind == 0:
            cum_in += kg
            continue
        cum_out += kg
        if cum_out > cum_in * (1 + OUTPUT_SLACK) + Decimal(1):
            return {
                "code": "packhouse_output_exceeds_inputs",
                "lot": None,
                "detail": f"packing house {gln} had packed {_kg(float(cum_out))} kg by {at.isoformat()} while only "
                f"{_kg(float(cum_in))} kg of the lots it packed had been harvested by then",
                "evidence": {
                    "packhouse_gln": gln,
                    "at": at.isoformat(),
                    "packed_kg": float(cum_out),
                    "harvested_kg": float(cum_in),
                    "packings": len(packings),
                    "lots": len(lots),
                },
            }
    return None
