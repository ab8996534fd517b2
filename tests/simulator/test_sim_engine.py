"""The engine against queueing theory (Erlang C) and against a SimPy model of the same network, truck for truck."""

from __future__ import annotations

import numpy as np
import pytest

from simulator.engine import EXIT, QUOTA_BASE, YARD_IN, YARD_OUT, DayBatch, NetworkSpec, ResourceSpec, simulate
from simulator.reference import (
    TANDEM_STAGES,
    TandemSource,
    erlang_c_wait_min,
    simpy_network,
    tandem_network,
)
from simulator.stats import t_interval

SEED = 424242


def _waits(stages: tuple[tuple[int, float], ...], replications: int, days: int) -> np.ndarray:
    """Mean wait per stage of each replication, after a one-day warm-up."""
    net = tandem_network(stages, warmup_min=1440.0)
    out = []
    for rep in range(replications):
        r = simulate(net, TandemSource(1.0, stages, SEED, rep), days + 1)
        out.append(r.wait_sum / r.wait_n)
    return np.asarray(out)


def test_erlang_c_formula_known_values() -> None:
    # M/M/1 with rho = 0.8 waits rho/(mu - lambda) = 0.8 / (1.25 - 1) = 3.2 minutes.
    assert erlang_c_wait_min(1.0, 1, 0.8) == pytest.approx(3.2)
    # M/M/2, lambda = 1, mean service 1.5: Wq = 1.9286 (textbook Erlang C).
    assert erlang_c_wait_min(1.0, 2, 1.5) == pytest.approx(1.928571, rel=1e-5)


def test_mmc_single_stage_matches_erlang_c() -> None:
    stages = ((3, 2.4),)
    waits = _waits(stages, replications=12, days=6)[:, 0]
    ci = t_interval(waits)
    assert ci["ci_low"] <= erlang_c_wait_min(1.0, 3, 2.4) <= ci["ci_high"]


def test_five_stage_tandem_matches_erlang_c_at_every_stage() -> None:
    # A tandem of M/M/c stations is a Jackson network: each stage sees Poisson(1/min) arrivals. Five intervals
    # are checked at once, so each is a 99 % interval (Bonferroni: at least 95 % for the family).
    waits = _waits(TANDEM_STAGES, replications=12, days=8)
    for i, (c, mean) in enumerate(TANDEM_STAGES):
        ci = t_interval(waits[:, i], level=0.99)
        assert ci["ci_low"] <= erlang_c_wait_min(1.0, c, mean) <= ci["ci_high"], f"stage {i + 1}: {ci}"


def _compare_with_simpy(net: NetworkSpec, batches: list[DayBatch]) -> int:
    it = iter(batches)
    r = simulate(net, lambda d: next(it), len(batches), log=True)
    fresh = [DayBatch(list(b.arrival_min), b.cls, b.route, b.service_min) for b in batches]
    ref = simpy_network(net, fresh)
    lg = r.log
    assert lg is not None
    for tid, res, q, s in zip(lg.truck, lg.resource, lg.queued_min, lg.start_min, strict=True):
        assert ref[(tid, res)] == pytest.approx((q, s), abs=1e-9), (tid, res)
    return len(lg.truck)


def test_engine_reproduces_simpy_truck_for_truck_on_the_tandem() -> None:
    src = TandemSource(1.0, TANDEM_STAGES, SEED)
    batches = [src(0), src(1)]
    assert _compare_with_simpy(tandem_network(), batches) > 10_000


def test_engine_reproduces_simpy_with_routes_and_a_blocking_yard() -> None:
    # entry (2 lanes) -> yard of 6 -> optional stages -> exit; the yard fills and blocks the entry lanes.
    rng = np.random.default_rng(SEED)
    net = NetworkSpec(
        resources=(
            ResourceSpec("entry", 2),
            ResourceSpec("check", 2),
            ResourceSpec("xray", 1),
            ResourceSpec("exit", 1),
        ),
        classes=("truck",),
        yard_capacity=6,
    )
    routes = [
        (0, YARD_IN, 1, YARD_OUT, 3, EXIT),
        (0, YARD_IN, 1, 2, YARD_OUT, 3, EXIT),
        (0, YARD_IN, 2, YARD_OUT, 3, EXIT),
    ]
    batches = []
    for day in range(2):
        n = int(rng.poisson(900))
        t = np.sort(rng.random(n)) * 1440.0 + day * 1440.0
        svc = rng.exponential(1.0, (n, 4)) * np.array([1.5, 5.0, 3.0, 1.6])
        pick = rng.integers(0, 3, n)
        batches.append(DayBatch(t.tolist(), [0] * n, [routes[i] for i in pick], svc.tolist()))
    assert _compare_with_simpy(net, batches) > 3_000


def _one_stage_day(n: int, day: int, route: tuple[int, ...], service_min: float = 5.0, width: int = 1) -> DayBatch:
    t = np.linspace(day * 1440.0 + 1.0, day * 1440.0 + 1439.0, n)
    return DayBatch(t.tolist(), [0] * n, [route] * n, [[service_min] * width for _ in range(n)])


def test_staffing_schedule_starts_no_service_while_closed() -> None:
    sched = tuple(2 if 7 <= h < 19 else 0 for h in range(24))
    net = NetworkSpec(resources=(ResourceSpec("gate", 2, sched),), classes=("truck",), close_hour=19)
    r = simulate(net, lambda d: _one_stage_day(200, d, (0, EXIT)), 2, log=True)
    assert r.log is not None
    hours = (np.asarray(r.log.start_min) % 1440.0) / 60.0
    assert ((hours >= 7) & (hours < 19)).all()
    assert (r.left_at_close > 0).all()  # trucks arriving after 19:00 wait for the morning


def test_daily_quota_caps_trucks_per_day() -> None:
    net = NetworkSpec(
        resources=(ResourceSpec("check", 5), ResourceSpec("cross", 5)),
        classes=("fruit",),
        quota_per_day=(40,),
        quota_reset_hour=7,
    )
    route = (0, QUOTA_BASE - 0, 1, EXIT)
    r = simulate(net, lambda d: _one_stage_day(100, d, route, 1.0, width=2), 3, log=True)
    assert r.log is not None
    res = np.asarray(r.log.resource)
    starts = np.asarray(r.log.start_min)[res == 1]
    per_quota_day = np.bincount(((starts - 7 * 60) // 1440 + 1).astype(int))
    assert per_quota_day.max() <= 40
    assert r.quota_hold_n > 0


def test_breakdowns_remove_capacity() -> None:
    res = ResourceSpec("xray", 2, mtbf_min=120.0, mttr_min=60.0)
    net = NetworkSpec(resources=(res,), classes=("truck",))
    rng = np.random.default_rng(1)

    def draw(unit: int, up: bool) -> float:
        return float(rng.exponential(120.0 if up else 60.0))

    r = simulate(net, lambda d: _one_stage_day(100, d, (0, EXIT), 2.0), 5, breakdown_draw=draw)
    availability = r.cap_area.sum() / (2 * 5 * 1440.0)
    assert 0.45 < availability < 0.85  # MTBF/(MTBF+MTTR) = 2/3 in the long run
    assert r.exits_by_class.sum() + r.in_system_end == 500


def test_memory_is_bounded_by_trucks_in_system() -> None:
    r = simulate(tandem_network(), TandemSource(1.0, TANDEM_STAGES, SEED), 20)
    assert r.exits_by_class.sum() > 25_000
    assert r.peak_slots < 200  # slots are reused; the log is off
