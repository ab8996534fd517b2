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

from simulator.load import StageLoad, unstable
from simulator.load import describe as describe_load
from simulator.narrative import (
    METHODS,
    UNIT_WORDS,
    compare_keys,
    compare_summary,
    describe,
    num,
    pct,
    run_summary,
    short_label,
    sweep_summary,
)
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


def _band(ax: Any, x: np.ndarray, mean: Any, half: Any, label: str, **style: Any) -> None:
    m = np.asarray(mean, dtype=float)
    h = np.nan_to_num(np.asarray(half, dtype=float))
    (line,) = ax.plot(x, m, label=label, **style)
    ax.fill_between(x, np.maximum(m - h, 0.0), m + h, alpha=0.2, color=line.get_color())  # all plotted are >= 0


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


STYLE = """body{font-family:sans-serif;max-width:1000px;margin:auto}td,th{padding:2px 8px;text-align:right}
td:first-child,th:first-child{text-align:left}img{max-width:100%}.bad{color:#b00020}.ns{color:#666}
.summary{font-size:1.05em;line-height:1.5;background:#f4f6f8;padding:0.5em 1em;border-left:4px solid #2a6099}
table{border-collapse:collapse}tr:nth-child(even){background:#fafafa}"""


def _page(title: str, body: str) -> str:
    """A self-contained page: inline style, images as data: URIs, no script and nothing fetched."""
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{STYLE}</style></head><body>\n{body}\n</body></html>"
    )


def _summary_html(sentences: list[str]) -> str:
    return '<div class="summary">' + "".join(f"<p>{html.escape(x)}</p>" for x in _paragraphs(sentences)) + "</div>"


def _paragraphs(sentences: list[str]) -> list[str]:
    """The findings as one paragraph, the note on intervals (the last sentence) as another."""
    return [" ".join(sentences[:-1]), sentences[-1]] if len(sentences) > 1 else list(sentences)


def _images(plot_paths: list[Path], titles: dict[str, str] | None = None) -> str:
    out = []
    for p in plot_paths:
        data = base64.b64encode(p.read_bytes()).decode()
        title = (titles or {}).get(p.name) or p.stem.replace("_", " ")
        out.append(f'<h2>{html.escape(title)}</h2><img alt="{html.escape(title)}" src="data:image/png;base64,{data}">')
    return "".join(out)


def _ci(v: dict[str, float], unit: str = "") -> str:
    lo, hi = v.get("ci_low"), v.get("ci_high")
    if lo is None or hi is None or not (math.isfinite(lo) and math.isfinite(hi)):
        return "–"
    return f"{num(lo, unit)} – {num(hi, unit)}"


def _label(key: str) -> str:
    label, unit = describe(key)
    label = label.removeprefix("the ")
    return f"{html.escape(label[:1].upper() + label[1:])}{f' ({html.escape(unit)})' if unit else ''}"


def _load_table(loads: list[tuple[str, dict[str, StageLoad]]]) -> str:
    """Offered load per stage, one ρ column per scenario; unstable stages in red."""
    stages = list(dict.fromkeys(s for _, load in loads for s in load))
    head = "".join(f"<th>ρ {html.escape(name)}</th>" for name, _ in loads)
    rows = []
    for st in stages:
        cells = []
        for _, load in loads:
            x = load.get(st)
            cls = ' class="bad"' if x is not None and x.unstable else ""
            cells.append(f"<td{cls}>{'–' if x is None else f'{x.rho:.2f}'}</td>")
        rows.append(f"<tr><td>{html.escape(st)}</td>{''.join(cells)}</tr>")
    return f"<table><tr><th>stage</th>{head}</tr>{''.join(rows)}</table>"


