"""Replications: one root seed, one replication per task, on a local process pool or a Dask cluster; KPIs per run."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from simulator.engine import RunResult, simulate
from simulator.gate import BreakdownDraws, CompiledGate, GateSource, compile_gate
from simulator.scenario import parse_scenario
from simulator.stats import hist_percentile, hourly_interval, paired_differences, summarize

PERCENTILES = (("p50", 0.50), ("p90", 0.90), ("p95", 0.95))


@dataclass(slots=True)
class ReplicationOutput:
    """What one replication sends back: flat KPIs, by-hour-of-day arrays, and optionally its timeline and log."""

    replication: int
    kpis: dict[str, float]
    hourly: dict[str, np.ndarray]
    timeline: dict[str, np.ndarray] | None = None
    log: dict[str, np.ndarray] | None = None


@dataclass(slots=True)
class RunOutput:
    """All replications of one scenario and their summary."""

    scenario: dict[str, Any]
    seed: int
    replications: int
    days: int
    resources: tuple[str, ...]
    classes: tuple[str, ...]
    per_rep: list[ReplicationOutput]
    wall_s: float
    engine: str
    summary: dict[str, dict[str, float]] = field(default_factory=dict)
    hourly: dict[str, dict[str, list]] = field(default_factory=dict)


def replication_kpis(gate: CompiledGate, r: RunResult) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Flat KPIs and by-hour-of-day arrays of one replication (warm-up days excluded)."""
    s = gate.scenario
    warm = s.warmup_days
    days = r.days - warm
    k: dict[str, float] = {}
    cls_dir = [c.direction for c in s.classes.values()]
    exits = r.exits_by_class
    k["throughput_per_day"] = exits.sum() / days
    k["demand_per_day"] = r.arrivals_by_class.sum() / days
    for d in ("import", "export"):
        k[f"throughput_per_day.{d}"] = sum(int(e) for e, cd in zip(exits, cls_dir, strict=True) if cd == d) / days
    all_hist = r.tis_hist_by_class.sum(axis=0)
    for ci, name in enumerate((*r.classes, "all")):
        hist = all_hist if name == "all" else r.tis_hist_by_class[ci]
        n = exits.sum() if name == "all" else exits[ci]
        total = r.tis_sum_by_class.sum() if name == "all" else r.tis_sum_by_class[ci]
        k[f"time_in_system_min.{name}.mean"] = total / n if n else math.nan
        for label, quantile in PERCENTILES:
            k[f"time_in_system_min.{name}.{label}"] = hist_percentile(hist, quantile)
    with np.errstate(invalid="ignore", divide="ignore"):
        for ri, name in enumerate(r.resources):
            k[f"wait_min.{name}"] = r.wait_sum[ri] / r.wait_n[ri] if r.wait_n[ri] else math.nan
        sl = slice(warm * 24, None)
        q = r.queue_area[sl] / 60.0
        busy = r.busy_area[sl]
        cap = r.cap_area[sl]
        for ri, name in enumerate(r.resources):
            k[f"queue_length.{name}"] = float(q[:, ri].mean())
            c = cap[:, ri].sum()
            k[f"utilisation.{name}"] = float(busy[:, ri].sum() / c) if c > 0 else math.nan
        k["wait_min.yard_blocked"] = r.yard_block_sum / r.yard_block_n if r.yard_block_n else 0.0
        k["trucks_blocked_by_yard_per_day"] = r.yard_block_n / days
        k["wait_min.acceptance_cap"] = r.quota_hold_sum / r.quota_hold_n if r.quota_hold_n else 0.0
        k["trucks_held_by_cap_per_day"] = r.quota_hold_n / days
        yard = r.yard_area[sl] / 60.0
        k["yard_occupancy.mean"] = float(yard.mean())
        k["yard_occupancy.max"] = float(r.yard_max[sl].max())
        k["trucks_left_at_closing"] = float(r.left_at_close[warm:].mean())
        k["trucks_in_system_at_end"] = float(r.in_system_end)

        by_hod = lambda a: a[sl].reshape(days, 24, *a.shape[1:]).mean(axis=0)  # noqa: E731
        util = r.busy_area[sl].reshape(days, 24, -1).sum(axis=0) / r.cap_area[sl].reshape(days, 24, -1).sum(axis=0)
        hourly = {
            "queue_length": by_hod(q),
            "utilisation": util,
            "yard_occupancy": by_hod(yard),
            "yard_max": r.yard_max[sl].reshape(days, 24).max(axis=0),
            "arrivals": by_hod(r.arrivals_by_hour),
            "exits": by_hod(r.exits_by_hour),
            "wait_percentiles": np.array(
                [[hist_percentile(r.wait_hist_by_hour[h], q_) for _, q_ in PERCENTILES] for h in range(24)]
            ),
        }
    return k, hourly


