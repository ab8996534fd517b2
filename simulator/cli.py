"""`smartgate sim`: run, compare and sweep gate scenarios; validate and list scenario files."""

from __future__ import annotations

import itertools
import json
import sys
import tempfile
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import typer

app = typer.Typer(
    help="Discrete-event simulation of the gate: what a change does before you make it.", no_args_is_help=True
)

ReplicationsOpt = typer.Option(30, "--replications", "-r", min=1, help="Independent replications (whole runs).")
DaysOpt = typer.Option(30, "--days", "-d", min=1, help="Days simulated per replication.")
SeedOpt = typer.Option(None, "--seed", help="Root seed (default: the scenario's `seed`).")
WorkersOpt = typer.Option(None, "--workers", "-w", min=1, help="Local processes (default: all cores; 1 = inline).")
ClusterOpt = typer.Option(None, "--cluster", help="Run on an existing Dask cluster: scheduler address tcp://host:port.")
ProgressOpt = typer.Option(
    None,
    "--progress/--no-progress",
    help="A progress bar on a terminal; elsewhere (a log, CI) a line on stderr every 10 s of a long run, and with "
    "--progress also every tenth of the replications. --no-progress: nothing.",
)
PlotsOpt = typer.Option(True, "--plots/--no-plots", help="Draw the PNG plots (and put them in report.html).")


def _fail(message: str, code: int = 2) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _progress(
    enabled: bool | None, label: str, unit: str = "replications"
) -> tuple[AbstractContextManager[Any], Callable[[int, int], None]]:
    """A rich progress bar on a terminal's stderr, else progress lines (simulator.progress), or nothing."""
    if enabled is False:
        return nullcontext(), lambda done, total: None
    if not sys.stderr.isatty():
        from simulator.progress import ProgressLines

        return nullcontext(), ProgressLines(label, steps=10 if enabled else None, unit=unit)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    bar = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    task: list[Any] = []

    def advance(done: int, total: int) -> None:
        if not task:
            task.append(bar.add_task(label, total=total))
        bar.update(task[0], completed=done)

    return bar, advance


def _run(raw: dict[str, Any], label: str, **kw: Any) -> Any:
    from simulator.runner import run_replications

    ctx, advance = _progress(kw.pop("progress"), label)
    with ctx:
        try:
            return run_replications(raw, progress=advance, **kw)
        except (OSError, TimeoutError) as e:
            _fail(f"cluster {kw.get('cluster')}: {e}", 1)


def _load(path: str) -> dict[str, Any]:
    from simulator.scenario import ScenarioError, load_raw, parse_scenario

    try:
        raw = load_raw(path)
        parse_scenario(raw, path)
    except ScenarioError as e:
        _fail(str(e))
    return raw


def _check_seed(seed: int | None) -> None:
    if seed is not None and seed < 0:
        _fail(f"--seed {seed}: a seed is a non-negative integer")


def _check_out(out: Path | None) -> None:
    """Fail now, not after the run, when --out cannot take the results: a file, or a folder we cannot write."""
    if out is None:
        return
    if out.exists() and not out.is_dir():
        _fail(f"--out {out}: is a file; give a directory to write the results into")
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as e:
        _fail(f"--out {out}: cannot write there: {e.strerror or e}")


def _check_kpis(raw: dict[str, Any], kpis: list[str]) -> None:
    """Every --kpi must be a KPI of the scenario: name the nearest ones, or how to list them."""
    import difflib

    from simulator.gate import compile_gate
    from simulator.runner import kpi_names
    from simulator.scenario import parse_scenario

    names = kpi_names(compile_gate(parse_scenario(raw)))
    for k in kpis:
        if k not in names:
            near = difflib.get_close_matches(k, names, n=3, cutoff=0.6)
            hint = f"did you mean {' or '.join(near)}?" if near else f"see `smartgate sim kpis {raw['name']}`"
            _fail(f"--kpi {k}: no such KPI; {hint}")


