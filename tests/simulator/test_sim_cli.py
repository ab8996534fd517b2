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