def write_html(run: RunOutput, out: Path, plot_paths: list[Path], extra: tuple[str, ...] = ()) -> Path:
    """One self-contained HTML page: the summary in words, the key figures, the plots, the offered load, and
    every KPI with its interval (folded)."""
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
    key_rows = []
    for key in dict.fromkeys(k for k in (*HEADLINE, *((GROWTH,) if grows else ()), *extra) if k in s):
        _, unit = describe(key)
        mark = ' <b class="bad">(no steady state)</b>' if key in grows else ""
        key_rows.append(
            f"<tr><td>{_label(key)}{mark}</td><td>{num(s[key]['mean'], unit)}</td><td>{_ci(s[key], unit)}</td></tr>"
        )
    bad = ' class="bad"'
    load_rows = "".join(
        f"<tr{bad if x.unstable else ''}><td>{html.escape(x.stage)}</td>"
        f"<td>{x.arrivals_per_day:,.1f}</td><td>{_fmt(x.service_min)}</td><td>{x.capacity_per_day:,.0f}</td>"
        f"<td>{x.rho:.2f}</td></tr>"
        for x in run.load.values()
    )
    warnings = "".join(f'<p class="bad">Unstable: {html.escape(describe_load(x))}.</p>' for x in unstable(run.load))
    if run.yard_note:
        warnings += f'<p class="bad">{html.escape(run.yard_note[0].upper() + run.yard_note[1:])}.</p>'
    name = html.escape(str(run.scenario.get("name")))
    method = METHODS.get(run.interval, run.interval)
    body = f"""<h1>Gate simulation: {name}</h1>
{_summary_html(run_summary(run, extra))}
<p>{html.escape(str(run.scenario.get("description", "")))}</p>
<p>seed {run.seed}, {run.replications} replications × {run.days} days, 95 % {method} intervals across replications
(clipped at 0 for quantities that cannot be negative), run time {run.wall_s:.1f} s on {html.escape(run.engine)}.</p>
{warnings}
<h2>Key figures</h2>
<table><tr><th>KPI</th><th>mean</th><th>95 % CI</th></tr>{"".join(key_rows)}</table>
{_images(plot_paths)}
<h2>Offered load</h2>
<p>ρ = trucks per day × mean service time / server-minutes per day (schedule, less expected breakdowns); a daily
cap: trucks offered / trucks accepted per day. At ρ ≥ 1 there is no steady state: the queue grows every day.</p>
<table><tr><th>stage</th><th>trucks/day</th><th>mean service (min)</th><th>capacity/day</th><th>ρ</th></tr>
{load_rows}</table>
<h2>KPIs</h2>
<details><summary>All {len(rows)} KPIs, mean and 95 % CI (also in summary.json)</summary>
<table><tr><th>KPI</th><th>mean</th><th>95 % CI</th></tr>{"".join(rows)}</table></details>"""
    path = out / "report.html"
    path.write_text(_page(str(run.scenario.get("name")), body), encoding="utf-8")
    return path


def _savefig(fig: Any, path: Path, paths: list[Path]) -> None:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    paths.append(path)