def _warn_load(raw: dict[str, Any], label: str = "") -> None:
    """Say on stderr, before running, which stages have no steady state (offered load ρ >= 1)."""
    from simulator.gate import compile_gate
    from simulator.load import describe, offered_load, unstable, yard_note
    from simulator.scenario import parse_scenario

    gate = compile_gate(parse_scenario(raw))
    load = offered_load(gate)
    lines = [describe(x) for x in unstable(load)]
    note = yard_note(gate, load)
    for line in [*lines, *([note] if note else [])]:
        typer.echo(f"warning: {label + ': ' if label else ''}{line}", err=True)


def _row(key: str, v: dict[str, float]) -> str:
    def f(x: float | None) -> str:
        return "     –" if x is None or x != x else f"{x:10.2f}"

    return f"  {key:<42} {f(v['mean'])}  [{f(v['ci_low'])}, {f(v['ci_high'])}]"


KpiOpt = typer.Option([], "--kpi", help="Extra KPIs to print (e.g. wait_min.xray); `smartgate sim kpis` lists them.")
AllOpt = typer.Option(False, "--all", help="Print every KPI after the summary, not only the headline ones.")


def _paragraph(text: str) -> None:
    import textwrap

    typer.echo(textwrap.fill(text, width=110, initial_indent="  ", subsequent_indent="  ", break_on_hyphens=False))


def _say(sentences: list[str]) -> None:
    """The summary in words: the findings as one paragraph (the note on intervals comes after the table)."""
    _paragraph(" ".join(sentences[:-1]))


def _print_kpis(summary: dict[str, dict[str, float]], keys: list[str], grows: list[str]) -> None:
    for key in keys:
        mark = "   (no steady state: grows with --days)" if key in grows else ""
        typer.echo(f"{_row(key, summary[key])}{mark}")


@app.command()
def run(
    scenario: str = typer.Argument(..., help="Scenario YAML file, or the name of a shipped one (baseline-2025)."),
    replications: int = ReplicationsOpt,
    days: int = DaysOpt,
    out: Path = typer.Option(Path("sim-out"), "--out", "-o", help="Output directory."),
    seed: int | None = SeedOpt,
    workers: int | None = WorkersOpt,
    cluster: str | None = ClusterOpt,
    event_log_replications: int = typer.Option(
        1, "--event-log-replications", min=0, help="Replications whose per-truck events go to events.parquet."
    ),
    plots: bool = PlotsOpt,
    kpi: list[str] = KpiOpt,
    all_kpis: bool = AllOpt,
    precision: float | None = typer.Option(
        None,
        "--precision",
        min=0.001,
        max=1.0,
        help="Add replications until each --kpi (default: time in system mean and p95) has a 95 % half-width at "
        "most this share of its mean, e.g. 0.05.",
    ),
    max_replications: int | None = typer.Option(
        None, "--max-replications", min=1, help="With --precision: stop here (default 10 × --replications)."
    ),
    interval: str = typer.Option(
        "hall",
        "--interval",
        help="hall: Hall's skewness-corrected t interval, which holds its 95 % on lopsided KPIs (rare long waits) "
        "where the plain t interval does not; t: the plain t interval (docs/simulator.md).",
    ),
    progress: bool | None = ProgressOpt,
) -> None:
    """Run replications of a scenario and write summary.json, events.parquet, PNG plots and report.html; print a
    summary in words and the headline KPIs."""
    from simulator.narrative import run_summary
    from simulator.report import write_run
    from simulator.runner import GROWTH, HEADLINE

    raw = _load(scenario)
    _check_seed(seed)
    _check_kpis(raw, kpi)
    if interval not in ("t", "hall"):
        _fail(f"--interval {interval}: expected t or hall")
    if max_replications is not None and max_replications < replications:
        _fail(f"--max-replications {max_replications}: below --replications {replications}")
    _check_out(out)
    _warn_load(raw)
    root = raw.get("seed", 20250101) if seed is None else seed
    result = _run(
        raw,
        f"{raw['name']}",
        seed=root,
        replications=replications,
        days=days,
        workers=workers,
        cluster=cluster,
        log_replications=event_log_replications,
        progress=progress,
        precision=precision,
        max_replications=max_replications,
        precision_kpis=tuple(kpi),
        interval=interval,
    )
    try:
        written = write_run(result, out, plots=plots, extra=tuple(kpi))
    except OSError as e:
        _fail(f"--out {out}: cannot write the results: {e.strerror or e}", 1)
    typer.echo(
        f"{raw['name']}: seed {root}, {result.replications} × {days} days in {result.wall_s:.1f} s ({result.engine})"
    )
    if result.precision is not None:
        p = result.precision
        state = "met" if p["met"] else f"NOT met at the maximum of {p['max_replications']} replications"
        typer.echo(f"  precision ±{p['relative_half_width']:.1%} of the mean on {', '.join(p['kpis'])}: {state}")
    sentences = run_summary(result, kpi)
    _say(sentences)
    keys = [k for k in (*HEADLINE, *((GROWTH,) if result.no_steady_state else ()), *kpi) if k in result.summary]
    _print_kpis(result.summary, list(result.summary) if all_kpis else list(dict.fromkeys(keys)), result.no_steady_state)
    _paragraph(sentences[-1])
    typer.echo(f"wrote {written['summary'].parent}/ (summary.json, events.parquet, report.html, plots)")


