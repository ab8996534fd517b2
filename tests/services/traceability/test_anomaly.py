"""The anomaly flags on seeded trace data: each fires on its planted anomaly, with words that explain it, and all
stay quiet on normal lots (pure functions: no database; the end-to-end path is in test_trace_check.py)."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

import pytest

from services.traceability import anomaly
from services.traceability.tracecheck import Harvest, Packing, TraceData

GTIN = "08930001000018"
HOUSE = "8930001000018"
FARMS = [f"893000100{n:04d}" for n in range(10)]  # labels only: the flags never parse them
SEASON = dt.datetime(2026, 6, 5, 6, 0, tzinfo=dt.UTC)


def _history(seed: int = 7) -> TraceData:
    """Three seasons of lychee at ten farms: ~6 t/ha on ~2 ha, packed the next day."""
    rng = random.Random(seed)
    data = TraceData()
    n = 0
    for year in (2024, 2025, 2026):
        for farm in FARMS:
            n += 1
            area = Decimal(str(round(rng.uniform(1.8, 2.2), 2)))
            kg = (area * Decimal(str(round(rng.gauss(6000, 500))))).quantize(Decimal(1))
            at = SEASON.replace(year=year) + dt.timedelta(days=rng.randint(0, 20), hours=rng.randint(0, 3))
            lot = f"L{n:03d}"
            data.harvests.append(Harvest(GTIN, lot, at, kg, farm, area, f"h{n}"))
            packed_at = at + dt.timedelta(hours=rng.uniform(18, 30))
            data.packings.append(Packing(packed_at, HOUSE, [f"S{n}"], [(GTIN, lot, kg * Decimal("0.9"))], f"p{n}"))
    return data


def _plant(data: TraceData, lot: str, *, kg: str, area: str, delay_h: float = 24, farm: str = FARMS[0],
           packed_kg: str | None = None, house: str = HOUSE) -> tuple[str, str]:  # fmt: skip
    at = SEASON + dt.timedelta(days=10)
    data.harvests.append(Harvest(GTIN, lot, at, Decimal(kg), farm, Decimal(area), f"h-{lot}"))
    packed = Decimal(packed_kg) if packed_kg else Decimal(kg) * Decimal("0.9")
    data.packings.append(Packing(at + dt.timedelta(hours=delay_h), house, [f"S-{lot}"], [(GTIN, lot, packed)],
                                 f"p-{lot}"))  # fmt: skip
    return (GTIN, lot)


def _codes(data: TraceData, lot: tuple[str, str], houses: list[str] = ()) -> dict[str, dict]:  # type: ignore[assignment]
    return {f["code"]: f for f in anomaly.flags(data, lots=[lot], packhouses=list(houses))}


def test_a_normal_lot_raises_no_flag() -> None:
    data = _history()
    lot = _plant(data, "NORMAL", kg="12100", area="2.0")
    assert _codes(data, lot, [HOUSE]) == {}
    # Nor does any lot of the history itself.
    for h in data.harvests[:30]:
        assert anomaly.flags(data, lots=[(h.gtin, h.lot)], packhouses=[]) == [], h


def test_implausible_yield_for_the_crop_and_season() -> None:
    data = _history()
    lot = _plant(data, "BIGYIELD", kg="12000", area="0.4")  # 30 t/ha where lychee gives ~6
    flag = _codes(data, lot)["yield_implausible"]
    assert "30,000 kg/ha" in flag["detail"]
    assert "far above" in flag["detail"]
    assert "month 6 ±1" in flag["detail"]
    assert flag["evidence"]["history"] == 30
    assert 5500 < flag["evidence"]["median_kg_per_ha"] < 6500
    # Another season has no history: nothing to compare with, no flag.
    data.harvests[-1] = Harvest(GTIN, "BIGYIELD", SEASON.replace(month=12), Decimal(12000), FARMS[0],
                                Decimal("0.4"), "h-BIGYIELD")  # fmt: skip
    assert "yield_implausible" not in _codes(data, lot)


def test_lot_size_unlike_the_farms_history() -> None:
    data = _history()
    assert _codes(data, _plant(data, "FEW", kg="60000", area="10", farm=FARMS[3])) == {}  # 3 lots: too few
    for farm_lot in range(5):
        _plant(data, f"OLD{farm_lot}", kg="12000", area="2.0", farm=FARMS[2])
    lot = _plant(data, "BIGLOT", kg="60000", area="10", farm=FARMS[2])  # a normal yield, 5x the usual lot
    flags = _codes(data, lot)
    assert set(flags) == {"lot_size_unusual"}
    assert f"unlike farm {FARMS[2]}'s 8 other harvests" in flags["lot_size_unusual"]["detail"]


@pytest.mark.parametrize(("delay_h", "fires"), [(240, True), (30, False)])
def test_timing_unlike_the_farms_history(delay_h: float, fires: bool) -> None:
    data = _history()
    for farm_lot in range(5):  # the farm needs five earlier lots
        _plant(data, f"OLD{farm_lot}", kg="12000", area="2.0", farm=FARMS[1])
    lot = _plant(data, "LATE", kg="12000", area="2.0", delay_h=delay_h, farm=FARMS[1])
    flags = _codes(data, lot)
    assert ("timing_unusual" in flags) is fires
    if fires:
        assert "packed 240 hours after its harvest" in flags["timing_unusual"]["detail"]


def test_packhouse_output_running_ahead_of_its_inputs() -> None:
    data = _history()
    other = "8930001000032"
    lot = _plant(data, "EARLY", kg="5000", area="1.0", house=other, delay_h=-48)  # packed two days before harvest
    flag = _codes(data, lot, [other])["packhouse_output_exceeds_inputs"]
    assert f"packing house {other} had packed 4,500 kg" in flag["detail"]
    assert "only 0 kg of the lots it packed had been harvested" in flag["detail"]
    # The packhouse of the history packs after each harvest: quiet.
    assert "packhouse_output_exceeds_inputs" not in _codes(data, lot, [HOUSE])


def test_robust_z_handles_flat_and_short_histories() -> None:
    assert anomaly.robust_z(5.0, [1.0]) is None
    flat = anomaly.robust_z(5.0, [1.0, 1.0, 1.0])
    assert flat is not None
    assert flat.z == float("inf")
    same = anomaly.robust_z(1.0, [1.0, 1.0, 1.0])
    assert same is not None
    assert same.z == 0.0
