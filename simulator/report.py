"""Run outputs: summary.json, the per-truck event log in Parquet, PNG plots and one self-contained HTML report."""

from __future__ import annotations

import base64
import html
import json
import math
import platform
import sys
from pathlib import Path
from typing import Any

import numpy as np

from simulator.load import describe, unstable
from simulator.runner import GROWTH, HEADLINE, RunOutput

PLOTS = (
    ("queue_length.png", "Queue length per stage"),
    ("wait_percentiles.png", "Total wait by hour of arrival"),
    ("utilisation.png", "Utilisation by resource and hour"),
    ("throughput.png", "Throughput vs demand"),
    ("yard.png", "Yard occupancy vs capacity"),
)


def versions() -> dict[str, str]:
    """Versions of what produced a run, for the record."""
    import importlib.metadata as md

    out = {"python": platform.python_version(), "platform": sys.platform}
    for pkg in ("smartgate", "numpy", "scipy", "pyyaml", "pyarrow", "matplotlib"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def _clean(x: Any) -> Any:
    """JSON-safe: NaN and infinities become null, numpy scalars become Python numbers."""
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_clean(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def summary_dict(run: RunOutput, *, with_versions: bool = True) -> dict[str, Any]:
    """The content of summary.json."""
    out: dict[str, Any] = {
        "scenario": run.scenario.get("name"),
        "seed": run.seed,
        "replications": run.replications,
        "days": run.days,
        "confidence_level": 0.95,
        "interval_method": run.interval,
        "resources": list(run.resources),
        "classes": list(run.classes),
        "kpis": run.summary,
        "offered_load": {name: x.as_dict() for name, x in run.load.items()},
        "unstable_stages": [x.stage for x in unstable(run.load)],
        "unstable_note": run.yard_note,
        "no_steady_state": run.no_steady_state,
        "precision": run.precision,
        "hourly": run.hourly,
        "scenario_echo": run.scenario,
    }
    if with_versions:
        out["versions"] = versions()
        out["run_time_s"] = round(run.wall_s, 3)
        out["engine"] = run.engine
    return _clean(out)


def write_event_log(run: RunOutput, path: Path) -> int:
    """Write the visits of the logged replications as Parquet; returns the row count."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    tables = []
    stages = np.asarray(run.resources + ("system",))
    classes = np.asarray(run.classes)
    for rep in run.per_rep:
        lg = rep.log
        if lg is None:
            continue
        # Every visit, then one "system" row per truck that left: queued = arrival, end = exit.
        truck = np.concatenate([lg["truck"], lg["exit_truck"]])
        res = np.concatenate([lg["resource"], np.full(lg["exit_truck"].size, len(run.resources))])
        arr_exit = lg["truck_arrival_min"][lg["exit_truck"]]
        queued = np.concatenate([lg["queued_min"], arr_exit])
        start = np.concatenate([lg["start_min"], arr_exit])
        end = np.concatenate([lg["end_min"], lg["exit_min"]])
        tables.append(
            pa.table(
                {
                    "replication": np.full(truck.size, rep.replication, dtype=np.int32),
                    "truck": truck,
                    "class": classes[lg["truck_cls"][truck]],
                    "stage": stages[res],
                    "queued_min": queued,
                    "start_min": start,
                    "end_min": end,
                    "wait_min": start - queued,
                }
            )
        )
    if not tables:
        return 0
    table = pa.concat_tables(tables)
    pq.write_table(table, path)
    return int(table.num_rows)


def _band(ax: Any, x: np.ndarray, mean: Any, half: Any, label: str) -> None:
    m = np.asarray(mean, dtype=float)
    h = np.nan_to_num(np.asarray(half, dtype=float))
    ax.plot(x, m, label=label)
    ax.fill_between(x, np.maximum(m - h, 0.0), m + h, alpha=0.2)  # every plotted quantity is >= 0


def _arr(v: Any) -> np.ndarray:
    return np.asarray([[np.nan if y is None else y for y in row] if isinstance(row, list) else row for row in v], float)


def write_plots(run: RunOutput, out: Path) -> list[Path]:
    """The five PNG plots; bands are 95 % confidence intervals across replications."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    hours = np.arange(24)
    name = run.scenario.get("name", "")
    paths = []
    hq = run.hourly

    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(10, 7))
    tl = run.per_rep[0].timeline
    if tl is not None:
        q = tl["queue_length"]
        n = min(q.shape[0], 7 * 24)
        for ri, rname in enumerate(run.resources):
            ax1.plot(np.arange(n) / 24.0, q[:n, ri], label=rname)
        ax1.set(xlabel="day", ylabel="trucks queued (hourly mean)", title=f"{name}: replication 0, first days")
    qm, qh = _arr(hq["queue_length"]["mean"]), _arr(hq["queue_length"]["half_width"])
    for ri, rname in enumerate(run.resources):
        _band(ax2, hours, qm[:, ri], qh[:, ri], rname)
    ax2.set(xlabel="hour of day (Hanoi)", ylabel="trucks queued", title="mean by hour of day, 95 % CI")
    ax2.legend(fontsize=7, ncol=3)
    fig.tight_layout()
    paths.append(out / PLOTS[0][0])
    fig.savefig(paths[-1], dpi=90)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(10, 4))
    wm, wh = _arr(hq["wait_percentiles"]["mean"]), _arr(hq["wait_percentiles"]["half_width"])
    for i, label in enumerate(("p50", "p90", "p95")):
        _band(ax, hours, wm[:, i], wh[:, i], label)
    # Log scale: trucks arriving just before closing wait overnight, hundreds of minutes against a few.
    ax.set_yscale("symlog", linthresh=10)
    ax.set(xlabel="hour of arrival (Hanoi)", ylabel="minutes waiting in total", title=f"{name}: wait percentiles")
    ax.legend()
    fig.tight_layout()
    paths.append(out / PLOTS[1][0])
    fig.savefig(paths[-1], dpi=90)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(10, 4))
    um = _arr(hq["utilisation"]["mean"])
    im = ax.imshow(um.T, aspect="auto", vmin=0, vmax=1, cmap="viridis")
    ax.set_yticks(range(len(run.resources)), run.resources, fontsize=7)
    ax.set(xlabel="hour of day (Hanoi)", title=f"{name}: utilisation (blank = closed)")
    fig.colorbar(im, ax=ax)
    fig.tight_layout()
    paths.append(out / PLOTS[2][0])
    fig.savefig(paths[-1], dpi=90)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(10, 4))
    _band(ax, hours, hq["arrivals"]["mean"], hq["arrivals"]["half_width"], "arrivals (demand)")
    _band(ax, hours, hq["exits"]["mean"], hq["exits"]["half_width"], "trucks leaving (throughput)")
    k = run.summary
    ax.set(
        xlabel="hour of day (Hanoi)",
        ylabel="trucks per hour",
        title=f"{name}: {k['throughput_per_day']['mean']:.0f} of {k['demand_per_day']['mean']:.0f} trucks/day",
    )
    ax.legend()
    fig.tight_layout()
    paths.append(out / PLOTS[3][0])
    fig.savefig(paths[-1], dpi=90)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(10, 4))
    _band(ax, hours, hq["yard_occupancy"]["mean"], hq["yard_occupancy"]["half_width"], "mean occupancy")
    ax.plot(hours, np.asarray(hq["yard_max"]["mean"], dtype=float), label="hourly max (mean over replications)")
    cap = (run.scenario.get("yard") or {}).get("capacity_trucks")
    if cap:
        ax.axhline(cap, color="red", linestyle="--", label=f"capacity {cap}")
    ax.set(xlabel="hour of day (Hanoi)", ylabel="trucks in yard", title=f"{name}: yard")
    ax.legend()
    fig.tight_layout()
    paths.append(out / PLOTS[4][0])
    fig.savefig(paths[-1], dpi=90)
    plt.close(fig)
    return paths


