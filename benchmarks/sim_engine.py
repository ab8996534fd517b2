"""Simulator speed: our engine vs a bare SimPy 4.1 model of the 5-stage tandem, memory, and a year × 30 replications.

    .venv/bin/python benchmarks/sim_engine.py            # everything (about a minute on 2 cores)
    .venv/bin/python benchmarks/sim_engine.py --quick    # tandem and memory only

A benchmark, not a test: it prints ratios against baselines measured in the same run on the same machine.
"""

from __future__ import annotations

import argparse
import gc
import heapq
import os
import random
import resource
import time
import tracemalloc

from simulator.engine import simulate
from simulator.reference import TANDEM_STAGES, TandemSource, simpy_tandem_bare, tandem_network
from simulator.runner import run_replications
from simulator.scenario import load_raw


def bare_heapq_tandem(arrivals_per_min: float, stages: tuple[tuple[int, float], ...], minutes: float, seed: int) -> int:
    """The floor: a minimal heapq event loop of the same network, no statistics; returns trucks completed."""
    rnd = random.Random(seed)
    exp = rnd.expovariate
    rates = [1.0 / m for _, m in stages]
    free = [c for c, _ in stages]
    queues: list[list[int]] = [[] for _ in stages]
    heads = [0] * len(stages)
    last = len(stages) - 1
    heap: list[tuple[float, int, int]] = [(exp(arrivals_per_min), -1, 0)]
    done = 0
    while heap:
        t, stage, truck = heapq.heappop(heap)
        if t > minutes:
            break
        if stage == -1:
            heapq.heappush(heap, (t + exp(arrivals_per_min), -1, truck + 1))
            nxt = 0
        else:
            q = queues[stage]
            if heads[stage] < len(q):
                heapq.heappush(heap, (t + exp(rates[stage]), stage, q[heads[stage]]))
                heads[stage] += 1
            else:
                free[stage] += 1
            if stage == last:
                done += 1
                continue
            nxt = stage + 1
        if free[nxt]:
            free[nxt] -= 1
            heapq.heappush(heap, (t + exp(rates[nxt]), nxt, truck))
        else:
            queues[nxt].append(truck)
    return done


def tandem(days: int) -> dict[str, float]:
    """Trucks/s of the engine, bare SimPy and a bare heapq loop on the same network and horizon."""
    out = {}
    gc.collect()
    t0 = time.perf_counter()
    r = simulate(tandem_network(), TandemSource(1.0, TANDEM_STAGES, seed=1), days)
    out["ours"] = float(r.exits_by_class.sum()) / (time.perf_counter() - t0)
    gc.collect()
    t0 = time.perf_counter()
    n = simpy_tandem_bare(1.0, TANDEM_STAGES, days * 1440.0, seed=1)
    out["simpy"] = n / (time.perf_counter() - t0)
    gc.collect()
    t0 = time.perf_counter()
    n = bare_heapq_tandem(1.0, TANDEM_STAGES, days * 1440.0, seed=1)
    out["heapq"] = n / (time.perf_counter() - t0)
    return out


def peak_memory(days: int) -> tuple[float, int]:
    """Peak traced MiB and peak trucks in the system of one tandem run without the event log."""
    tracemalloc.start()
    r = simulate(tandem_network(), TandemSource(1.0, TANDEM_STAGES, seed=1), days)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20, r.peak_slots


def main() -> None:
    """Run the benchmark and print its figures."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--days", type=int, default=30, help="simulated days for the tandem comparison")
    ap.add_argument("--quick", action="store_true", help="skip the year × 30 replications run")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()

    runs = [tandem(args.days) for _ in range(3)]
    best = {k: max(r[k] for r in runs) for k in runs[0]}
    trucks = int(args.days * 1440)
    print(f"5-stage tandem, 1 truck/min, {args.days} simulated days (~{trucks:,} trucks), best of 3:")
    print(f"  ours          {best['ours']:>10,.0f} trucks/s")
    print(f"  SimPy 4.1     {best['simpy']:>10,.0f} trucks/s   ours/SimPy = {best['ours'] / best['simpy']:.2f}x")
    print(f"  bare heapq    {best['heapq']:>10,.0f} trucks/s   ours/heapq = {best['ours'] / best['heapq']:.2f}x")

    for d in (5, 50):
        mib, slots = peak_memory(d)
        print(
            f"  peak memory, {d:>3} days ({d * 1440:>6,} trucks): {mib:6.2f} MiB traced, "
            f"{slots} trucks in system at most"
        )

    if not args.quick:
        raw = load_raw("baseline-2025")
        cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        out = run_replications(raw, seed=raw["seed"], replications=30, days=365, workers=args.workers)
        wall = time.perf_counter() - t0
        cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        # CPU seconds of the worker processes do not depend on what else runs on the machine; wall time does.
        cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
        trucks_total = out.summary["demand_per_day"]["mean"] * 365 * 30
        print(
            f"baseline-2025, 30 replications × 365 days ({trucks_total:,.0f} trucks) on {out.engine}: "
            f"{wall:.1f} s wall ({trucks_total / wall:,.0f} trucks/s), {cpu:.1f} CPU-s in workers "
            f"= {cpu / args.workers:.1f} s on {args.workers} otherwise idle cores; load average "
            f"{os.getloadavg()[0]:.1f}"
        )


if __name__ == "__main__":
    main()
