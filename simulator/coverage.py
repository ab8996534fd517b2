"""Measured coverage of the interval methods: a long reference run, cut into independent experiments.

`python -m simulator.coverage generate baseline-2025 --replications 3000 --days 10 --out cov.npz` runs many
replications once and stores every per-replication KPI; `python -m simulator.coverage analyse cov.npz` takes the
mean over all of them as the reference value of each KPI (its own standard error is printed) and asks how often an
interval built from a few of them contains it:

* `t`: the t interval of n consecutive replications (what `run` reports by default);
* `hall`: Hall's skewness-corrected interval of the same replications (`run --interval hall`);
* `bootstrap`: the percentile bootstrap interval of the same n replications;
* `precision`: the relative-precision rule of `run --precision G`: start with a pilot of replications, add
  replications (stats.needed_replications) until the half-width is at most G × |mean| or `max` replications
  were used, then report the interval.

Experiments: disjoint blocks of the pool (independent, but few), and many samples drawn with replacement from
the pool, whose mean is then the exact reference. This is a measurement tool, not a test.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

LOPSIDED = ("time_in_system_min.export_fruit.p95", "wait_min.xray", "time_in_system_min.all.p95")


def generate(scenario: str, replications: int, days: int, seed: int, out: Path, chunk: int = 100) -> None:
    """Run `replications` replications (in chunks, saved after each) and store every per-replication KPI."""
    from simulator.runner import run_replication
    from simulator.scenario import load_raw

    raw = load_raw(scenario)
    rows: list[dict[str, float]] = []
    for start in range(0, replications, chunk):
        for i in range(start, min(start + chunk, replications)):
            rows.append(run_replication(raw, seed, i, days).kpis)
        keys = sorted(rows[0])
        np.savez_compressed(
            out,
            keys=np.asarray(keys),
            values=np.asarray([[r.get(k, math.nan) for k in keys] for r in rows]),
            meta=np.asarray([scenario, str(days), str(seed)]),
        )
        sys.stderr.write(f"{len(rows)}/{replications}\n")


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")


def _t(x: np.ndarray) -> tuple[float, float, float]:
    from simulator.stats import t_interval

    ci = t_interval(x)
    return ci["mean"], ci["ci_low"], ci["ci_high"]


def _bootstrap(x: np.ndarray, rng: np.random.Generator, b: int = 2000) -> tuple[float, float, float]:
    means = x[rng.integers(0, x.size, (b, x.size))].mean(axis=1)
    return float(x.mean()), float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))


def precision_rule(
    draw: Callable[[int], np.ndarray], n0: int, gamma: float, n_max: int, method: str = "t"
) -> tuple[float, float, int]:
    """The interval `run --precision gamma` reports, replications drawn by `draw(k)`; (low, high, replications).

    The same rule as simulator.runner.run_replications: after each batch, ask stats.needed_replications for the
    total, run that many (at least one more, at most n_max), and stop when the half-width is met.
    """
    from simulator.stats import INTERVALS, needed_replications

    x = draw(n0)
    while True:
        need = needed_replications(x, gamma, method=method)
        if need <= x.size or x.size >= n_max:
            ci = INTERVALS[method](x)
            return ci["ci_low"], ci["ci_high"], int(x.size)
        x = np.concatenate([x, draw(min(n_max, max(need, x.size + 1)) - x.size)])


# (pilot replications, relative half-width, interval) of the precision rule
RULES = ((10, 0.1, "t"), (30, 0.1, "t"), (30, 0.05, "t"), (30, 0.1, "hall"), (30, 0.05, "hall"))


def analyse(path: Path, kpis: Sequence[str], n: int, n_max: int, experiments: int) -> dict[str, dict[str, float]]:
    """Coverage of each method for each KPI; prints a markdown table and returns it.

    Two kinds of experiment: disjoint blocks of the pool (independent, but few), and `experiments` samples drawn
    with replacement from the pool, whose mean is then the exact reference (the pool stands for the distribution of
    a replication's KPI; with thousands of replications it carries its skew and its rare events).
    """
    from simulator.stats import INTERVALS, t_interval

    data = np.load(path)
    keys = list(data["keys"])
    values = data["values"]
    rng = np.random.default_rng(0)
    out: dict[str, dict[str, float]] = {}
    _say(f"{path}: {values.shape[0]} replications of {' '.join(data['meta'])} (scenario, days, seed)")
    for k in kpis:
        x = values[:, keys.index(k)]
        x = x[~np.isnan(x)]
        ref, se = float(x.mean()), float(x.std(ddof=1) / math.sqrt(x.size))
        skew = float(((x - ref) ** 3).mean() / x.std() ** 3)
        o: dict[str, float] = {"reference": ref, "reference_se": se, "skewness": skew}
        blocks = x.size // n
        hits = 0
        for i in range(blocks):
            ci = t_interval(x[i * n : (i + 1) * n])
            hits += ci["ci_low"] <= ref <= ci["ci_high"]
        o[f"t, n={n}, disjoint blocks of the pool ({blocks})"] = hits / blocks

        def draw(m: int, x: np.ndarray = x) -> np.ndarray:
            return x[rng.integers(0, x.size, m)]

        for method in ("t", "hall"):
            for m in (n, 3 * n, 10 * n):
                hits = 0
                for _ in range(experiments):
                    ci = INTERVALS[method](draw(m))
                    hits += ci["ci_low"] <= ref <= ci["ci_high"]
                o[f"{method}, n={m}"] = hits / experiments
        hits = 0
        for _ in range(experiments):
            _, lo, hi = _bootstrap(draw(n), rng, 1000)
            hits += lo <= ref <= hi
        o[f"percentile bootstrap, n={n}"] = hits / experiments
        for pilot, g, method in RULES:
            hits = used = 0
            for _ in range(experiments):
                lo, hi, m = precision_rule(draw, pilot, g, n_max, method)
                hits += lo <= ref <= hi
                used += m
            o[f"precision {g:g}, pilot {pilot}, {method}"] = hits / experiments
            o[f"precision {g:g}, pilot {pilot}, {method}: mean replications"] = used / experiments
        out[k] = o
    methods = [m for m in next(iter(out.values())) if m not in ("reference", "reference_se", "skewness")]
    _say("| method | " + " | ".join(f"`{k}`" for k in out) + " |")
    _say("| --- |" + " --- |" * len(out))
    _say(
        "| reference (pool mean ± s.e.) | "
        + " | ".join(f"{o['reference']:.1f} ± {o['reference_se']:.1f}" for o in out.values())
        + " |"
    )
    _say("| skewness of a replication's value | " + " | ".join(f"{o['skewness']:.1f}" for o in out.values()) + " |")
    for method in methods:
        cells = [f"{o[method]:.0f}" if o[method] > 1 else f"{o[method]:.1%}" for o in out.values()]
        _say(f"| {method} | " + " | ".join(cells) + " |")
    return out


def crn(a: str, b: str, replications: int, days: int, seed: int, kpis: Sequence[str]) -> dict[str, float]:
    """How much common random numbers narrow `compare`: Var(B − A, paired) / (Var(A) + Var(B)) per KPI.

    1 means no help (as if A and B were run on different seeds), 0 a difference known exactly.
    """
    from simulator.runner import run_replications
    from simulator.scenario import load_raw

    ra = run_replications(load_raw(a), seed=seed, replications=replications, days=days, workers=1)
    rb = run_replications(load_raw(b), seed=seed, replications=replications, days=days, workers=1)
    out = {}
    _say(f"{b} − {a}, {replications} × {days} days, seed {seed}: variance of the paired difference / (var A + var B)")
    for k in kpis:
        va = np.var([o.kpis[k] for o in ra.per_rep], ddof=1)
        vb = np.var([o.kpis[k] for o in rb.per_rep], ddof=1)
        vd = np.var([ob.kpis[k] - oa.kpis[k] for oa, ob in zip(ra.per_rep, rb.per_rep, strict=True)], ddof=1)
        out[k] = float(vd / (va + vb)) if va + vb > 0 else math.nan
        _say(f"  {k:<40} {out[k]:.3f}")
    return out


CRN_KPIS = (
    "time_in_system_min.all.mean",
    "time_in_system_min.all.p95",
    "time_in_system_min.export_fruit.p95",
    "wait_min.xray",
    "trucks_left_at_closing",
)


def main(argv: Sequence[str] | None = None) -> None:
    """`generate` a pool of replications or `analyse` one."""
    p = argparse.ArgumentParser(prog="python -m simulator.coverage", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("generate")
    g.add_argument("scenario")
    g.add_argument("--replications", type=int, default=3000)
    g.add_argument("--days", type=int, default=10)
    g.add_argument("--seed", type=int, default=20250101)
    g.add_argument("--out", type=Path, required=True)
    a = sub.add_parser("analyse")
    a.add_argument("path", type=Path)
    a.add_argument("--kpi", action="append", default=None)
    a.add_argument("-n", type=int, default=10)
    a.add_argument("--max-replications", type=int, default=3000)
    a.add_argument("--experiments", type=int, default=1000)
    c = sub.add_parser("crn")
    c.add_argument("a")
    c.add_argument("b")
    c.add_argument("-r", "--replications", type=int, default=30)
    c.add_argument("-d", "--days", type=int, default=30)
    c.add_argument("--seed", type=int, default=20250101)
    c.add_argument("--kpi", action="append", default=None)
    args = p.parse_args(argv)
    if args.cmd == "crn":
        crn(args.a, args.b, args.replications, args.days, args.seed, args.kpi or CRN_KPIS)
    elif args.cmd == "generate":
        generate(args.scenario, args.replications, args.days, args.seed, args.out)
    else:
        analyse(args.path, args.kpi or LOPSIDED, args.n, args.max_replications, args.experiments)


if __name__ == "__main__":
    main()