def _fmt(v: float | None) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:,.2f}"


def write_html(run: RunOutput, out: Path, plot_paths: list[Path]) -> Path:
    """One self-contained HTML page: headline KPIs, every KPI with its interval, and the plots inlined."""
    s = run.summary
    rows = []
    grows = set(run.no_steady_state)
    for key in (*HEADLINE, GROWTH, *(k for k in s if k not in HEADLINE and k != GROWTH)):
        if key in s:
            v = s[key]
            mark = ' <b class="bad">(no steady state: grows with the run length)</b>' if key in grows else ""
            rows.append(
                f"<tr><td>{html.escape(key)}{mark}</td><td>{_fmt(v['mean'])}</td>"
                f"<td>{_fmt(v['ci_low'])} – {_fmt(v['ci_high'])}</td></tr>"
            )
    bad = ' class="bad"'
    load_rows = "".join(
        f"<tr{bad if x.unstable else ''}><td>{html.escape(x.stage)}</td>"
        f"<td>{x.arrivals_per_day:,.1f}</td><td>{_fmt(x.service_min)}</td><td>{x.capacity_per_day:,.0f}</td>"
        f"<td>{x.rho:.2f}</td></tr>"
        for x in run.load.values()
    )
    warnings = "".join(f'<p class="bad">Unstable: {html.escape(describe(x))}.</p>' for x in unstable(run.load))
    if run.yard_note:
        warnings += f'<p class="bad">{html.escape(run.yard_note[0].upper() + run.yard_note[1:])}.</p>'
    imgs = []
    for p in plot_paths:
        data = base64.b64encode(p.read_bytes()).decode()
        imgs.append(f'<h2>{html.escape(p.stem.replace("_", " "))}</h2><img src="data:image/png;base64,{data}">')
    name = html.escape(str(run.scenario.get("name")))
    method = "t" if run.interval == "t" else "skewness-corrected t (Hall)"
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>{name}</title>
<style>body{{font-family:sans-serif;max-width:1000px;margin:auto}}td,th{{padding:2px 8px;text-align:right}}
td:first-child{{text-align:left}}img{{max-width:100%}}.bad{{color:#b00020}}</style></head><body>
<h1>Gate simulation: {name}</h1>
<p>{html.escape(str(run.scenario.get("description", "")))}</p>
<p>seed {run.seed}, {run.replications} replications × {run.days} days, 95 % {method} intervals across replications,
run time {run.wall_s:.1f} s on {html.escape(run.engine)}.</p>
{warnings}
<h2>Offered load</h2>
<p>ρ = trucks per day × mean service time / server-minutes per day (schedule, less expected breakdowns); a daily
cap: trucks offered / trucks accepted per day. At ρ ≥ 1 there is no steady state: the queue grows every day.</p>
<table><tr><th>stage</th><th>trucks/day</th><th>mean service (min)</th><th>capacity/day</th><th>ρ</th></tr>
{load_rows}</table>
<h2>KPIs</h2>
<table><tr><th>KPI</th><th>mean</th><th>95 % CI</th></tr>{"".join(rows)}</table>
{"".join(imgs)}
</body></html>"""
    path = out / "report.html"
    path.write_text(page, encoding="utf-8")
    return path


def write_run(run: RunOutput, out: Path, *, plots: bool = True) -> dict[str, Any]:
    """Write every output of a run into `out`; returns what was written."""
    out.mkdir(parents=True, exist_ok=True)
    summary = summary_dict(run)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False), encoding="utf-8")
    rows = write_event_log(run, out / "events.parquet")
    plot_paths = write_plots(run, out) if plots else []
    report = write_html(run, out, plot_paths)
    return {"summary": out / "summary.json", "event_rows": rows, "plots": plot_paths, "report": report}