def _yerr(vs: list[dict[str, float]], scale: float = 1.0) -> np.ndarray:
    """Asymmetric error bars from (already clipped) intervals; none where the interval is unknown."""
    m = np.array([v["mean"] for v in vs], dtype=float)
    lo = np.array([v["ci_low"] if v["ci_low"] is not None else np.nan for v in vs], dtype=float)
    hi = np.array([v["ci_high"] if v["ci_high"] is not None else np.nan for v in vs], dtype=float)
    return np.nan_to_num(np.vstack([m - lo, hi - m]) * scale)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def compare_plots(
    a: RunOutput, b: RunOutput, rel: dict[str, dict[str, float]], diff: dict[str, dict[str, float]],
    keys: list[str], out: Path,
) -> list[Path]:  # fmt: skip
    """The comparison's PNGs: relative changes (forest plot), waits and utilisation per stage, and by hour."""
    plt = _pyplot()
    na, nb = str(a.scenario.get("name")), str(b.scenario.get("name"))
    paths: list[Path] = []

    shown = [k for k in keys if k in rel and all(math.isfinite(rel[k].get(x, math.nan)) for x in ("mean",))]
    if shown:
        fig, ax = plt.subplots(figsize=(10, 0.45 * len(shown) + 1.5))
        y = np.arange(len(shown))[::-1]
        for yi, k in zip(y, shown, strict=True):
            r = rel[k]
            m = 100.0 * r["mean"]
            lo, hi = (100.0 * r.get(x, math.nan) for x in ("ci_low", "ci_high"))
            sig = bool(diff[k].get("significant"))
            color = "#2a6099" if sig else "#999999"
            if math.isfinite(lo) and math.isfinite(hi):
                ax.plot([lo, hi], [yi, yi], color=color, lw=2)
            ax.plot([m], [yi], "o", color=color, mfc=color if sig else "white", ms=7)
        ax.axvline(0, color="black", lw=0.8)
        ax.set_yticks(y, [describe(k)[0] + ("" if diff[k].get("significant") else "  (n.s.)") for k in shown])
        if any(abs(100.0 * rel[k]["mean"]) > 300 for k in shown):
            ax.set_xscale("symlog", linthresh=100)
        ax.set(xlabel=f"{nb} / {na} − 1, % (95 % CI; hollow: not significant)", title=f"{nb} against {na}")
        _savefig(fig, out / "compare_changes.png", paths)

    res = [r for r in a.resources if r in b.resources]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 0.4 * len(res) + 1.8))
    y = np.arange(len(res))[::-1]
    for off, run, name in ((0.2, a, na), (-0.2, b, nb)):
        w = [run.summary[f"wait_min.{r}"] for r in res]
        ax1.barh(y + off, [v["mean"] for v in w], 0.4, xerr=_yerr(w), label=name, capsize=2)
        u = [run.summary[f"utilisation.{r}"] for r in res]
        ax2.barh(y + off, [100.0 * v["mean"] for v in u], 0.4, xerr=_yerr(u, 100.0), label=name, capsize=2)
    ax1.set_yticks(y, res, fontsize=8)
    ax1.set_xscale("symlog", linthresh=1)  # waits of a fraction of a minute next to hours
    ax1.set(xlabel="mean wait, min (95 % CI)", title="wait per stage")
    ax2.set_yticks(y, res, fontsize=8)
    ax2.axvline(100, color="red", lw=0.8, ls="--")
    ax2.set(xlabel="utilisation, % (95 % CI)", title="utilisation per resource")
    ax1.legend(fontsize=8)
    _savefig(fig, out / "compare_stages.png", paths)

    hours = np.arange(24)
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(10, 7))
    for run, name, style, color in ((a, na, "--", "C0"), (b, nb, "-", "C1")):
        hq = run.hourly
        wm, wh = _arr(hq["wait_percentiles"]["mean"]), _arr(hq["wait_percentiles"]["half_width"])
        for i, p, ls in ((0, "p50", ":"), (2, "p95", "-")):
            _band(ax1, hours, wm[:, i], wh[:, i], f"{name} {p}", color=color, linestyle=ls)
        _band(ax2, hours, hq["exits"]["mean"], hq["exits"]["half_width"], f"{name}: trucks leaving", color=color)
        ax2.plot(hours, np.asarray(hq["arrivals"]["mean"], dtype=float), style, color="grey", lw=1,
                 label=f"{name}: arrivals")  # fmt: skip
    ax1.set_yscale("symlog", linthresh=10)
    ax1.set(xlabel="hour of arrival (Hanoi)", ylabel="minutes waiting in total", title="wait percentiles, 95 % CI")
    ax1.legend(fontsize=7, ncol=2)
    ax2.set(xlabel="hour of day (Hanoi)", ylabel="trucks per hour", title="throughput vs demand, 95 % CI")
    ax2.legend(fontsize=7, ncol=2)
    _savefig(fig, out / "compare_by_hour.png", paths)
    return paths


