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
from simulator.load import StageLoad, affected_kpis, offered_load, yard_note
from simulator.scenario import parse_scenario
from simulator.stats import (
    hist_percentile,
    hourly_interval,
    needed_replications,
    paired_differences,
    relative_changes,
    summarize,
)

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
    load: dict[str, StageLoad] = field(default_factory=dict)  # offered load per stage (simulator.load)
    yard_note: str | None = None  # an unstable stage inside a finite yard: what that does to the others
    no_steady_state: list[str] = field(default_factory=list)  # KPIs that grow with the run length (ρ >= 1)
    precision: dict[str, Any] | None = None  # the relative-precision rule, when asked for
    interval: str = "hall"  # the interval method of `summary` (stats.INTERVALS)


GROWTH = "trucks_left_at_closing.growth_per_day"
# What `--precision` applies to by default: the lopsided KPIs an engineer quotes first.
PRECISION_KPIS = ("time_in_system_min.all.mean", "time_in_system_min.all.p95")
SIGNED = (GROWTH,)  # KPIs that can be negative; every other one is >= 0


def growth_per_day(left_at_close: np.ndarray) -> float:
    """Least-squares slope of the trucks left at closing, day by day: how fast the queue grows (NaN: < 2 days).

    About 0 when the gate has a steady state; with a stage at ρ >= 1 it is the rate at which its backlog grows,
    which is the figure to report instead of a mean wait that only measures the run length.
    """
    y = np.asarray(left_at_close, dtype=float)
    if y.size < 2:
        return math.nan
    x = np.arange(y.size, dtype=float)
    x -= x.mean()
    return float((x * (y - y.mean())).sum() / (x * x).sum())