def _log_arrays(gate: CompiledGate, r: RunResult) -> dict[str, np.ndarray]:
    lg = r.log
    assert lg is not None
    return {
        "truck": np.asarray(lg.truck, dtype=np.int64),
        "resource": np.asarray(lg.resource, dtype=np.int16),
        "queued_min": np.asarray(lg.queued_min),
        "start_min": np.asarray(lg.start_min),
        "end_min": np.asarray(lg.end_min),
        "truck_cls": np.asarray(lg.truck_cls, dtype=np.int16),
        "truck_arrival_min": np.asarray(lg.truck_arrival_min),
        "exit_truck": np.asarray(lg.exit_truck, dtype=np.int64),
        "exit_min": np.asarray(lg.exit_min),
    }


def run_replication(
    raw: dict[str, Any], seed: int, replication: int, days: int, log: bool = False, timeline: bool = False
) -> ReplicationOutput:
    """Run one replication of a raw scenario; a plain top-level function so process pools and Dask can ship it."""
    gate = compile_gate(parse_scenario(raw))
    total_days = days + gate.scenario.warmup_days
    source = GateSource(gate, seed, replication)
    breakdowns = BreakdownDraws(gate, seed, replication)
    r = simulate(gate.network, source, total_days, breakdown_draw=breakdowns, log=log)
    kpis, hourly = replication_kpis(gate, r)
    tl = None
    if timeline:
        tl = {"queue_length": r.queue_area / 60.0, "yard_occupancy": r.yard_area / 60.0}
    return ReplicationOutput(replication, kpis, hourly, tl, _log_arrays(gate, r) if log else None)


Progress = Callable[[int, int], None]


def run_replications(
    raw: dict[str, Any],
    *,
    seed: int,
    replications: int,
    days: int,
    workers: int | None = None,
    cluster: str | None = None,
    log_replications: int = 0,
    progress: Progress | None = None,
) -> RunOutput:
    """Run replications 0..n-1 of a scenario from one root seed and summarise their KPIs with 95 % t intervals.

    workers=1 runs in this process; otherwise a local process pool; `cluster` (a Dask scheduler address) runs the
    same tasks on that cluster. Results do not depend on where a replication ran.
    """
    scenario = parse_scenario(raw)
    gate = compile_gate(scenario)
    if replications < 1 or days < 1:
        raise ValueError("replications and days must be at least 1")
    tasks = [(raw, seed, i, days, i < log_replications, i == 0) for i in range(replications)]
    t0 = time.perf_counter()
    done = 0
    results: list[ReplicationOutput] = []

    def tick() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, replications)

    if cluster is not None:
        engine = f"dask:{cluster}"
        from distributed import Client, as_completed

        with Client(cluster, timeout="10s") as client:
            futures = [client.submit(run_replication, *t, pure=False) for t in tasks]
            for fut in as_completed(futures):
                results.append(fut.result())
                tick()
    elif (workers or os.cpu_count() or 1) == 1 or replications == 1:
        engine = "inline"
        for t in tasks:
            results.append(run_replication(*t))
            tick()
    else:
        from concurrent.futures import ProcessPoolExecutor
        from concurrent.futures import as_completed as cf_completed

        n = min(workers or os.cpu_count() or 1, replications)
        engine = f"process-pool:{n}"
        with ProcessPoolExecutor(max_workers=n) as pool:
            cfuts = [pool.submit(run_replication, *t) for t in tasks]
            for f in cf_completed(cfuts):
                results.append(f.result())
                tick()
    results.sort(key=lambda o: o.replication)
    out = RunOutput(
        scenario=raw,
        seed=seed,
        replications=replications,
        days=days,
        resources=tuple(r.name for r in gate.network.resources),
        classes=gate.classes,
        per_rep=results,
        wall_s=time.perf_counter() - t0,
        engine=engine,
    )
    out.summary = summarize([o.kpis for o in results])
    out.hourly = {key: hourly_interval([o.hourly[key] for o in results]) for key in results[0].hourly}
    return out


def compare(a: RunOutput, b: RunOutput) -> dict[str, dict[str, float]]:
    """Paired differences B − A of every KPI (both runs must share seed and replication count)."""
    if a.seed != b.seed:
        raise ValueError("a paired comparison needs both runs on the same seed")
    return paired_differences([o.kpis for o in a.per_rep], [o.kpis for o in b.per_rep])


HEADLINE = (
    "throughput_per_day",
    "demand_per_day",
    "time_in_system_min.all.mean",
    "time_in_system_min.all.p90",
    "time_in_system_min.all.p95",
    "trucks_left_at_closing",
    "yard_occupancy.max",
)


def headline(summary: dict[str, dict[str, float]], extra: Sequence[str] = ()) -> list[tuple[str, dict[str, float]]]:
    """The KPIs worth a first look, in a stable order."""
    return [(k, summary[k]) for k in (*HEADLINE, *extra) if k in summary]
