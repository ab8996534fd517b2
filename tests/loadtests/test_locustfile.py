"""Load tests: a short real run of `loadtests/run.py`, the threshold listener, and the scenarios' request bodies."""

from __future__ import annotations

import csv
import json
import os
import random
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from stdnum import iso6346

# Importing locust monkey-patches the process (gevent), so anything that needs locust runs in a subprocess;
# these modules are written not to import it.
from loadtests.scenarios.common import (
    MissingKeys,
    container_number,
    declaration_body,
    load_keys,
    outcome_for,
    parse_env_file,
)
from loadtests.thresholds import p95_limit_ms
from services.declarations.schemas import DeclarationIn

ROOT = Path(__file__).resolve().parents[2]
STEP_NAME = re.compile(r"^\[(Filing|Review|Documents)\] \d+\. \S.*$")


@pytest.mark.slow
def test_short_run_exercises_every_flow_and_passes(tmp_path: Path) -> None:
    """4 users for 5 s against a fresh platform: every flow makes requests, all named by flow and step, none fail."""
    # Speed is not asserted in the suite (2 shared cores); the p95 limit is lifted so only correctness can fail it.
    env = {**os.environ, "SMARTGATE_LOAD_P95_MS": "60000"}
    args = ["--users", "4", "--spawn-rate", "4", "--run-time", "5s", "--out", str(tmp_path)]
    done = subprocess.run(
        [sys.executable, "loadtests/run.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180
    )
    output = done.stdout[-4000:] + done.stderr[-4000:]
    assert done.returncode == 0, output
    assert "thresholds: passed" in done.stdout, output

    with (tmp_path / "smartgate_stats.csv").open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["Name"] != "Aggregated"]
    assert rows, output
    bad_names = [r["Name"] for r in rows if not STEP_NAME.match(r["Name"])]
    assert bad_names == []
    requests_by_flow: dict[str, int] = {}
    for r in rows:
        flow = STEP_NAME.match(r["Name"]).group(1)  # type: ignore[union-attr]
        requests_by_flow[flow] = requests_by_flow.get(flow, 0) + int(r["Request Count"])
    assert set(requests_by_flow) == {"Filing", "Review", "Documents"}
    assert all(count > 0 for count in requests_by_flow.values()), requests_by_flow
    # The ids in URLs aggregate under the step names: one row per step, never one per declaration.
    assert not any("/api/" in r["Name"] for r in rows)
    assert sum(int(r["Failure Count"]) for r in rows) == 0, (tmp_path / "smartgate_failures.csv").read_text()


# The listener runs in a real locust Environment (in a subprocess, see above), through the quitting event.
THRESHOLD_CASES = textwrap.dedent(
    """
    import contextlib, io, json, os
    from locust.env import Environment
    from loadtests.thresholds import on_quitting

    FILE = "[Filing] 1. File and submit"

    def run(case):
        env = Environment()
        env.create_local_runner()
        env.events.quitting.add_listener(on_quitting)
        for i in range(100):
            env.stats.log_request("POST", FILE, case.get("filing_ms", 40) + i % 3, 100)
            env.stats.log_request("GET", "[Review] 1. Queue", case.get("review_ms", 20), 100)
        for _ in range(case.get("failures", 0)):
            env.stats.log_error("GET", "[Review] 1. Queue", "HTTP 500")
            env.stats.log_request("GET", "[Review] 1. Queue", 20, 100)
        if case.get("empty"):
            env.stats.reset_all()
        if case.get("exception"):
            env.runner.log_exception("local", "KeyError: 'id'", "Traceback ...")
        os.environ["SMARTGATE_LOAD_P95_MS"] = case.get("limit", "500")
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            env.events.quitting.fire(environment=env, reverse=True)
        return {"code": env.process_exit_code, "output": out.getvalue()}

    cases = json.loads(os.environ["CASES"])
    print(json.dumps({name: run(case) for name, case in cases.items()}))
    """
)
CASES: dict[str, tuple[dict[str, Any], int, str]] = {
    "healthy": ({}, 0, "thresholds: passed"),
    "slow filing": ({"filing_ms": 900}, 1, "p95 of POST '[Filing] 1. File and submit' is 900 ms > 500 ms"),
    "limit from the environment": ({"filing_ms": 900, "limit": "1000"}, 0, "<= 1000 ms"),
    "slow review is not a filing limit": ({"review_ms": 2000}, 0, "thresholds: passed"),
    "2 % failures": ({"failures": 5}, 1, "failure ratio 2.44% > 1%"),
    "under 1 % failures tolerated": ({"failures": 1}, 0, "thresholds: passed"),
    "no requests": ({"empty": True}, 1, "no requests were made"),
    "scenario exception": ({"exception": True}, 1, "1 exception(s) raised in scenario code"),
    "junk limit": ({"limit": "fast"}, 2, "invalid SMARTGATE_LOAD_P95_MS"),
}


