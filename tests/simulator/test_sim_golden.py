"""Golden outputs: each shipped scenario, 2 replications × 2 days on a fixed seed, KPIs equal to 1e-9.

Regenerate after an intended model change with:
    SMARTGATE_UPDATE_GOLDEN=1 .venv/bin/pytest tests/simulator/test_sim_golden.py
and review the diff of tests/simulator/golden/*.json like code.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest

from simulator.runner import run_replications
from simulator.scenario import load_raw

GOLDEN = Path(__file__).parent / "golden"
SCENARIOS = ("baseline-2025", "tet-peak", "jan-2021-cap", "smart-gate-2030", "scanner-outage")
SEED, REPLICATIONS, DAYS = 2025, 2, 2


def _clean(v: float) -> float | None:
    return None if math.isnan(v) else v


@pytest.mark.parametrize("name", SCENARIOS)
def test_golden_output(name: str) -> None:
    out = run_replications(load_raw(name), seed=SEED, replications=REPLICATIONS, days=DAYS, workers=1)
    got = {
        "scenario": name,
        "seed": SEED,
        "replications": REPLICATIONS,
        "days": DAYS,
        "per_replication": [{k: _clean(v) for k, v in sorted(o.kpis.items())} for o in out.per_rep],
    }
    path = GOLDEN / f"{name}.json"
    if os.environ.get("SMARTGATE_UPDATE_GOLDEN") == "1":
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    want = json.loads(path.read_text(encoding="utf-8"))
    assert want.keys() == got.keys()
    for w, g in zip(want["per_replication"], got["per_replication"], strict=True):
        assert w.keys() == g.keys()
        for k in w:
            if w[k] is None:
                assert g[k] is None, k
            else:
                assert g[k] == pytest.approx(w[k], rel=1e-9, abs=1e-9), k
