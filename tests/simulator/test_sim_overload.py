"""Offered load per stage: it agrees with the engine's utilisation, and overload is said, not averaged away."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from simulator.cli import app
from simulator.gate import compile_gate
from simulator.load import offered_load, unstable
from simulator.runner import GROWTH, growth_per_day, run_replications
from simulator.scenario import load_raw, parse_scenario, set_path
from simulator.stats import summarize

runner = CliRunner()


def _load(raw: dict):  # type: ignore[no-untyped-def]
    return offered_load(compile_gate(parse_scenario(raw)))


def test_offered_load_is_the_utilisation_the_engine_measures() -> None:
    out = run_replications(load_raw("baseline-2025"), seed=3, replications=4, days=5, workers=1)
    assert not unstable(out.load)
    assert out.no_steady_state == []
    for name, x in out.load.items():
        assert 0 < x.rho < 1, name
        # Stable stages serve all the work offered: busy / available server time is ρ.
        assert out.summary[f"utilisation.{name}"]["mean"] == pytest.approx(x.rho, rel=0.06), name
    # A steady state: the backlog at closing does not grow.
    g = out.summary[GROWTH]
    assert abs(g["mean"]) < 3


def test_the_cap_and_the_lab_of_jan_2021_are_unstable_and_the_queue_growth_is_reported() -> None:
    out = run_replications(load_raw("jan-2021-cap"), seed=3, replications=3, days=6, workers=1)
    bad = {x.stage: x for x in unstable(out.load)}
    # 660 fruit exports a day also overload the two outbound entry lanes (4 min each, 15 h: 450 a day); the stages
    # after the cap see only the 125 it lets through.
    assert set(bad) == {"acceptance_cap.fruit", "phyto", "entry_gate.outbound"}
    assert bad["acceptance_cap.fruit"].rho == pytest.approx(660 / 125)
    assert bad["acceptance_cap.fruit"].excess_per_day == pytest.approx(535)
    assert out.yard_note is not None
    assert "yard (150 trucks)" in out.yard_note
    # The gate falls behind by more than the cap alone (the full yard blocks every class): the growth says so.
    assert out.summary[GROWTH]["ci_low"] > 535
    assert {"time_in_system_min.export_fruit.mean", "time_in_system_min.all.p95", "wait_min.phyto"} <= set(
        out.no_steady_state
    )
    assert "time_in_system_min.import_general.mean" not in out.no_steady_state


def test_demand_times_four_makes_the_scanner_unstable() -> None:
    raw = set_path(load_raw("baseline-2025"), "demand_multiplier", 4)
    load = _load(raw)
    assert load["xray"].rho == pytest.approx(4 * _load(load_raw("baseline-2025"))["xray"].rho)
    assert "xray" in {x.stage for x in unstable(load)}


def test_spare_scanners_raise_availability_not_staffed_capacity() -> None:
    raw = load_raw("scanner-outage")
    one, three = _load(raw)["xray"], _load(set_path(raw, "stages.xray.servers", 3))["xray"]
    # Six staffed hours a day at most, whatever the spares; spares only cover breakdowns.
    assert one.capacity_per_day < three.capacity_per_day <= 6 * 60
    assert three.capacity_per_day == pytest.approx(360, rel=1e-3)


def test_cli_says_overload_on_stderr_in_summary_and_report(tmp_path: Path) -> None:
    r = runner.invoke(
        app, ["run", "jan-2021-cap", "-r", "2", "-d", "3", "-w", "1", "--no-plots", "--out", str(tmp_path)]
    )
    assert r.exit_code == 0, r.output
    assert "warning: acceptance_cap.fruit is overloaded: offered load ρ = 5.28" in r.stderr
    assert "warning: phyto is overloaded" in r.stderr
    assert "Traceback" not in r.output
    assert GROWTH in r.stdout
    assert "no steady state" in r.stdout
    summary = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))
    assert summary["unstable_stages"] == ["acceptance_cap.fruit", "phyto", "entry_gate.outbound"]
    assert summary["offered_load"]["acceptance_cap.fruit"]["unstable"] is True
    assert summary["offered_load"]["xray"]["unstable"] is False
    assert "time_in_system_min.all.mean" in summary["no_steady_state"]
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "Unstable: acceptance_cap.fruit is overloaded" in html
    assert "Offered load" in html


def test_a_stable_run_warns_nothing(tmp_path: Path) -> None:
    r = runner.invoke(
        app, ["run", "baseline-2025", "-r", "2", "-d", "1", "-w", "1", "--no-plots", "--out", str(tmp_path)]
    )
    assert r.exit_code == 0, r.output
    assert "warning" not in r.stderr
    summary = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))
    assert summary["unstable_stages"] == []


def test_growth_is_the_least_squares_slope() -> None:
    import numpy as np

    assert growth_per_day(np.array([10.0, 20.0, 30.0, 40.0])) == pytest.approx(10.0)
    assert growth_per_day(np.array([5.0, 5.0])) == 0.0
    assert math.isnan(growth_per_day(np.array([3.0])))


def test_intervals_of_non_negative_kpis_stay_above_zero_and_signed_ones_do_not() -> None:
    per_rep = [{"wait": v, "growth": v} for v in (0.0, 0.0, 0.0, 9.0)]
    s = summarize(per_rep, signed=("growth",))
    assert s["wait"]["ci_low"] == 0.0
    assert s["wait"]["ci_high"] == pytest.approx(s["wait"]["mean"] + s["wait"]["half_width"])
    assert s["growth"]["ci_low"] < 0


def test_hall_interval_reaches_up_for_right_skewed_replications() -> None:
    import numpy as np

    from simulator.stats import hall_interval, t_interval

    x = np.array([2.0, 3.0, 2.5, 4.0, 3.0, 2.0, 60.0, 3.5, 2.5, 3.0])  # one replication saw a breakdown
    t, h = t_interval(x), hall_interval(x)
    assert h["mean"] == t["mean"]
    assert h["ci_high"] > t["ci_high"]
    assert h["ci_high"] - h["mean"] > h["mean"] - h["ci_low"]  # lopsided like the data
    sym = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    assert hall_interval(sym) == t_interval(sym)  # no skew: the t interval
    assert hall_interval([1.0, 2.0]) == t_interval([1.0, 2.0])


def test_hall_interval_covers_a_lopsided_kpi_where_t_does_not() -> None:
    """Lognormal replications (skewness ~6): at n = 30 the t interval covers 85 %, Hall's 91 %."""
    import numpy as np

    from simulator.stats import hall_interval, t_interval

    rng = np.random.default_rng(11)
    sigma = 1.2
    true_mean = float(np.exp(sigma**2 / 2))
    hits_t = hits_h = 0
    trials = 2000
    for _ in range(trials):
        x = rng.lognormal(0.0, sigma, 30)
        t, h = t_interval(x), hall_interval(x)
        hits_t += t["ci_low"] <= true_mean <= t["ci_high"]
        hits_h += h["ci_low"] <= true_mean <= h["ci_high"]
    assert hits_t / trials < 0.88  # measured 84.9 %
    assert hits_h / trials > 0.90  # measured 91.4 %


def test_jan_2021_cap_reproduces_the_reported_congestion() -> None:
    """December 2021 at Lào Cai: ~1,000 trucks a day arrived, 300–400 were cleared, the queue grew by 600–700."""
    out = run_replications(load_raw("jan-2021-cap"), seed=11, replications=4, days=8, workers=1)
    k = out.summary
    assert 950 <= k["demand_per_day"]["mean"] <= 1050
    assert 300 <= k["throughput_per_day"]["mean"] <= 400
    assert 600 <= k[GROWTH]["ci_low"]
    assert k[GROWTH]["ci_high"] <= 700
