"""`smartgate sim staff`: the roster it finds on an M_t/M/s_t gate is the one queueing theory gives, and bad input
is one line and a non-zero exit code."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from simulator import staff as st
from simulator.cli import app
from simulator.gate import compile_gate
from simulator.runner import kpi_names
from simulator.scenario import parse_scenario

runner = CliRunner()

# Trucks per hour (relative) at a gate open 07:00–19:00: two peaks, so the roster must follow the load.
PROFILE = [0] * 7 + [2, 4, 6, 6, 4, 2, 2, 4, 6, 4, 2, 2] + [0] * 5
PER_DAY, SERVICE = 1200.0, 2.0


def mmst() -> dict[str, Any]:
    """An M_t/M/s_t queue at the document check: Poisson arrivals by hour, exponential 2-min checks, nothing else
    that queues (60 entry lanes with 0.01-min fixed service, no X-ray, inspection or weighbridge visits)."""
    svc = {"green": SERVICE, "yellow": SERVICE, "red": SERVICE}
    return {
        "name": "mmst",
        "seed": 5,
        "hours": {"open_hour": 7, "close_hour": 19},
        "lanes": {"inbound": 60, "outbound": 1},
        "channels": {"green": 1, "yellow": 0, "red": 0},
        "profiles": {"p": PROFILE},
        "classes": {
            "imp": {
                "direction": "import",
                "loaded": False,
                "commodity": "general",
                "trucks_per_day": PER_DAY,
                "profile": "p",
            },
        },
        "stages": {
            "entry_gate": {"manual_service_min": 0.01, "ocr_service_min": 0.01, "distribution": "fixed"},
            "document_check": {"servers": 12, "service_min_by_channel": svc},
            "weighbridge": {"servers": 1, "service_min": 1.0},
            "xray": {"servers": 1, "service_min": 1.0, "visit_fraction": 0.0},
            "inspection": {"servers": 1, "service_min": 1.0, "visit_fraction": 0.0},
            "exit_gate": {"service_min": 0.01, "distribution": "fixed"},
        },
    }


def _erlang_c(s: int, a: float) -> float:
    """Erlang C from its closed form (the module uses the Erlang B recursion)."""
    top = a**s / math.factorial(s) * s / (s - a)
    return top / (sum(a**k / math.factorial(k) for k in range(s)) + top)


def exact_optimum(t_max: float, q: float) -> int:
    """The fewest officer-hours with at most a share 1 − q of the trucks waiting longer than t_max.

    Each hour is a stationary M/M/s (2-min service is short against an hour): P(W > t) = C(s, a) e^{−(s − a) t / E[S]};
    the trucks still queued at 19:00 (Lq = C a / (s − a)) wait for the morning. Dynamic programming over the hours
    gives, for every total K, the least number of late trucks; the answer is the least K within the limit.
    """
    lam = [PER_DAY * w / sum(PROFILE) / 60.0 for w in PROFILE]
    hours = [h for h in range(24) if lam[h] > 0]

    def late(h: int, s: int) -> float:
        a = lam[h] * SERVICE
        if s <= a:
            return math.inf
        c = _erlang_c(s, a)
        left = c * a / (s - a) if h == hours[-1] else 0.0
        return 60.0 * lam[h] * c * math.exp(-(s - a) * t_max / SERVICE) + left

    best = {0: 0.0}
    for h in hours:
        nxt: dict[int, float] = {}
        for k, v in best.items():
            for s in range(1, 30):
                x = v + late(h, s)
                if x < nxt.get(k + s, math.inf):
                    nxt[k + s] = x
        best = nxt
    return min(k for k, v in best.items() if v <= (1.0 - q) * PER_DAY)


def _target(raw: dict[str, Any], text: str) -> st.Target:
    return st.parse_target(text, kpi_names(compile_gate(parse_scenario(raw))))


def test_erlang_c_matches_the_closed_form() -> None:
    for s, a in ((1, 0.5), (3, 2.4), (7, 6.65), (12, 3.0)):
        assert st.erlang_c(s, a) == pytest.approx(_erlang_c(s, a), rel=1e-12)


def test_the_integer_programme_finds_the_optimum_of_the_offered_load_model() -> None:
    raw = mmst()
    gate = compile_gate(parse_scenario(raw))
    model = st.stage_model(gate, "document_check", 1)
    # The lagged offered load of a 2-min service is the arrival rate × 2 min, hour by hour.
    for h in range(8, 19):
        assert model.offered_load[h] == pytest.approx(PER_DAY * PROFILE[h] / sum(PROFILE) / 60 * SERVICE, rel=0.03)
    lo, hi = st.bounds(gate, model)
    for t_max in (2.0, 5.0):
        target = _target(raw, f"wait_min.document_check.p95<={t_max}")
        roster = st.solve_roster(model, target, lo, hi, None)
        assert roster is not None
        # The MILP's answer is the optimum of its own model (the same dynamic programme on the model's numbers) ...
        best = {0: 0.0}
        for h in range(24):
            nxt: dict[int, float] = {}
            for k, v in best.items():
                for s in range(lo[h], hi[h] + 1):
                    x = v + model.arrivals_per_hour[h] * model.delay(s, h, target)
                    x += model.left_queued(s, h, target, 720.0 if h == 18 else None)
                    nxt[k + s] = min(x, nxt.get(k + s, math.inf))
            best = nxt
        assert sum(roster) == min(k for k, v in best.items() if v <= 0.05 * model.arrivals_per_hour.sum())
        # ... and that model (lagged offered load) is within an officer-hour of the piecewise-stationary theory.
        assert abs(sum(roster) - exact_optimum(t_max, 0.95)) <= 1, t_max


def test_simulation_verified_roster_is_within_one_officer_hour_of_the_known_optimum() -> None:
    raw = mmst()
    target = _target(raw, "wait_min.document_check.p95<=5")
    want = exact_optimum(5.0, 0.95)
    r = st.staff(raw, target, budget=200, seed=3, replications=5, days=4, workers=1)
    assert r.met
    assert r.best is not None
    assert abs(r.best.officer_hours - want) <= 1, (r.best.officer_hours, want)
    assert r.best.kpi["ci_high"] <= 5.0
    # The scenario's current roster (12 officers all day) meets it too, at far more officer-hours.
    assert r.current.officer_hours == 144
    assert r.current.kpi["ci_high"] <= 5.0


def _write(tmp_path: Path, raw: dict[str, Any]) -> str:
    path = tmp_path / "mmst.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return str(path)


def test_cli_writes_the_rosters_heat_maps_and_json(tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["staff", _write(tmp_path, mmst()), "--target", "wait_min.document_check.p95<=5", "--hours-budget", "80"]
    r = runner.invoke(app, [*args, "-r", "3", "-d", "2", "-w", "1", "--seed", "4", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "recommended" in r.stdout
    assert "current" in r.stdout
    assert "meets the target" in r.stdout
    doc = json.loads((out / "staff.json").read_text(encoding="utf-8"))
    assert doc["met"] is True
    rec = doc["recommended"]
    assert rec["officer_hours"] == sum(rec["roster"]) <= 80
    assert rec["kpi"]["ci_high"] <= 5
    assert doc["current"]["officer_hours"] == 144
    html = (out / "report.html").read_text(encoding="utf-8")
    assert html.count("data:image/png;base64,") == 2
    assert "<script" not in html


@pytest.mark.parametrize(
    ("target", "budget", "message"),
    [
        ("wait_min.document_chek.p95<=5", "80", "unknown KPI wait_min.document_chek.p95; did you mean"),
        ("wait_min.document_check.p95=>5", "80", "expected KPI<=MINUTES"),
        ("wait_min.document_check.p95<=", "80", "expected KPI<=MINUTES"),
        ("time_in_system_min.all.p95<=60", "80", "cannot staff for time_in_system_min.all.p95"),
        ("wait_min.document_check.p95<=5", "20", "--hours-budget 20: below the minimum of 41 officer-hours"),
    ],
)
def test_cli_bad_input_is_one_line(tmp_path: Path, target: str, budget: str, message: str) -> None:
    r = runner.invoke(app, ["staff", _write(tmp_path, mmst()), "--target", target, "--hours-budget", budget])
    assert r.exit_code == 2, r.output
    assert message in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert "Traceback" not in r.output


def test_cli_says_when_the_budget_cannot_meet_the_target(tmp_path: Path) -> None:
    args = ["staff", _write(tmp_path, mmst()), "--target", "wait_min.document_check.p95<=0.5", "--hours-budget", "45"]
    r = runner.invoke(app, [*args, "-r", "2", "-d", "1", "-w", "1"])
    assert r.exit_code == 1, r.output
    assert "cannot be met with confidence" in r.stderr
    assert "45 officer-hours" in r.stderr
