"""Warm-up days: cut from every KPI once (not twice), in `run`, `compare` and `sweep`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from simulator.cli import app
from simulator.runner import run_replications
from simulator.scenario import load_raw, set_path

runner = CliRunner()


@pytest.fixture
def warm_file(tmp_path: Path) -> Path:
    p = tmp_path / "warm.yaml"
    p.write_text("extends: baseline-2025\nname: warm\nwarmup_days: 1\n", encoding="utf-8")
    return p


def test_hourly_figures_cover_the_days_after_warm_up() -> None:
    raw = set_path(load_raw("baseline-2025"), "warmup_days", 1)
    out = run_replications(raw, seed=5, replications=2, days=3, workers=1)
    for rep in out.per_rep:
        k, h = rep.kpis, rep.hourly
        # The hourly profile and the flat KPI describe the same days: their averages agree.
        assert np.sum(h["arrivals"]) == pytest.approx(k["demand_per_day"])
        for ri, name in enumerate(out.resources):
            assert np.mean(h["queue_length"][:, ri]) == pytest.approx(k[f"queue_length.{name}"]), name
        assert np.mean(h["yard_occupancy"]) == pytest.approx(k["yard_occupancy.mean"])


def test_warm_up_changes_what_is_measured_not_the_trucks() -> None:
    base = load_raw("baseline-2025")
    cold = run_replications(base, seed=5, replications=1, days=3, workers=1)
    warm = run_replications(set_path(base, "warmup_days", 1), seed=5, replications=1, days=2, workers=1)
    # Same seed, so days 1–2 of the cold run are the warm run's measured days: the difference is day 0's demand.
    day0 = cold.summary["demand_per_day"]["mean"] * 3 - warm.summary["demand_per_day"]["mean"] * 2
    assert day0 == cold.per_rep[0].hourly["arrivals"].sum() * 3 - warm.per_rep[0].hourly["arrivals"].sum() * 2
    assert 300 < day0 < 500


def test_run_compare_and_sweep_with_warm_up(warm_file: Path, tmp_path: Path) -> None:
    common = ["-r", "2", "-d", "3", "-w", "1"]
    r = runner.invoke(app, ["run", str(warm_file), *common, "--no-plots", "--out", str(tmp_path / "run")])
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "run" / "summary.json").read_text(encoding="utf-8"))["days"] == 3
    r = runner.invoke(app, ["compare", "baseline-2025", str(warm_file), *common])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["sweep", str(warm_file), "--set", "warmup_days=0,1", *common, "--out", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert len(json.loads((tmp_path / "sweep.json").read_text(encoding="utf-8"))) == 2
