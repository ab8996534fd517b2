"""The engineer's reports: a summary in words and units first, HTML reports with plots for compare and sweep,
relative changes with intervals that respect the sign of what they measure, progress lines off a terminal."""

from __future__ import annotations

import io
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from simulator.cli import app
from simulator.narrative import compare_summary, describe, num, pct, run_summary, short_label
from simulator.progress import ProgressLines
from simulator.runner import SIGNED, RunOutput
from simulator.stats import paired_differences, relative_change, relative_changes, summarize

runner = CliRunner()
FAST = ["-r", "3", "-d", "1", "-w", "1"]


def test_relative_change_is_the_ratio_of_means_with_a_delta_method_interval() -> None:
    a = np.array([200.0, 220.0, 205.0, 230.0, 210.0])
    r = relative_change(a, 0.7 * a)  # B is exactly 70 % of A in every replication
    assert r["mean"] == pytest.approx(-0.3)
    assert r["ci_low"] == pytest.approx(-0.3)
    assert r["ci_high"] == pytest.approx(-0.3)
    rng = np.random.default_rng(1)
    b = 0.7 * a + rng.normal(0, 5, a.size)
    r = relative_change(a, b)
    assert r["mean"] == pytest.approx(b.mean() / a.mean() - 1)
    assert r["ci_low"] < r["mean"] < r["ci_high"] < 0
    # A ratio of two non-negative quantities is >= 0: the interval of B / A − 1 never goes below −100 %.
    r = relative_change([1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 4.0])
    assert r["mean"] == 0.0
    assert r["ci_low"] == -1.0
    assert r["ci_high"] > 1.0
    assert math.isnan(relative_change([0.0, 0.0], [1.0, 2.0])["mean"])  # no ratio to a mean of 0
    assert math.isnan(relative_change([5.0], [4.0])["ci_low"])  # one replication: no interval
    per = relative_changes([{"x": 1.0, SIGNED[0]: 1.0}] * 3, [{"x": 2.0, SIGNED[0]: -1.0}] * 3, signed=SIGNED)
    assert list(per) == ["x"]  # a signed KPI (the backlog's growth) has no ratio


def test_figures_in_words_and_units() -> None:
    assert describe("time_in_system_min.all.mean") == ("the mean time in the gate", "min")
    assert describe("time_in_system_min.export_fruit.p95") == (
        "the 95th-percentile time in the gate of fruit exports",
        "min",
    )
    assert describe("wait_min.xray") == ("the mean wait at the X-ray", "min")
    assert describe("utilisation.phyto") == ("the utilisation of the residue test", "%")
    assert describe("throughput_per_day") == ("throughput", "trucks/day")
    assert (num(212.4), num(32.74), num(0.314), num(0.47, "%"), num(-3.2, signed=True)) == (
        "212",
        "32.7",
        "0.31",
        "47",
        "−3.2",
    )
    assert (pct(-0.3), pct(0.045), pct(0.0)) == ("−30 %", "+4.5 %", "0 %")
    assert short_label("stages.xray.servers=2, hours.close_hour=20") == "xray.servers=2, hours.close_hour=20"


def _run(name: str, per_rep: list[dict[str, float]]) -> RunOutput:
    out = RunOutput(scenario={"name": name}, seed=7, replications=len(per_rep), days=10, resources=("xray",),
                    classes=("export_fruit",), per_rep=[], wall_s=0.0, engine="inline")  # fmt: skip
    out.summary = summarize(per_rep, signed=SIGNED, method="hall")
    return out