def write_compare_html(
    a: RunOutput, b: RunOutput, diff: dict[str, dict[str, float]], rel: dict[str, dict[str, float]],
    out: Path, *, extra: tuple[str, ...] = (), plots: bool = True,
) -> Path:  # fmt: skip
    """The comparison's report.html: summary in words, key figures (A, B, B − A, B / A − 1), plots, offered
    load of both, and every KPI (folded)."""
    na, nb = str(a.scenario.get("name")), str(b.scenario.get("name"))
    keys = compare_keys(a, b, diff, extra)
    keys = list(dict.fromkeys([*HEADLINE, *keys]))
    keys = [k for k in keys if k in diff and k in a.summary and k in b.summary]
    plot_paths = compare_plots(a, b, rel, diff, keys, out) if plots else []
    grows = set(a.no_steady_state) | set(b.no_steady_state)

    def row(k: str, label: str) -> str:
        _, unit = describe(k)
        d, r = diff[k], rel.get(k, {})
        sig = bool(d.get("significant"))
        rr = r.get("mean", math.nan)
        rel_txt = "–" if not math.isfinite(rr) else f"{pct(rr)} [{pct(r['ci_low'])}, {pct(r['ci_high'])}]"
        mark = ' <b class="bad">(no steady state)</b>' if k in grows else ""
        return (
            f"<tr{'' if sig else ' class=ns'}><td>{label}{mark}</td>"
            f"<td>{num(a.summary[k]['mean'], unit)} [{_ci(a.summary[k], unit)}]</td>"
            f"<td>{num(b.summary[k]['mean'], unit)} [{_ci(b.summary[k], unit)}]</td>"
            f"<td>{num(d['mean'], unit, True)} [{_ci_signed(d, unit)}]</td><td>{rel_txt}</td>"
            f"<td>{'yes' if sig else 'no'}</td></tr>"
        )

    head = (
        f"<tr><th>KPI</th><th>A {html.escape(na)}</th><th>B {html.escape(nb)}</th><th>B − A</th>"
        "<th>B / A − 1</th><th>significant</th></tr>"
    )
    key_rows = "".join(row(k, _label(k)) for k in keys)
    all_rows = "".join(row(k, html.escape(k)) for k in diff if k in a.summary and k in b.summary)
    warnings = "".join(
        f'<p class="bad">{html.escape(name)}: unstable: {html.escape(describe_load(x))}.</p>'
        for name, run in ((na, a), (nb, b))
        for x in unstable(run.load)
    )
    body = f"""<h1>Gate simulation: {html.escape(nb)} against {html.escape(na)}</h1>
{_summary_html(compare_summary(a, b, diff, rel, extra))}
<p>seed {a.seed}, {a.replications} paired replications × {a.days} days (common random numbers: the same trucks in
both); figures are mean [95 % CI]; greyed rows: the paired difference is not significant.</p>
{warnings}
<h2>Key figures</h2>
<table>{head}{key_rows}</table>
{_images(plot_paths, COMPARE_TITLES)}
<h2>Offered load</h2>
{_load_table([(na, a.load), (nb, b.load)])}
<h2>KPIs</h2>
<details><summary>All {len(diff)} KPIs (also in compare.json)</summary><table>{head}{all_rows}</table></details>"""
    path = out / "report.html"
    path.write_text(_page(f"{nb} against {na}", body), encoding="utf-8")
    return path


COMPARE_TITLES = {
    "compare_changes.png": "Relative changes, B / A − 1",
    "compare_stages.png": "Waits and utilisation per stage",
    "compare_by_hour.png": "By hour of day",
}
SWEEP_TITLES = {
    "sweep_kpis.png": "Key figures per variant",
    "sweep_waits.png": "Mean wait per stage and variant (min)",
    "sweep_utilisation.png": "Utilisation per resource and variant",
}


def _ci_signed(v: dict[str, float], unit: str) -> str:
    lo, hi = v.get("ci_low"), v.get("ci_high")
    if lo is None or hi is None or not (math.isfinite(lo) and math.isfinite(hi)):
        return "–"
    return f"{num(lo, unit, True)}, {num(hi, unit, True)}"


def sweep_plots(labels: list[str], runs: list[RunOutput], keys: list[str], out: Path) -> list[Path]:
    """The sweep's PNGs: each key figure per variant with its interval; waits and utilisation as heat maps."""
    plt = _pyplot()
    paths: list[Path] = []
    x = np.arange(len(runs))
    cols = min(2, len(keys))
    rows = math.ceil(len(keys) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(11, 3.2 * rows), squeeze=False)
    for ax, k in zip(axes.flat, keys, strict=False):
        label, unit = describe(k)
        scale = 100.0 if unit == "%" else 1.0
        vs = [r.summary[k] for r in runs]
        ax.errorbar(x, [scale * v["mean"] for v in vs], yerr=_yerr(vs, scale), fmt="o-", capsize=3)
        ax.set_xticks(x, [short_label(lab) for lab in labels], rotation=20, ha="right", fontsize=7)
        label = label.removeprefix("the ")
        ax.set_title(f"{label[:1].upper() + label[1:]} ({UNIT_WORDS.get(unit, unit)}), 95 % CI", fontsize=9)
    for ax in list(axes.flat)[len(keys) :]:
        ax.axis("off")
    _savefig(fig, out / "sweep_kpis.png", paths)

    res = list(runs[0].resources)
    for fname, prefix, scale, vmax in (("sweep_waits.png", "wait_min", 1.0, None),
                                       ("sweep_utilisation.png", "utilisation", 100.0, 100.0)):  # fmt: skip
        m = np.array([[scale * r.summary[f"{prefix}.{s}"]["mean"] for s in res] for r in runs], dtype=float)
        fig, ax = plt.subplots(figsize=(11, 0.45 * len(runs) + 2.2))
        im = ax.imshow(m, aspect="auto", cmap="viridis", vmin=0, vmax=vmax)
        ax.set_xticks(range(len(res)), res, rotation=30, ha="right", fontsize=7)
        ax.set_yticks(range(len(runs)), [short_label(lab) for lab in labels], fontsize=7)
        top = np.nanmax(m) if np.isfinite(m).any() else 0.0
        for i in range(m.shape[0]):
            for j in range(m.shape[1]):
                if math.isfinite(m[i, j]):
                    dark = m[i, j] > 0.6 * (vmax or top)
                    text = f"{m[i, j]:.0f}" if m[i, j] >= 10 else f"{m[i, j]:.1f}"
                    ax.text(j, i, text, ha="center", va="center", fontsize=7, color="black" if dark else "white")
        fig.colorbar(im, ax=ax)
        _savefig(fig, out / fname, paths)
    return paths


