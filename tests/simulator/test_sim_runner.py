"""Replications: determinism from one seed, the same numbers on a process pool and on Dask, common random numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from simulator.runner import compare, run_replications
from simulator.scenario import load_raw, set_path
from simulator.stats import hist_percentile, paired_differences, t_interval


def _kpis(out) -> list[dict[str, float]]:  # type: ignore[no-untyped-def]
    return [o.kpis for o in out.per_rep]


def _same(a: list[dict[str, float]], b: list[dict[str, float]]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert x.keys() == y.keys()
        for k in x:
            assert (math.isnan(x[k]) and math.isnan(y[k])) or x[k] == y[k], k


@pytest.fixture(scope="module")
def baseline() -> dict:
    return load_raw("baseline-2025")


@pytest.fixture(scope="module")
def inline_run(baseline: dict):  # type: ignore[no-untyped-def]
    return run_replications(baseline, seed=11, replications=3, days=2, workers=1)


def test_same_seed_same_results_and_other_seed_differs(baseline: dict, inline_run) -> None:  # type: ignore[no-untyped-def]
    again = run_replications(baseline, seed=11, replications=3, days=2, workers=1)
    _same(_kpis(inline_run), _kpis(again))
    other = run_replications(baseline, seed=12, replications=3, days=2, workers=1)
    assert _kpis(other)[0]["demand_per_day"] != _kpis(inline_run)[0]["demand_per_day"]


def test_replications_are_independent_streams(inline_run) -> None:  # type: ignore[no-untyped-def]
    demand = [k["demand_per_day"] for k in _kpis(inline_run)]
    assert len(set(demand)) == len(demand)


def test_process_pool_gives_the_inline_results(baseline: dict, inline_run) -> None:  # type: ignore[no-untyped-def]
    pooled = run_replications(baseline, seed=11, replications=3, days=2, workers=2)
    assert pooled.engine.startswith("process-pool")
    _same(_kpis(inline_run), _kpis(pooled))


def test_dask_cluster_gives_the_process_pool_results(baseline: dict, inline_run) -> None:  # type: ignore[no-untyped-def]
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
    ) as cluster:
        out = run_replications(baseline, seed=11, replications=3, days=2, cluster=cluster.scheduler_address)
    assert out.engine.startswith("dask:")
    _same(_kpis(inline_run), _kpis(out))


def test_common_random_numbers_align_trucks_across_scenarios(baseline: dict, inline_run) -> None:  # type: ignore[no-untyped-def]
    two_scanners = set_path(baseline, "stages.xray.servers", 2)
    b = run_replications(two_scanners, seed=11, replications=3, days=2, workers=1)
    diff = compare(inline_run, b)
    # Same trucks arrive in both scenarios: demand is identical, only the gate's response differs.
    assert diff["demand_per_day"]["mean"] == 0.0
    assert diff["demand_per_day"]["half_width"] == 0.0
    assert diff["wait_min.xray"]["mean"] <= 0.0


def test_summary_has_every_kpi_the_issue_asks_for(inline_run) -> None:  # type: ignore[no-untyped-def]
    s = inline_run.summary
    for key in (
        "throughput_per_day",
        "time_in_system_min.export_fruit.p50",
        "time_in_system_min.import_general.p90",
        "time_in_system_min.all.p95",
        "wait_min.xray",
        "queue_length.document_check",
        "utilisation.weighbridge",
        "yard_occupancy.mean",
        "trucks_left_at_closing",
    ):
        assert key in s, key
        assert {"mean", "ci_low", "ci_high", "n"} <= s[key].keys()
    assert np.asarray(inline_run.hourly["queue_length"]["mean"]).shape == (24, len(inline_run.resources))


def test_t_interval_matches_the_textbook() -> None:
    ci = t_interval([1.0, 2.0, 3.0, 4.0])
    # mean 2.5, s = 1.291, t(0.975, 3) = 3.182 -> half width 2.054
    assert ci["mean"] == 2.5
    assert ci["half_width"] == pytest.approx(3.182446 * 1.290994 / 2, rel=1e-5)
    assert math.isnan(t_interval([1.0])["half_width"])


def test_paired_differences_remove_shared_noise() -> None:
    a = [{"x": v} for v in (10.0, 20.0, 30.0)]
    b = [{"x": v + 1.0} for v in (10.0, 20.0, 30.0)]
    d = paired_differences(a, b)["x"]
    assert d["mean"] == 1.0
    assert d["half_width"] == 0.0


def test_histogram_percentile_is_within_half_a_percent() -> None:
    from simulator.engine import HIST_BINS, hist_bin

    rng = np.random.default_rng(3)
    x = rng.exponential(30.0, 50_000)
    hist = np.bincount([hist_bin(v) for v in x], minlength=HIST_BINS)
    for q in (0.5, 0.9, 0.95):
        assert hist_percentile(hist, q) == pytest.approx(np.quantile(x, q), rel=0.006)