def test_compare_summary_says_what_changed_and_marks_what_did_not() -> None:
    rng = np.random.default_rng(3)
    n = 20
    tis_a = 212 + rng.normal(0, 8, n)
    tis_b = tis_a * 0.7 + rng.normal(0, 2, n)
    left_a = 6 + rng.normal(0, 2, n).clip(-6)
    left_b = left_a + rng.normal(0, 2, n)  # no real change
    a_reps = [
        {"throughput_per_day": 390.0 + i % 3, "demand_per_day": 392.0, "time_in_system_min.all.mean": tis_a[i],
         "time_in_system_min.all.p95": 2 * tis_a[i], "trucks_left_at_closing": left_a[i],
         "yard_occupancy.max": 40.0, "wait_min.xray": 12.0 + i % 2}
        for i in range(n)
    ]  # fmt: skip
    b_reps = [
        {**a, "time_in_system_min.all.mean": tis_b[i], "time_in_system_min.all.p95": 2 * tis_b[i],
         "trucks_left_at_closing": left_b[i], "wait_min.xray": 1.5 + i % 2}
        for i, a in enumerate(a_reps)
    ]  # fmt: skip
    a, b = _run("baseline", a_reps), _run("smart", b_reps)
    diff = paired_differences(a_reps, b_reps)
    rel = relative_changes(a_reps, b_reps, signed=SIGNED)
    text = " ".join(compare_summary(a, b, diff, rel))
    r = rel["time_in_system_min.all.mean"]
    expected = (
        f"; cuts the mean time in the gate from {num(tis_a.mean())} to {num(tis_b.mean())} min "
        f"({pct(r['mean'])}, 95 % CI {pct(r['ci_low'])} to {pct(r['ci_high'])})"
    )
    assert expected in text, text
    assert re.search(
        r"changes the trucks left at closing from [\d.]+ to [\d.]+ trucks \([^)]*: not significant\)", text
    )
    assert "cuts the mean wait at the X-ray from 12.5 to 2.0 min" in text
    assert "Hall's skewness-corrected t" in text
    assert "paired" in text
    assert text.startswith("smart against baseline (20 paired replications × 10 days, seed 7, the same trucks in")
    assert "smart changes throughput from 391 to 391 trucks a day (0 %" in text


def test_run_opens_with_the_summary_in_words(tmp_path: Path) -> None:
    r = runner.invoke(app, ["run", "baseline-2025", *FAST, "--no-plots", "--out", str(tmp_path)])
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[1].startswith("  baseline-2025 (3 replications × 1 days, seed 20250101) clears ")
    words = " ".join(r.stdout.split())
    assert "trucks a day" in words
    assert "min in the gate on average" in words
    assert "wait_min.xray " not in r.stdout  # headline rows only ...
    r = runner.invoke(app, ["run", "baseline-2025", *FAST, "--no-plots", "--all", "--out", str(tmp_path)])
    assert "wait_min.xray " in r.stdout  # ... every row with --all
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert page.index('class="summary"') < page.index("<table")
    assert "<details>" in page
    assert "Key figures" in page


def test_compare_writes_a_report_with_plots_and_keeps_its_json(tmp_path: Path) -> None:
    r = runner.invoke(
        app, ["compare", "baseline-2025", "smart-gate-2030", *FAST, "--kpi", "wait_min.xray", "--out", str(tmp_path)]
    )
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0].startswith("B − A: smart-gate-2030 − baseline-2025")
    assert lines[1].startswith("  smart-gate-2030 against baseline-2025 (3 paired replications")
    assert "raises throughput from" in " ".join(r.stdout.split())  # wrapped at 110 columns
    assert "utilisation.xray" not in r.stdout
    doc = json.loads((tmp_path / "compare.json").read_text(encoding="utf-8"))
    old = {"a", "b", "seed", "replications", "days", "difference_b_minus_a", "a_kpis", "b_kpis", "unstable_stages",
           "no_steady_state"}  # fmt: skip
    assert old <= doc.keys()
    rel = doc["relative_change_b_over_a"]["throughput_per_day"]
    assert rel["ci_low"] < rel["mean"] < rel["ci_high"]
    thr_a, thr_b = (doc[k]["throughput_per_day"]["mean"] for k in ("a_kpis", "b_kpis"))
    assert rel["mean"] == pytest.approx(thr_b / thr_a - 1)
    assert all(v["ci_low"] is None or v["ci_low"] >= -1 for v in doc["relative_change_b_over_a"].values())
    for side in ("a_kpis", "b_kpis"):  # no interval of a non-negative KPI below 0
        assert all(v["ci_low"] is None or v["ci_low"] >= 0 for k, v in doc[side].items() if k not in SIGNED)
    assert doc["summary_text"][0].startswith("smart-gate-2030 against baseline-2025")
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") == 3
    assert "<script" not in page
    assert "http://" not in page
    assert "https://" not in page
    assert page.index('class="summary"') < page.index("<table") < page.index("<img")
    assert "Hall&#x27;s skewness-corrected t" in page
    assert "Mean wait at the X-ray (min)" in page  # the --kpi, in the key figures
    assert "Mean time in the gate (min)" in page