def kpi_names(gate: CompiledGate) -> list[str]:
    """Every per-replication KPI a scenario produces, sorted (what `--kpi` accepts)."""
    names = ["throughput_per_day", "demand_per_day", "throughput_per_day.import", "throughput_per_day.export"]
    for name in (*gate.classes, "all"):
        names += [f"time_in_system_min.{name}.{stat}" for stat in ("mean", *(p for p, _ in PERCENTILES))]
    for res in gate.network.resources:
        names += [f"wait_min.{res.name}", f"queue_length.{res.name}", f"utilisation.{res.name}"]
        names += [f"wait_min.{res.name}.{p}" for p, _ in PERCENTILES]
    names += [
        "wait_min.yard_blocked",
        "trucks_blocked_by_yard_per_day",
        "wait_min.acceptance_cap",
        "trucks_held_by_cap_per_day",
        "yard_occupancy.mean",
        "yard_occupancy.max",
        "trucks_left_at_closing",
        GROWTH,
        "trucks_in_system_at_end",
    ]
    return sorted(names)


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
            for label, quantile in PERCENTILES:
                k[f"wait_min.{name}.{label}"] = hist_percentile(r.wait_hist[ri], quantile)
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
        k[GROWTH] = growth_per_day(r.left_at_close[warm:])
        k["trucks_in_system_at_end"] = float(r.in_system_end)

        # `q`, `yard`, `busy` and `cap` are already cut to the days after warm-up; the raw arrays are not.
        by_hod = lambda a: a.reshape(days, 24, *a.shape[1:]).mean(axis=0)  # noqa: E731
        util = busy.reshape(days, 24, -1).sum(axis=0) / cap.reshape(days, 24, -1).sum(axis=0)
        hourly = {
            "queue_length": by_hod(q),
            "utilisation": util,
            "yard_occupancy": by_hod(yard),
            "yard_max": r.yard_max[sl].reshape(days, 24).max(axis=0),
            "arrivals": by_hod(r.arrivals_by_hour[sl]),
            "exits": by_hod(r.exits_by_hour[sl]),
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


def _execute(
    tasks: list[tuple[Any, ...]], workers: int | None, cluster: str | None, tick: Callable[[], None]
) -> tuple[list[ReplicationOutput], str]:
    """Run replication tasks inline, on a local process pool or on a Dask cluster."""
    results: list[ReplicationOutput] = []
    if cluster is not None:
        from distributed import Client, as_completed

        with Client(cluster, timeout="10s") as client:
            futures = [client.submit(run_replication, *t, pure=False) for t in tasks]
            for fut in as_completed(futures):
                results.append(fut.result())
                tick()
        return results, f"dask:{cluster}"
    if (workers or os.cpu_count() or 1) == 1 or len(tasks) == 1:
        for t in tasks:
            results.append(run_replication(*t))
            tick()
        return results, "inline"
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures import as_completed as cf_completed

    n = min(workers or os.cpu_count() or 1, len(tasks))
    with ProcessPoolExecutor(max_workers=n) as pool:
        cfuts = [pool.submit(run_replication, *t) for t in tasks]
        for f in cf_completed(cfuts):
            results.append(f.result())
            tick()
    return results, f"process-pool:{n}"


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
    precision: float | None = None,
    max_replications: int | None = None,
    precision_kpis: Sequence[str] = (),
    interval: str = "hall",
) -> RunOutput:
    """Run replications 0..n-1 of a scenario from one root seed and summarise their KPIs with 95 % intervals.

    workers=1 runs in this process; otherwise a local process pool; `cluster` (a Dask scheduler address) runs the
    same tasks on that cluster. Results do not depend on where a replication ran.

    With `precision` (a relative half-width, e.g. 0.05) the run continues past `replications` with replications
    n, n+1, ... until every KPI of `precision_kpis` (default: PRECISION_KPIS) has a half-width at most
    precision × |mean|, or `max_replications` were run; `RunOutput.precision` says whether it was met.

    `interval` is "hall" (Hall's skewness-corrected t interval, stats.hall_interval; it holds its coverage on the
    lopsided KPIs where the plain t interval does not, docs/simulator.md) or "t", for the summary and for the
    precision rule. Paired differences (`compare`) use the t interval.
    """
    scenario = parse_scenario(raw)
    gate = compile_gate(scenario)
    if replications < 1 or days < 1:
        raise ValueError("replications and days must be at least 1")
    limit = replications if precision is None else max(replications, max_replications or 10 * replications)
    targets = tuple(precision_kpis) or PRECISION_KPIS
    t0 = time.perf_counter()
    done = 0
    planned = replications

    def tick() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, planned)

    results: list[ReplicationOutput] = []
    engine = "inline"
    n = 0
    while True:
        tasks = [(raw, seed, i, days, i < log_replications, i == 0) for i in range(n, planned)]
        batch, engine = _execute(tasks, workers, cluster, tick)
        results += batch
        n = planned
        if precision is None:
            break
        need = max(needed_replications([o.kpis[k] for o in results], precision, method=interval) for k in targets)
        if need <= n or n >= limit:
            break
        planned = min(limit, max(need, n + 1))
    results.sort(key=lambda o: o.replication)
    out = RunOutput(
        scenario=raw,
        seed=seed,
        replications=len(results),
        days=days,
        resources=tuple(r.name for r in gate.network.resources),
        classes=gate.classes,
        per_rep=results,
        wall_s=time.perf_counter() - t0,
        engine=engine,
    )
    out.summary = summarize([o.kpis for o in results], signed=SIGNED, method=interval)
    out.interval = interval
    out.hourly = {key: hourly_interval([o.hourly[key] for o in results]) for key in results[0].hourly}
    out.load = offered_load(gate)
    out.yard_note = yard_note(gate, out.load)
    out.no_steady_state = affected_kpis(out.load, list(out.summary))
    if precision is not None:
        out.precision = {
            "relative_half_width": precision,
            "kpis": list(targets),
            "min_replications": replications,
            "max_replications": limit,
            "met": all(out.summary[k]["half_width"] <= precision * abs(out.summary[k]["mean"]) for k in targets),
        }
    return out


def compare(a: RunOutput, b: RunOutput) -> dict[str, dict[str, float]]:
    """Paired differences B − A of every KPI (both runs must share seed and replication count)."""
    if a.seed != b.seed:
        raise ValueError("a paired comparison needs both runs on the same seed")
    return paired_differences([o.kpis for o in a.per_rep], [o.kpis for o in b.per_rep])


def relative(a: RunOutput, b: RunOutput) -> dict[str, dict[str, float]]:
    """B / A − 1 of every non-negative KPI, paired by replication, with its 95 % interval (stats.relative_change)."""
    if a.seed != b.seed:
        raise ValueError("a paired comparison needs both runs on the same seed")
    return relative_changes([o.kpis for o in a.per_rep], [o.kpis for o in b.per_rep], signed=SIGNED)


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
