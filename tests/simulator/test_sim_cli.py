"""The `smartgate sim` commands through Typer's runner: outputs written, errors as one line and a non-zero code."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
from typer.testing import CliRunner

from simulator.cli import app

runner = CliRunner()


def test_run_writes_summary_event_log_plots_and_report(tmp_path: Path) -> None:
    out = tmp_path / "out"
    r = runner.invoke(app, ["run", "baseline-2025", "-r", "2", "-d", "1", "-w", "1", "--out", str(out), "--seed", "7"])
    assert r.exit_code == 0, r.output
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["seed"] == 7
    assert summary["replications"] == 2
    assert summary["scenario_echo"]["name"] == "baseline-2025"
    assert {"numpy", "python"} <= summary["versions"].keys()
    assert summary["run_time_s"] >= 0
    k = summary["kpis"]["throughput_per_day"]
    assert k["ci_low"] <= k["mean"] <= k["ci_high"]
    events = pq.read_table(out / "events.parquet")
    assert {"replication", "truck", "class", "stage", "queued_min", "start_min", "end_min"} <= set(events.column_names)
    assert "system" in set(events.column("stage").to_pylist())
    for png in ("queue_length", "wait_percentiles", "utilisation", "throughput", "yard"):
        assert (out / f"{png}.png").stat().st_size > 1000
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "data:image/png;base64," in html
    assert "<script" not in html


def test_compare_reports_paired_differences(tmp_path: Path) -> None:
    r = runner.invoke(
        app,
        ["compare", "baseline-2025", "smart-gate-2030", "-r", "2", "-d", "1", "-w", "1", "--out", str(tmp_path)],
    )
    assert r.exit_code == 0, r.output
    assert "smart-gate-2030 − baseline-2025" in r.output
    doc = json.loads((tmp_path / "compare.json").read_text(encoding="utf-8"))
    assert doc["difference_b_minus_a"]["demand_per_day"]["mean"] > 300  # twice the demand


def test_sweep_runs_each_value(tmp_path: Path) -> None:
    r = runner.invoke(
        app,
        [
            "sweep",
            "scanner-outage",
            "--set",
            "stages.xray.servers=1,2",
            "-r",
            "2",
            "-d",
            "1",
            "-w",
            "1",
            "--kpi",
            "wait_min.xray",
            "--out",
            str(tmp_path),
        ],
    )
    assert r.exit_code == 0, r.output
    doc = json.loads((tmp_path / "sweep.json").read_text(encoding="utf-8"))
    assert [d["variant"] for d in doc] == ["stages.xray.servers=1", "stages.xray.servers=2"]


def test_bad_scenario_is_one_line_on_stderr(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("extends: baseline-2025\nname: bad\nstages:\n  xray: {servers: -1}\n", encoding="utf-8")
    r = runner.invoke(app, ["run", str(bad), "-r", "1", "-d", "1", "--out", str(tmp_path / "o")])
    assert r.exit_code == 2
    assert r.stderr.count("\n") == 1
    assert "stages.xray.servers" in r.stderr
    assert "Traceback" not in r.output


def test_bad_set_path_and_missing_file(tmp_path: Path) -> None:
    r = runner.invoke(app, ["sweep", "baseline-2025", "--set", "stages.laser.servers=1,2", "-r", "1", "-d", "1"])
    assert r.exit_code == 2
    assert "stages.laser.servers" in r.stderr
    r = runner.invoke(app, ["validate", str(tmp_path / "nope.yaml")])
    assert r.exit_code == 2
    assert "cannot read" in r.stderr


def test_validate_and_list() -> None:
    r = runner.invoke(app, ["validate", "baseline-2025", "jan-2021-cap"])
    assert r.exit_code == 0
    assert r.output.count(": ok") == 2
    r = runner.invoke(app, ["list"])
    assert "smart-gate-2030" in r.output


def _one_line_error(r, *needles: str) -> None:  # type: ignore[no-untyped-def]
    assert r.exit_code == 2, r.output
    assert r.stderr.count("\n") == 1, r.stderr
    assert r.stderr.startswith("error: ")
    assert "Traceback" not in r.output
    for n in needles:
        assert n in r.stderr


def test_out_that_is_a_file_or_cannot_be_written_fails_before_running(tmp_path: Path) -> None:
    a_file = tmp_path / "results.txt"
    a_file.write_text("x", encoding="utf-8")
    for cmd in (["run", "baseline-2025"], ["compare", "baseline-2025", "tet-peak"]):
        r = runner.invoke(app, [*cmd, "-r", "50", "-d", "365", "--out", str(a_file)])
        _one_line_error(r, "is a file")
    r = runner.invoke(app, ["sweep", "baseline-2025", "--set", "hours.close_hour=20,22", "--out", str(a_file / "x")])
    _one_line_error(r, "cannot write there")
    r = runner.invoke(app, ["run", "baseline-2025", "-r", "50", "-d", "365", "--out", "/proc/smartgate-sim-out"])
    _one_line_error(r, "cannot write there")


def test_read_only_folder_fails_before_running(tmp_path: Path) -> None:
    import os

    if os.geteuid() == 0:
        import pytest

        pytest.skip("root writes into read-only folders")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    r = runner.invoke(app, ["run", "baseline-2025", "-r", "50", "-d", "365", "--out", str(ro)])
    _one_line_error(r, "cannot write there")


def test_negative_seed_is_refused(tmp_path: Path) -> None:
    for cmd in (["run", "baseline-2025", "--out", str(tmp_path)], ["compare", "baseline-2025", "tet-peak"]):
        r = runner.invoke(app, [*cmd, "-r", "50", "-d", "365", "--seed", "-1"])
        _one_line_error(r, "--seed -1")


def test_misspelt_kpi_names_the_nearest_before_running(tmp_path: Path) -> None:
    args = ["-r", "50", "-d", "365", "--kpi", "wait_min.xary"]
    for cmd in (
        ["run", "baseline-2025", "--out", str(tmp_path / "o")],
        ["compare", "baseline-2025", "tet-peak"],
        ["sweep", "scanner-outage", "--set", "stages.xray.servers=1,2"],
    ):
        r = runner.invoke(app, [*cmd, *args])
        _one_line_error(r, "--kpi wait_min.xary: no such KPI", "wait_min.xray")
    assert not (tmp_path / "o").exists()
    r = runner.invoke(app, ["sweep", "baseline-2025", "--set", "hours.close_hour=20", "--kpi", "nonsense_kpi_zzz"])
    _one_line_error(r, "smartgate sim kpis baseline-2025")
    r = runner.invoke(app, ["kpis", "baseline-2025"])
    assert r.exit_code == 0
    assert "wait_min.xray" in r.stdout.split()
    assert "trucks_left_at_closing.growth_per_day" in r.stdout.split()


def test_kpi_names_are_exactly_what_a_replication_produces() -> None:
    from simulator.gate import compile_gate
    from simulator.runner import kpi_names, run_replication
    from simulator.scenario import load_raw, parse_scenario

    for name in ("baseline-2025", "jan-2021-cap"):
        raw = load_raw(name)
        got = run_replication(raw, 1, 0, 2).kpis
        assert kpi_names(compile_gate(parse_scenario(raw))) == sorted(got)


def test_sweeping_servers_of_a_scheduled_stage_scales_its_schedule(tmp_path: Path) -> None:
    r = runner.invoke(
        app,
        ["sweep", "scanner-outage", "--set", "stages.xray.servers=1,3", "-r", "3", "-d", "3", "-w", "1",
         "--kpi", "wait_min.xray", "--out", str(tmp_path)],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "note: stages.xray.servers=3 scales stages.xray.servers_by_hour" in r.stderr
    doc = json.loads((tmp_path / "sweep.json").read_text(encoding="utf-8"))
    assert doc[0]["scaled"] == []
    assert doc[1]["scaled"]
    assert "[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 3, 3, 3, 3, 3, 0" in doc[1]["scaled"][0]
    one, three = (d["kpis"]["wait_min.xray"]["mean"] for d in doc)
    assert three < 0.85 * one  # more capacity, shorter wait (it rose before: spares only added breakdowns)
    assert doc[1]["difference_vs_first"]["wait_min.xray"]["ci_high"] < 0


def test_an_explicit_schedule_in_the_sweep_is_left_alone() -> None:
    from simulator.scenario import apply_sets, load_raw

    raw = load_raw("scanner-outage")
    sched = [2] * 24
    v, notes = apply_sets(raw, [("stages.xray.servers", 2), ("stages.xray.servers_by_hour", sched)])
    assert v["stages"]["xray"]["servers_by_hour"] == sched
    assert notes == []
    v, notes = apply_sets(raw, [("stages.document_check.servers", 9)])  # no schedule: nothing to scale
    assert "servers_by_hour" not in v["stages"]["document_check"]
    assert notes == []
    v, _ = apply_sets(raw, [("stages.xray.servers", 2)])
    assert v["stages"]["xray"]["servers_by_hour"][13] == 2
    assert v["stages"]["xray"]["servers_by_hour"][7] == 0


def test_precision_rule_adds_replications_until_the_half_width_is_small(tmp_path: Path) -> None:
    from simulator.runner import run_replications
    from simulator.scenario import load_raw

    raw = load_raw("baseline-2025")
    kpi = "throughput_per_day"
    fixed = run_replications(raw, seed=4, replications=3, days=1, workers=1)
    out = run_replications(
        raw, seed=4, replications=3, days=1, workers=1, precision=0.03, max_replications=60, precision_kpis=(kpi,)
    )
    assert out.replications > 3
    assert out.precision is not None
    assert out.precision["met"]
    s = out.summary[kpi]
    assert s["half_width"] <= 0.03 * s["mean"]
    assert [o.kpis for o in out.per_rep[:3]] == [o.kpis for o in fixed.per_rep]  # the same first replications
    capped = run_replications(
        raw, seed=4, replications=3, days=1, workers=1, precision=0.0001, max_replications=5, precision_kpis=(kpi,)
    )
    assert capped.replications == 5
    assert capped.precision is not None
    assert not capped.precision["met"]
    r = runner.invoke(
        app,
        ["run", "baseline-2025", "-r", "3", "-d", "1", "-w", "1", "--precision", "0.03", "--kpi", kpi,
         "--max-replications", "60", "--no-plots", "--out", str(tmp_path)],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "precision ±3.0% of the mean on throughput_per_day: met" in r.stdout
    assert json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))["precision"]["met"] is True
    r = runner.invoke(
        app,
        [
            "run",
            "baseline-2025",
            "-r",
            "3",
            "-d",
            "1",
            "-w",
            "1",
            "--interval",
            "t",
            "--no-plots",
            "--out",
            str(tmp_path),
        ],
    )
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))["interval_method"] == "t"
    _one_line_error(runner.invoke(app, ["run", "baseline-2025", "--interval", "normal"]), "--interval normal")