@pytest.fixture(scope="module")
def threshold_results() -> dict[str, dict[str, Any]]:
    """Every case through the listener in one locust process (importing locust takes about a second)."""
    cases = {name: case for name, (case, _, _) in CASES.items()}
    done = subprocess.run(
        [sys.executable, "-c", THRESHOLD_CASES],
        cwd=ROOT,
        env={**os.environ, "CASES": json.dumps(cases), "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results: dict[str, dict[str, Any]] = json.loads(done.stdout.strip().splitlines()[-1])
    return results


@pytest.mark.parametrize("name", list(CASES))
def test_threshold_listener_sets_the_exit_code_and_says_why(
    name: str, threshold_results: dict[str, dict[str, Any]]
) -> None:
    """A bad run exits non-zero with the reason printed; a good one exits 0 even with a few failures."""
    _, code, message = CASES[name]
    result = threshold_results[name]
    assert result["code"] == code, result["output"]
    assert message in result["output"]


def test_p95_limit_defaults_to_500_ms() -> None:
    """No setting: 500 ms; a negative limit is refused."""
    assert p95_limit_ms({}) == 500
    assert p95_limit_ms({"SMARTGATE_LOAD_P95_MS": "250"}) == 250
    with pytest.raises(ValueError, match=">= 0"):
        p95_limit_ms({"SMARTGATE_LOAD_P95_MS": "-1"})


def test_bodies_are_valid_declarations_with_varied_containers_and_quantities() -> None:
    """Every generated body passes the API's own validation; containers carry valid ISO 6346 check digits."""
    rng = random.Random(6346)
    bodies = [declaration_body(rng) for _ in range(200)]
    for body in bodies:
        DeclarationIn.model_validate(body)
        assert iso6346.is_valid(body["containers"][0]["number"])
    assert len({b["containers"][0]["number"] for b in bodies}) > 190
    assert len({b["items"][0]["quantity"] for b in bodies}) > 20
    assert all(iso6346.is_valid(container_number(rng)) for _ in range(500))


def test_keys_come_from_the_environment_before_the_file(tmp_path: Path) -> None:
    """`SMARTGATE_LOAD_<ROLE>_KEY` wins over the keys file, which is read like the shell reads var/demo.env."""
    keys_file = tmp_path / "demo.env"
    keys_file.write_text("export TRADER_KEY=sg_t\nexport OFFICER_KEY='sg_o'\nexport ADMIN_KEY=sg_a\nGATE_KEY=sg_g\n")
    assert parse_env_file(keys_file.read_text())["OFFICER_KEY"] == "sg_o"
    keys = load_keys({"SMARTGATE_LOAD_KEYS_FILE": str(keys_file), "SMARTGATE_LOAD_TRADER_KEY": "sg_env"})
    assert (keys.trader, keys.officer, keys.admin, keys.treasury) == ("sg_env", "sg_o", "sg_a", None)
    with_treasury = load_keys({"SMARTGATE_LOAD_KEYS_FILE": str(keys_file), "SMARTGATE_LOAD_TREASURY_KEY": "sg_k"})
    assert with_treasury.treasury == "sg_k"
    with pytest.raises(MissingKeys, match="SMARTGATE_LOAD_OFFICER_KEY"):
        load_keys({"SMARTGATE_LOAD_TRADER_KEY": "sg_env"})
    with pytest.raises(MissingKeys, match="cannot read"):
        load_keys({"SMARTGATE_LOAD_KEYS_FILE": str(tmp_path / "missing.env")})


@pytest.mark.parametrize(
    ("status", "channel", "has_documents", "outcome"),
    [
        ("submitted", "yellow", False, "request_documents"),
        ("submitted", "yellow", True, "clear"),
        ("submitted", "red", False, "inspect"),
        ("inspection", "red", False, "clear"),
    ],
)
def test_officer_policy_walks_every_declaration_to_clearance(
    status: str, channel: str, has_documents: bool, outcome: str
) -> None:
    """Yellow: documents, then clear; red: inspect, then clear (so the documents and payment flow has work)."""
    assert outcome_for({"status": status, "channel": channel}, has_documents=has_documents) == outcome
