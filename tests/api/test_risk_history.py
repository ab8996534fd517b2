"""`smartgate risk model train|evaluate --from-database`: the platform's own decided declarations are the labels
(officers' violation flags), split by time — no declaration of the evaluation period is trained on — and the
evaluation reports the additional duties that inspecting the top k % would have recovered. On SQLite and
PostgreSQL, with a seeded history of a few hundred decided declarations."""

from __future__ import annotations

import datetime as dt
import json
import random
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from services.declarations.assessment import VN_TZ
from services.declarations.models import Declaration
from services.kernel.database import unit_of_work
from tests.api.test_risk_models import _decide
from tests.api.test_selectivity import Gate, gate  # noqa: F401 - the fixture

pytest.importorskip("lightgbm")

EVERYTHING_YELLOW = """version: 't.history'
seed: 31
thresholds: {yellow: 30, red: 75}
rules:
  - {id: zq_all_watch, type: hs_watchlist, prefixes: ['84'], weight: 35, reason: everything is looked at}
"""
DECLARATIONS = 240
PER_DAY = 4  # registrations per day once the history is spread over time


def _seed(g: Gate) -> dict[str, int]:
    """File and decide DECLARATIONS declarations: a Form E claim on goods of Thai origin is mostly a violation,
    Chinese goods mostly compliant. Every tenth violation is an undervaluation the inspection corrected: documents
    requested, the trader amends the value upward, the officer clears it with the violation. Then spread the
    registrations over 60 days, in filing order. Returns each corrected declaration's additional duties."""
    g.rule_set(EVERYTHING_YELLOW)
    rng = random.Random(3)
    recovered: dict[str, int] = {}
    ids = []
    for n in range(DECLARATIONS):
        body = g.goods("84314990")
        thai = rng.random() < 0.3
        body["items"][0]["origin"] = "TH" if thai else "CN"
        violation = rng.random() < (0.85 if thai else 0.05)
        decl = g.file(body)
        assert decl["channel"] == "yellow", decl
        if violation and n % 10 < 4:
            g.decide(decl["id"], "request_documents", "invoice and payment proof, please")
            raised = json.loads(json.dumps(body))
            raised["items"][0]["customs_value"] = str(int(float(body["items"][0]["customs_value"]) * 3))
            amended = g.amend(decl["id"], raised)
            recovered[decl["id"]] = amended["duties_due_vnd"] - decl["duties_due_vnd"]
            assert recovered[decl["id"]] > 0
        _decide(g, decl["id"], violation=violation)
        ids.append(decl["id"])
    # From tomorrow (Hanoi) on: today's exchange rates apply ("on or before"), as they did at filing.
    tomorrow = dt.datetime.now(VN_TZ).date() + dt.timedelta(days=1)
    start = dt.datetime.combine(tomorrow, dt.time(9), tzinfo=VN_TZ)
    with unit_of_work(g.runtime.sessions) as session:
        for n, decl_id in enumerate(ids):
            at = start + dt.timedelta(days=n // PER_DAY, minutes=n % PER_DAY)
            session.execute(update(Declaration).where(Declaration.id == decl_id).values(submitted_at=at))
    return recovered


def _cli(g: Gate, monkeypatch: pytest.MonkeyPatch, *args: str) -> Any:
    from typer.testing import CliRunner

    from api.cli import app as cli

    settings = g.runtime.settings
    for name, value in {"SMARTGATE_DATABASE_URL": settings.resolved_database_url, "SMARTGATE_ENVIRONMENT": "test",
                        "SMARTGATE_SECRET_KEY": settings.secret_key}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    return CliRunner().invoke(cli, ["risk", "model", *args])


def test_train_and_evaluate_from_the_database_split_by_time(
    gate: Gate,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    from riskmodel.cli import split_by_time
    from riskmodel.scoring import Scorer
    from services.declarations import riskmodels

    g = gate
    recovered = _seed(g)
    with unit_of_work(g.runtime.sessions) as session:
        cases = riskmodels.decided_history(session)
        assert len(cases) == DECLARATIONS
        # The additional duties are the bill's growth from the first assessed version to the decided one.
        assert {c.id: c.revenue for c in cases if c.revenue} == recovered
        assert all(c.label for c in cases if c.revenue)
        days = {c.id: c.date for c in cases}
        assert len(set(days.values())) == DECLARATIONS // PER_DAY
        first_filed = session.scalar(select(Declaration.id).order_by(Declaration.submitted_at).limit(1))

    out = tmp_path / "own.onnx"
    trained = _cli(g, monkeypatch, "train", "--from-database", "--valid-share", "0.25", "--rounds", "40",
                   "--out", str(out))  # fmt: skip
    assert trained.exit_code == 0, trained.output
    report = json.loads(trained.stdout)
    train_cases, valid_cases = split_by_time(sorted(cases, key=lambda c: c.date), 0.25)
    assert (
        report["declarations"] == {"train": len(train_cases), "valid": len(valid_cases)} == {"train": 180, "valid": 60}
    )
    # The time split: every trained row is older than every evaluated declaration.
    info = Scorer(out).info
    assert info["rows"] == len(train_cases)
    assert info["first_date"] == days[first_filed].isoformat()
    last = dt.date.fromisoformat(info["last_date"])
    assert last == max(c.date for c in train_cases) < min(c.date for c in valid_cases)
    assert {c.id for c in train_cases}.isdisjoint(c.id for c in valid_cases)

    evaluated = _cli(g, monkeypatch, "evaluate", "--model", str(out), "--from-database")
    assert evaluated.exit_code == 0, evaluated.output
    metrics = json.loads(evaluated.stdout)
    assert set(metrics) == {"n", "positives", "auc", "precision_at", "recall_at", "revenue_at"}
    # Evaluated: exactly the declarations registered after the model's last training day.
    assert metrics["n"] == len(valid_cases) == sum(1 for day in days.values() if day > last)
    assert metrics["positives"] == sum(c.label for c in valid_cases)
    assert metrics == report["valid"]
    for key in ("precision_at", "recall_at", "revenue_at"):
        assert list(metrics[key]) == ["1", "2", "5", "10"]
    revenue = [metrics["revenue_at"][k] for k in ("1", "2", "5", "10")]
    assert all(isinstance(v, int) for v in revenue)
    assert revenue == sorted(revenue)
    assert revenue[-1] <= sum(c.revenue for c in valid_cases)
    # The model learned the Form E pattern: its top 10 % are violations, and recover duties where some were found.
    assert metrics["precision_at"]["10"] >= 0.8
    assert metrics["auc"] > 0.8


def test_from_database_input_errors(gate: Gate, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:  # noqa: F811
    g = gate
    out = tmp_path / "m.onnx"
    empty = _cli(g, monkeypatch, "train", "--from-database", "--out", str(out))
    assert empty.exit_code == 2
    assert empty.stderr.startswith("smartgate: error: ")
    assert "nothing to learn from" in empty.stderr
    both = _cli(g, monkeypatch, "train", "--from-database", "--data", str(tmp_path), "--out", str(out))
    assert both.exit_code == 2
    assert "either" in both.stderr
    neither = _cli(g, monkeypatch, "evaluate", "--model", str(out))
    assert neither.exit_code == 2
    assert "either" in neither.stderr