@app.command()
def compare(
    a: str = typer.Argument(..., help="Scenario A (the reference)."),
    b: str = typer.Argument(..., help="Scenario B (the change)."),
    replications: int = ReplicationsOpt,
    days: int = DaysOpt,
    seed: int | None = SeedOpt,
    workers: int | None = WorkersOpt,
    cluster: str | None = ClusterOpt,
    out: Path | None = typer.Option(None, "--out", "-o", help="Write compare.json, report.html and plots here."),
    all_kpis: bool = AllOpt,
    kpi: list[str] = KpiOpt,
    plots: bool = PlotsOpt,
    progress: bool | None = ProgressOpt,
) -> None:
    """Run A and B on the same seed (common random numbers) and report paired differences B − A with 95 % CIs:
    a summary in words, the headline KPIs, and with --out compare.json and an HTML report with plots."""
    from simulator.narrative import compare_summary
    from simulator.report import write_compare_html
    from simulator.runner import GROWTH, HEADLINE, relative
    from simulator.runner import compare as paired

    raw_a, raw_b = _load(a), _load(b)
    _check_seed(seed)
    _check_kpis(raw_a, kpi)
    _check_kpis(raw_b, kpi)
    _check_out(out)
    _warn_load(raw_a, f"A {raw_a['name']}")
    _warn_load(raw_b, f"B {raw_b['name']}")
    root = raw_a.get("seed", 20250101) if seed is None else seed
    kw = {"seed": root, "replications": replications, "days": days, "workers": workers, "cluster": cluster}
    ra = _run(raw_a, f"A {raw_a['name']}", progress=progress, **kw)
    rb = _run(raw_b, f"B {raw_b['name']}", progress=progress, **kw)
    diff = paired(ra, rb)
    rel = relative(ra, rb)
    grows = sorted(set(ra.no_steady_state) | set(rb.no_steady_state))
    typer.echo(f"B − A: {raw_b['name']} − {raw_a['name']}, seed {root}, {replications} × {days} days, paired")
    sentences = compare_summary(ra, rb, diff, rel, kpi)
    _say(sentences)
    head = (*HEADLINE, *((GROWTH,) if grows else ()), *kpi)
    keys = list(diff) if all_kpis else list(dict.fromkeys(k for k in head if k in diff))
    for key in keys:
        mark = " *" if diff[key].get("significant") else ""
        note = "   (no steady state: grows with --days)" if key in grows else ""
        typer.echo(
            f"{_row(key, diff[key])}{mark}   (A {ra.summary[key]['mean']:.2f}, B {rb.summary[key]['mean']:.2f}){note}"
        )
    typer.echo("  * the 95 % interval of the paired difference excludes 0")
    _paragraph(sentences[-1])
    if out is not None:
        doc = {
            "a": raw_a["name"],
            "b": raw_b["name"],
            "seed": root,
            "replications": replications,
            "days": days,
            "difference_b_minus_a": diff,
            "a_kpis": ra.summary,
            "b_kpis": rb.summary,
            "unstable_stages": {
                "a": [x.stage for x in ra.load.values() if x.unstable],
                "b": [x.stage for x in rb.load.values() if x.unstable],
            },
            "no_steady_state": grows,
            "relative_change_b_over_a": rel,
            "interval_method": {"kpis": ra.interval, "difference": "t", "relative_change": "delta-method t"},
            "summary_text": sentences,
        }
        _write_json(out / "compare.json", doc, echo=False)
        _write_report(lambda: write_compare_html(ra, rb, diff, rel, out, extra=tuple(kpi), plots=plots), out, "compare")