def test_sweep_writes_a_report_and_summarises_each_variant(tmp_path: Path) -> None:
    r = runner.invoke(
        app,
        ["sweep", "scanner-outage", "--set", "stages.xray.servers=1,2,3", "-r", "3", "-d", "2", "-w", "1",
         "--kpi", "wait_min.xray", "--out", str(tmp_path)],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    summary = " ".join(r.stdout.split("\n  throughput_per_day\n")[0].split())
    assert "stages.xray.servers = 1, 2 and 3" in summary
    assert "The mean wait at the X-ray: " in summary
    assert "at xray.servers=3 (" in summary
    doc = json.loads((tmp_path / "sweep.json").read_text(encoding="utf-8"))
    assert [d["variant"] for d in doc] == [f"stages.xray.servers={i}" for i in (1, 2, 3)]
    assert {"variant", "scaled", "unstable_stages", "no_steady_state", "kpis", "difference_vs_first"} <= doc[1].keys()
    assert doc[0]["relative_change_vs_first"] == {}
    assert doc[2]["relative_change_vs_first"]["wait_min.xray"]["mean"] < 0
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") == 3
    assert "<script" not in page
    assert "http" not in page
    assert page.index('class="summary"') < page.index("<table")
    for png in ("sweep_kpis", "sweep_waits", "sweep_utilisation"):
        assert (tmp_path / f"{png}.png").stat().st_size > 1000


def test_progress_lines_are_bounded_and_quiet_for_short_runs() -> None:
    t = [0.0]
    buf = io.StringIO()
    p = ProgressLines("baseline-2025", stream=buf, clock=lambda: t[0])
    for i in range(1, 31):  # 30 replications in 9 s: nothing to say
        t[0] = 0.3 * i
        p(i, 30)
    assert buf.getvalue() == ""
    buf = io.StringIO()
    t[0] = 0.0
    p = ProgressLines("baseline-2025", stream=buf, clock=lambda: t[0])
    for i in range(1, 101):  # 100 replications in 200 s: a line every 10 s, and the last one
        t[0] = 2.0 * i
        p(i, 100)
    lines = buf.getvalue().splitlines()
    assert len(lines) == 20
    assert lines[0] == "progress: baseline-2025: 5/100 replications, 10 s, about 190 s left"
    assert lines[-1] == "progress: baseline-2025: 100/100 replications, 200 s"
    buf = io.StringIO()
    p = ProgressLines("x", steps=10, stream=buf, clock=lambda: 0.0)  # asked for: every tenth, however fast
    for i in range(1, 1001):
        p(i, 1000)
    assert len(buf.getvalue().splitlines()) == 10


def test_progress_off_a_terminal_only_when_asked_for_in_a_short_run(tmp_path: Path) -> None:
    args = ["run", "baseline-2025", *FAST, "--no-plots", "--out", str(tmp_path)]
    r = runner.invoke(app, args)  # CliRunner's stderr is not a terminal
    assert "progress:" not in r.stderr
    r = runner.invoke(app, [*args, "--progress"])
    assert r.stderr.count("progress: baseline-2025: ") == 3
    assert "3/3 replications" in r.stderr
    r = runner.invoke(app, [*args, "--no-progress"])
    assert "progress:" not in r.stderr


def test_run_summary_speaks_of_the_backlog_when_there_is_no_steady_state() -> None:
    from simulator.runner import run_replications
    from simulator.scenario import load_raw

    out = run_replications(load_raw("jan-2021-cap"), seed=1, replications=2, days=3, workers=1)
    text = " ".join(run_summary(out))
    assert "There is no steady state" in text
    assert "the backlog grows by" in text
    assert "only measures the run length" in text