def write_sweep_html(
    scenario: str, labels: list[str], runs: list[RunOutput], diffs: list[dict[str, dict[str, float]]],
    rels: list[dict[str, dict[str, float]]], out: Path, *, extra: tuple[str, ...] = (), plots: bool = True,
) -> Path:  # fmt: skip
    """The sweep's report.html: summary in words, key figures per variant (change against the first), plots, and
    every KPI of every variant (folded)."""
    grows = set().union(*(r.no_steady_state for r in runs))
    keys = [
        k
        for k in dict.fromkeys((*HEADLINE, *((GROWTH,) if grows else ()), *extra))
        if all(k in r.summary for r in runs)
    ]
    plot_paths = sweep_plots(labels, runs, [k for k in keys if k != "demand_per_day"], out) if plots else []
    head = "<tr><th>KPI</th>" + "".join(f"<th>{html.escape(lab)}</th>" for lab in labels) + "</tr>"

    def cell(i: int, k: str) -> str:
        _, unit = describe(k)
        v = runs[i].summary[k]
        text = f"{num(v['mean'], unit)} [{_ci(v, unit)}]"
        if i:
            d, r = diffs[i][k], rels[i].get(k, {})
            rr = r.get("mean", math.nan)
            ch = pct(rr) if math.isfinite(rr) and unit != "%" else num(d["mean"], unit, True)
            cls = "" if d.get("significant") else ' class="ns"'
            text += f"<br><small{cls}>{ch}{'' if d.get('significant') else ' n.s.'}</small>"
        return f"<td>{text}</td>"

    key_rows = "".join(f"<tr><td>{_label(k)}</td>{''.join(cell(i, k) for i in range(len(runs)))}</tr>" for k in keys)
    every = [k for k in runs[0].summary if all(k in r.summary for r in runs)]
    all_rows = "".join(
        "<tr><td>"
        + html.escape(k)
        + "</td>"
        + "".join(f"<td>{_fmt(r.summary[k]['mean'])}</td>" for r in runs)
        + "</tr>"
        for k in every
    )
    warnings = "".join(
        f'<p class="bad">{html.escape(lab)}: unstable: {html.escape(describe_load(x))}.</p>'
        for lab, r in zip(labels, runs, strict=True)
        for x in unstable(r.load)
    )
    r0 = runs[0]
    body = f"""<h1>Gate simulation: sweep of {html.escape(scenario)}</h1>
{_summary_html(sweep_summary(scenario, labels, runs, diffs, rels, extra))}
<p>seed {r0.seed}, {r0.replications} paired replications × {r0.days} days per variant (common random numbers);
figures are mean [95 % CI], below them the change against the first variant (n.s.: not significant).</p>
{warnings}
<h2>Key figures</h2>
<table>{head}{key_rows}</table>
{_images(plot_paths, SWEEP_TITLES)}
<h2>Offered load</h2>
{_load_table([(lab, r.load) for lab, r in zip(labels, runs, strict=True)])}
<h2>KPIs</h2>
<details><summary>All {len(every)} KPIs, mean per variant (intervals in sweep.json)</summary>
<table>{head}{all_rows}</table></details>"""
    path = out / "report.html"
    path.write_text(_page(f"sweep of {scenario}", body), encoding="utf-8")
    return path


def write_run(run: RunOutput, out: Path, *, plots: bool = True, extra: tuple[str, ...] = ()) -> dict[str, Any]:
    """Write every output of a run into `out`; returns what was written."""
    out.mkdir(parents=True, exist_ok=True)
    summary = summary_dict(run)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False), encoding="utf-8")
    rows = write_event_log(run, out / "events.parquet")
    plot_paths = write_plots(run, out) if plots else []
    report = write_html(run, out, plot_paths, extra)
    return {"summary": out / "summary.json", "event_rows": rows, "plots": plot_paths, "report": report}