def _write_json(path: Path, doc: Any, echo: bool = True) -> None:
    from simulator.report import _clean

    try:
        path.write_text(json.dumps(_clean(doc), indent=2, ensure_ascii=False), encoding="utf-8")
    except OSError as e:
        _fail(f"cannot write {path}: {e.strerror or e}", 1)
    if echo:
        typer.echo(f"wrote {path}")


def _write_report(write: Callable[[], Path], out: Path, what: str) -> None:
    try:
        write()
    except OSError as e:
        _fail(f"--out {out}: cannot write the report: {e.strerror or e}", 1)
    typer.echo(f"wrote {out}/ ({what}.json, report.html{', plots' if any(out.glob(f'{what}_*.png')) else ''})")


@app.command()
def sweep(
    scenario: str = typer.Argument(..., help="Base scenario."),
    set_: list[str] = typer.Option(
        ..., "--set", help="PATH=V1,V2,... (repeat for a grid), e.g. stages.xray.servers=1,2,3"
    ),
    replications: int = ReplicationsOpt,
    days: int = DaysOpt,
    seed: int | None = SeedOpt,
    workers: int | None = WorkersOpt,
    cluster: str | None = ClusterOpt,
    out: Path | None = typer.Option(None, "--out", "-o", help="Write sweep.json, report.html and plots here."),
    kpi: list[str] = KpiOpt,
    all_kpis: bool = AllOpt,
    plots: bool = PlotsOpt,
    progress: bool | None = ProgressOpt,
) -> None:
    """Run a grid of variants of a scenario on one seed; each row shows KPIs and the paired change from the first.

    Sweeping `stages.S.servers` of a stage with an hourly schedule (`servers_by_hour`) scales the schedule with it,
    so that the sweep changes capacity; sweep `stages.S.servers_by_hour` to set the schedule yourself.
    Prints a summary in words, then each headline KPI per variant; --out adds sweep.json and an HTML report."""
    from simulator.narrative import sweep_summary
    from simulator.report import write_sweep_html
    from simulator.runner import GROWTH, HEADLINE, relative
    from simulator.runner import compare as paired
    from simulator.scenario import ScenarioError, apply_sets, parse_scenario, parse_set

    raw = _load(scenario)
    _check_seed(seed)
    _check_kpis(raw, kpi)
    root = raw.get("seed", 20250101) if seed is None else seed
    try:
        axes = [parse_set(s) for s in set_]
        variants = []
        notes: list[str] = []
        for combo in itertools.product(*(vals for _, vals in axes)):
            sets = [(path, value) for (path, _), value in zip(axes, combo, strict=True)]
            v, scaled = apply_sets(raw, sets)
            label = ", ".join(f"{p}={val}" for p, val in sets)
            parse_scenario(v, label)
            variants.append((label, v, scaled))
            notes += [n for n in scaled if n not in notes]
    except ScenarioError as e:
        _fail(str(e))
    _check_out(out)
    for n in notes:
        typer.echo(f"note: {n} (a capacity sweep changes the staffing schedule too)", err=True)
    for label, v, _ in variants:
        _warn_load(v, label)
    kw = {"seed": root, "replications": replications, "days": days, "workers": workers, "cluster": cluster}
    runs = [(label, _run(v, label, progress=progress, **kw), scaled) for label, v, scaled in variants]
    labels = [label for label, _, _ in runs]
    outs = [r for _, r, _ in runs]
    diffs = [paired(outs[0], r) if i else {} for i, r in enumerate(outs)]
    rels = [relative(outs[0], r) if i else {} for i, r in enumerate(outs)]
    typer.echo(f"sweep of {raw['name']}: {len(runs)} variants, seed {root}, {replications} × {days} days each, paired")
    sentences = sweep_summary(raw["name"], labels, outs, diffs, rels, kpi)
    _say(sentences)
    grows = sorted(set().union(*(r.no_steady_state for r in outs)))
    head = (*HEADLINE, *((GROWTH,) if grows else ()), *kpi)
    keys = [
        k for k in (list(outs[0].summary) if all_kpis else dict.fromkeys(head)) if all(k in r.summary for r in outs)
    ]
    for key in keys:
        typer.echo(f"  {key}{'   (no steady state: grows with --days)' if key in grows else ''}")
        for i, (label, r) in enumerate(zip(labels, outs, strict=True)):
            d = diffs[i].get(key)
            extra = (
                f"   Δ vs first {d['mean']:+.2f} ± {d['half_width']:.2f}{' *' if d.get('significant') else ''}"
                if d
                else ""
            )
            typer.echo(f"{_row('  ' + label, r.summary[key])}{extra}")
    typer.echo("  * the 95 % interval of the paired difference excludes 0")
    _paragraph(sentences[-1])
    doc = [
        {
            "variant": label,
            "scaled": scaled,
            "unstable_stages": [x.stage for x in r.load.values() if x.unstable],
            "no_steady_state": r.no_steady_state,
            "kpis": r.summary,
            "difference_vs_first": diffs[i],
            "relative_change_vs_first": rels[i],
        }
        for i, (label, r, scaled) in enumerate(runs)
    ]
    if out is not None:
        _write_json(out / "sweep.json", doc, echo=False)
        _write_report(
            lambda: write_sweep_html(raw["name"], labels, outs, diffs, rels, out, extra=tuple(kpi), plots=plots),
            out,
            "sweep",
        )


@app.command()
def staff(
    scenario: str = typer.Argument(..., help="Scenario YAML file, or the name of a shipped one (tet-peak)."),
    target: str = typer.Option(
        ..., "--target", help='KPI<=MINUTES: a wait at a rostered stage, e.g. "wait_min.document_check.p95<=30".'
    ),
    hours_budget: int = typer.Option(..., "--hours-budget", min=1, help="Officer-hours a day the stage may use."),
    replications: int = typer.Option(10, "--replications", "-r", min=2, help="Replications per roster simulated."),
    days: int = typer.Option(10, "--days", "-d", min=1, help="Days per replication."),
    seed: int | None = SeedOpt,
    workers: int | None = WorkersOpt,
    out: Path | None = typer.Option(None, "--out", "-o", help="Write staff.json and report.html (heat maps) here."),
    max_evaluations: int = typer.Option(60, "--max-evaluations", min=2, help="Rosters simulated at most."),
    interval: str = typer.Option("t", "--interval", help="t (default) or hall: the interval the target is tested on."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Print every roster simulated (stderr)."),
) -> None:
    """The roster (officers per hour) of one stage that meets a wait target with 95 % confidence at least cost:
    offered-load staffing per hour, an integer programme, then simulation (docs/simulator.md)."""
    from simulator import staff as st
    from simulator.gate import compile_gate
    from simulator.runner import kpi_names
    from simulator.scenario import parse_scenario

    raw = _load(scenario)
    _check_seed(seed)
    if interval not in ("t", "hall"):
        _fail(f"--interval {interval}: expected t or hall")
    gate = compile_gate(parse_scenario(raw))
    try:
        tgt = st.parse_target(target, kpi_names(gate))
    except st.StaffError as e:
        _fail(str(e))
    _check_out(out)
    _warn_load(raw)
    root = raw.get("seed", 20250101) if seed is None else seed
    say = (lambda m: typer.echo(f"  {m}", err=True)) if verbose else None
    try:
        r = st.staff(raw, tgt, budget=hours_budget, seed=root, replications=replications, days=days,
                     workers=workers, interval=interval, max_evaluations=max_evaluations, progress=say)  # fmt: skip
    except st.StaffError as e:
        _fail(str(e))
    typer.echo(
        f"{raw['name']}: staffing {tgt.stage} for {tgt.kpi} <= {tgt.value:g} min; seed {root}, {replications} × "
        f"{days} days per roster, {r.evaluations} roster{'s' if r.evaluations != 1 else ''} simulated "
        f"(offered-load start: {f'{sum(r.start)} h' if r.start else 'none'})"
    )
    typer.echo(f"  {'roster':<16} {'officer-hours/day':>17}  {tgt.kpi} mean [95 % CI]")
    other = ("recommended", r.best) if r.met else ("closest tried", None if r.closest is r.current else r.closest)
    shown = [("current", r.current), other]
    for label, ev in shown:
        if ev is None:
            continue
        k = ev.kpi
        ok = "meets the target" if tgt.met(k["ci_high"]) else "misses the target"
        typer.echo(
            f"  {label:<16} {ev.officer_hours:>17}  {k['mean']:.2f} [{k['ci_low']:.2f}, {k['ci_high']:.2f}]  {ok}"
        )
    typer.echo(f"  {'hour':<16} " + " ".join(f"{h:02d}" for h in range(24)))
    for label, ev in shown:
        if ev is not None:
            typer.echo(f"  {label:<16} " + " ".join(f"{x:>2}" if x else " ." for x in ev.roster))
    rosters: dict[str, dict[str, list[int]]] = {}
    for label, ev in shown:
        if ev is not None:
            rosters[f"{label} roster"] = {
                s_: (list(ev.roster) if s_ == tgt.stage else st.current_roster(gate, s_))
                for s_ in st.STAFFABLE
                if s_ in gate.resource_index
            }
    if out is not None:
        try:
            st.write_report(r, rosters, out)
        except OSError as e:
            _fail(f"--out {out}: cannot write the results: {e.strerror or e}", 1)
        typer.echo(f"wrote {out}/ (staff.json, report.html)")
    if not r.met:
        _fail(f"{tgt.kpi} <= {tgt.value:g} cannot be met with confidence: {r.reason}", 1)


@app.command()
def kpis(scenario: str = typer.Argument(..., help="Scenario YAML file or shipped name.")) -> None:
    """List the KPIs a scenario produces (the names --kpi accepts)."""
    from simulator.gate import compile_gate
    from simulator.runner import kpi_names
    from simulator.scenario import parse_scenario

    for name in kpi_names(compile_gate(parse_scenario(_load(scenario)))):
        typer.echo(name)


@app.command()
def validate(scenarios: list[str] = typer.Argument(..., help="Scenario files or shipped names.")) -> None:
    """Check scenario files; list values that cite no source and are not marked `assumed`."""
    from simulator.scenario import unsourced_paths

    for s in scenarios:
        raw = _load(s)
        missing = unsourced_paths(raw)
        typer.echo(f"{s}: ok" + (f"; no source for: {', '.join(missing)}" if missing else ""))


@app.command("list")
def list_scenarios() -> None:
    """List the scenarios shipped with the simulator."""
    from simulator.scenario import load_raw, shipped_scenarios

    for p in shipped_scenarios():
        raw = load_raw(p)
        typer.echo(f"{p.stem:<18} {raw.get('description', '')}")


@app.command()
def twin(
    scenario: str = typer.Argument(..., help="Scenario YAML file, or the name of a shipped one (baseline-2025)."),
    url: str = typer.Option("http://127.0.0.1:8000", "--url", help="The platform's base URL."),
    trucks: int = typer.Option(40, "--trucks", "-n", min=1, max=100_000, help="Loaded trucks to play."),
    speedup: float = typer.Option(600.0, "--speedup", min=1.0, help="Scenario seconds per wall-clock second."),
    concurrency: int = typer.Option(16, "--concurrency", min=1, max=256, help="Requests in flight at most."),
    review_minutes: float = typer.Option(20.0, "--review-minutes", min=0.0, help="An officer's review, scenario min."),
    keys_file: Path | None = typer.Option(
        None,
        "--keys-file",
        help="A `var/demo.env`-style file with TRADER_KEY, OFFICER_KEY and TREASURY_KEY (or set "
        "SMARTGATE_TWIN_TRADER_KEY, SMARTGATE_TWIN_OFFICER_KEY and SMARTGATE_TWIN_TREASURY_KEY).",
    ),
    seed: int | None = SeedOpt,
    out: Path | None = typer.Option(None, "--out", "-o", help="Directory for twin.json."),
    progress: bool | None = ProgressOpt,
) -> None:
    """Twin mode: play the scenario's loaded trucks, compressed in time, through the real platform's API (file,
    officer review of yellow and red, payment confirmed by the treasury) and report the channel split the platform
    gave and its latency."""
    import os

    from simulator.scenario import parse_scenario
    from simulator.twin import TwinError, TwinSettings, plan, run

    raw = _load(scenario)
    keys = {name: os.environ.get(f"SMARTGATE_TWIN_{name}_KEY", "") for name in ("TRADER", "OFFICER", "TREASURY")}
    if keys_file is not None:  # an explicit file wins over the environment
        try:
            text = keys_file.read_text(encoding="utf-8")
        except OSError as e:
            _fail(f"cannot read {keys_file}: {e.strerror}")
        for line in text.splitlines():
            name, _, value = line.strip().removeprefix("export ").partition("=")
            if name.strip() in ("TRADER_KEY", "OFFICER_KEY", "TREASURY_KEY"):
                found = value.split("#", 1)[0].strip().strip("'\"")
                keys[name.strip()[:-4]] = found or keys[name.strip()[:-4]]
    missing = [f"SMARTGATE_TWIN_{n}_KEY" for n, v in keys.items() if not v]
    if missing:
        _fail(f"no API key: set {' and '.join(missing)}, or pass --keys-file var/demo.env")
    root = raw.get("seed", 20250101) if seed is None else seed
    settings = TwinSettings(url=url.rstrip("/"), trader_key=keys["TRADER"], officer_key=keys["OFFICER"],
                            treasury_key=keys["TREASURY"], speedup=speedup, concurrency=concurrency,
                            review_minutes=review_minutes)  # fmt: skip
    try:
        trucks_plan = plan(parse_scenario(raw, scenario), trucks=trucks, seed=root)
        ctx, advance = _progress(progress, f"twin {raw['name']}", unit="trucks")
        with ctx:
            result = run(trucks_plan, settings, progress=advance)
    except TwinError as e:
        _fail(str(e), 3)
    typer.echo(
        f"{raw['name']} twin: {result['trucks']} trucks over {result['scenario_span_min']} scenario min in "
        f"{result['wall_s']} s; filed {result['filed']}, released {result['released']}, errors {len(result['errors'])}"
    )
    split = result["channel_split"]
    assumed = raw.get("channels", {})
    typer.echo(
        "  channels (platform / scenario assumes): "
        + ", ".join(
            f"{c} {split[c]:.1%} / {assumed.get(c, 0):.1%}" if split[c] is not None else f"{c} –"
            for c in ("green", "yellow", "red")
        )
    )
    for step, v in result["latency_ms"].items():
        typer.echo(f"  {step:<8} n {v['n']:>5}  p50 {v['p50']:>7} ms  p95 {v['p95']:>7} ms  max {v['max']:>7} ms")
    for err in result["errors"][:5]:
        typer.echo(f"  error, truck {err['truck']} ({err['class']}): {err['error']}")
    if out is not None:
        try:
            out.mkdir(parents=True, exist_ok=True)
            (out / "twin.json").write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
        except OSError as e:
            _fail(f"cannot write {out / 'twin.json'}: {e.strerror}", 1)
        typer.echo(f"wrote {out / 'twin.json'}")
    if result["errors"]:
        raise typer.Exit(1)
