"""The learned fraud model in selectivity, through the HTTP API on SQLite and PostgreSQL: a model is a versioned
artefact (upload, dry run, shadow, activate, roll back, each audited), combined with the rules as the rule set says,
explained to officers and never shown to traders; exploration draws like the random selection (never re-drawn);
drift compares the model's precision with the rules'."""

from __future__ import annotations

import base64
import datetime as dt
import json
import random
from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, select

from services.declarations.models import RiskAssessment, RiskModelScore
from services.kernel.database import unit_of_work
from services.kernel.outbox import OutboxEvent
from tests.api.test_selectivity import BASE, Gate, gate  # noqa: F401 - the fixture

pytest.importorskip("lightgbm")

MODELS = "/api/v1/risk/models"
# The model selects, at p >= 0.5, with the weight of a yellow; the rules send ore to red.
MODELLED = """version: 't.model'
seed: 21
thresholds: {yellow: 30, red: 75}
model: {threshold: 0.5, weight: 40, exploration: 0}
rules:
  - {id: zq_ore_watch, type: hs_watchlist, prefixes: ['26'], weight: 80, reason: ore}
"""
EXPLORING = """version: 't.explore'
seed: 22
thresholds: {yellow: 30, red: 75}
model: {threshold: 0.5, weight: 40, exploration: 0.5}
rules:
  - {id: zq_ore_watch, type: hs_watchlist, prefixes: ['26'], weight: 80, reason: ore}
"""


@pytest.fixture(scope="module")
def model_file() -> bytes:
    """A small model that learned one thing: a Form E (China FTA) claim on goods not of Chinese origin is fraud."""
    from riskmodel import training
    from riskmodel.records import Item

    rng = random.Random(5)
    items, labels = [], []
    start = dt.date(2026, 1, 1)
    for n in range(3000):
        origin = rng.choice(["CN"] * 6 + ["TH", "VN", "DE"])
        claim = "FCN1" if rng.random() < 0.6 else ""
        fraud = (claim != "" and origin != "CN") or rng.random() < 0.03
        items.append(Item(id=str(n), date=start + dt.timedelta(days=n % 300), office="KIMTHANH",
                          declarant=f"d{rng.randrange(50)}", importer=f"i{rng.randrange(200)}",
                          seller=f"s{rng.randrange(200)}", courier="", hs6=rng.choice(["081090", "843149", "260111"]),
                          origin=origin, departure="CN", tax_rate=rng.choice([0.0, 5.0, 10.0]),
                          tax_type=claim or "A", fta_claim=claim, origin_indicator="",
                          net_mass=rng.uniform(1000, 20000), value=rng.uniform(1e8, 1e9)))  # fmt: skip
        labels.append(int(fraud))
    trained = training.train(items, np.asarray(labels), rounds=30, params={"num_leaves": 7, "learning_rate": 0.2})
    return training.to_onnx(trained)


def upload(g: Gate, data: bytes, version: str, **params: str) -> Any:
    return g.client.post(MODELS, content=data, params={"version": version, **params},
                         headers={**g.admin, "Content-Type": "application/octet-stream"})  # fmt: skip


def foreign(g: Gate) -> dict[str, Any]:
    """The example (lychees, Form E claimed) with goods of Thai origin: what the model learned to flag."""
    body = g.goods("84314990")
    body["items"][0]["origin"] = "TH"
    return body


def chinese(g: Gate) -> dict[str, Any]:
    return g.goods("84314990")


def test_upload_shadow_activate_rollback_with_the_rules(gate: Gate, model_file: bytes) -> None:  # noqa: F811
    g = gate
    g.rule_set(MODELLED)
    # Only admins upload; a file that is not a risk model is refused with a problem, not stored.
    assert g.client.post(MODELS, content=model_file, params={"version": "m1"}, headers=g.officer).status_code == 403
    bad = upload(g, b"not an onnx file", "m0")
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith("application/problem+json")
    created = upload(g, model_file, "m1")
    assert created.status_code == 201, created.text
    assert created.json()["state"] == "stored"
    assert created.json()["info"]["explainable"] is True
    assert upload(g, model_file, "m1").status_code == 409  # versions are immutable

    # Stored only: no effect, nothing scored.
    plain = g.seen(g.file(foreign(g))["id"])
    assert plain["channel"] == "green"
    assert "models" not in plain["risk"]

    # Shadow: scored and recorded, no effect on the channel.
    assert g.client.post(f"{MODELS}/m1/shadow", headers=g.admin).json()["state"] == "shadow"
    shadowed = g.seen(g.file(foreign(g))["id"])
    assert shadowed["channel"] == "green"
    assert "model" not in {r["rule"] for r in shadowed["risk"]["reasons"]}
    entry = shadowed["risk"]["models"]["shadow"]
    assert entry["version"] == "m1"
    assert entry["probability"] >= 0.5
    # Would-be selections are explained to officers in words.
    assert entry["reasons"]
    assert all(r["contribution"] > 0 and r["text"] for r in entry["reasons"])
    # Computed when an officer reads the declaration, not at filing: the stored (committed) record has none.
    with unit_of_work(g.runtime.sessions) as session:
        stored = session.scalars(select(RiskAssessment.record).where(RiskAssessment.declaration_id == shadowed["id"]))
        assert [r["models"]["shadow"].get("reasons") for r in stored] == [None]
    calm = g.seen(g.file(chinese(g))["id"])["risk"]["models"]["shadow"]
    assert calm["probability"] < 0.5

    # Activation needs a dry run on the history first.
    refused = g.client.post(f"{MODELS}/m1/activate", headers=g.admin)
    assert refused.status_code == 409
    assert refused.json()["code"] == "risk_model.no_dry_run"
    dry = g.client.post(f"{MODELS}/m1/dry-run", headers=g.officer).json()
    assert dry["scored"] >= 3
    assert dry["threshold"] == 0.5
    assert {d["declaration_id"] for d in dry["would_select"]} >= {plain["id"], shadowed["id"]}
    assert g.client.post(f"{MODELS}/m1/activate", headers=g.officer).status_code == 403
    active = g.client.post(f"{MODELS}/m1/activate", headers=g.admin)
    assert active.status_code == 200
    assert active.json()["state"] == "active"

    # Active: the model's hit adds its weight (yellow), beside the rules, with its reasons.
    selected = g.seen(g.file(foreign(g))["id"])
    assert (selected["channel"], selected["status"]) == ("yellow", "submitted")
    hit = next(r for r in selected["risk"]["reasons"] if r["rule"] == "model")
    assert hit["weight"] == 40
    assert "m1" in hit["detail"]
    assert selected["risk"]["models"]["active"]["reasons"]
    assert g.seen(g.file(chinese(g))["id"])["channel"] == "green"
    ore = g.goods("26011110", "Iron ore")
    ore["items"][0]["origin"] = "TH"
    assert g.seen(g.file(ore)["id"])["channel"] == "red"  # the rules' red stays red

    # The trader sees the channel, never the score or the reasons.
    mine = g.client.get(f"{BASE}/{selected['id']}", headers=g.trader).json()
    text = json.dumps(mine)
    assert "risk" not in mine
    assert "probability" not in text
    assert "m1" not in text
    listed = json.dumps(g.client.get(BASE, headers=g.trader).json())
    assert "probability" not in listed
    assert "contribution" not in listed
    assert g.client.get(MODELS, headers=g.trader).status_code == 403
    # Nor in its history or its ledger bundle (the assessment event carries only the record's commitment).
    history = g.client.get(f"{BASE}/{selected['id']}/history", headers=g.trader).text
    g.runtime.relay.drain()
    assert g.runtime.extras["provenance.checkpointer"].checkpoint_now().anchor_error is None
    bundle = g.client.get(f"/api/v1/ledger/subjects/{selected['id']}/bundle", headers=g.trader)
    assert bundle.status_code == 200, bundle.text
    payloads = [base64.b64decode(e["payload"]).decode() for e in bundle.json()["entries"]]
    assert any("assessment_sha256" in p for p in payloads)
    for text in (history, bundle.text, *payloads):
        for needle in ("probability", "contribution", '"m1"', "fraud model", '"model"'):
            assert needle not in text
    # The console shows the officer the model's score and reasons beside the rule hits.
    login = g.client.post("/console/login", data={"key": g.officer["Authorization"].removeprefix("Bearer ")},
                          follow_redirects=False)  # fmt: skip
    assert login.status_code == 303
    html = g.client.get(f"/console/declarations/{selected['id']}").text
    assert "Mô hình học máy m1" in html  # the console is Vietnamese first
    assert "Xác suất vi phạm" in html
    assert selected["risk"]["models"]["active"]["reasons"][0]["text"].split(":")[0] in html

    # A second model replaces it; rollback returns to the first, then to the rules alone.
    assert upload(g, model_file, "m2").status_code == 201
    g.client.post(f"{MODELS}/m2/dry-run", headers=g.admin)
    assert g.client.post(f"{MODELS}/m2/activate", headers=g.admin).json()["previous_version"] == "m1"
    back = g.client.post(f"{MODELS}/rollback", headers=g.admin)
    assert back.status_code == 200
    assert back.json()["version"] == "m1"
    states = {m["version"]: m["state"] for m in g.client.get(MODELS, headers=g.officer).json()}
    assert states == {"m1": "active", "m2": "retired"}
    assert g.client.post(f"{MODELS}/rollback", headers=g.admin).json() is None
    assert g.seen(g.file(foreign(g))["id"])["channel"] == "green"
    assert g.client.post(f"{MODELS}/rollback", headers=g.admin).status_code == 409

    # Each change of state is an audited event (it reaches the ledger like every event).
    with unit_of_work(g.runtime.sessions) as session:
        types = [e.type for e in session.scalars(select(OutboxEvent).where(OutboxEvent.type.like("risk.model_%"))
                                                  .order_by(OutboxEvent.seq))]  # fmt: skip
        assert types == ["risk.model_stored", "risk.model_shadowed", "risk.model_activated", "risk.model_stored",
                         "risk.model_activated", "risk.model_rolled_back", "risk.model_rolled_back"]  # fmt: skip
        assert session.scalar(select(func.count()).select_from(RiskModelScore)) >= 5


def test_exploration_is_drawn_once_per_declaration_and_hidden_from_traders(gate: Gate, model_file: bytes) -> None:  # noqa: F811
    g = gate
    g.rule_set(EXPLORING)  # no target split: half of the declarations nothing selected are explored
    assert upload(g, model_file, "m1").status_code == 201
    g.client.post(f"{MODELS}/m1/dry-run", headers=g.admin)
    assert g.client.post(f"{MODELS}/m1/activate", headers=g.admin).status_code == 200
    filed = []
    for _ in range(40):
        filed.append(g.seen(g.file(chinese(g))["id"]))
        explored = {"exploration" in {r["rule"] for r in d["risk"]["reasons"]} for d in filed}
        if len(explored) == 2:
            break
    was = {d["id"]: "exploration" in {r["rule"] for r in d["risk"]["reasons"]} for d in filed}
    assert set(was.values()) == {True, False}
    chosen = next(d for d in filed if was[d["id"]])
    assert chosen["channel"] == "yellow"
    assert chosen["status"] == "submitted"
    assert "exploration" not in json.dumps(g.client.get(f"{BASE}/{chosen['id']}", headers=g.trader).json())
    # Amending never re-draws: the same declarations stay explored (or not).
    for d in filed[:6]:
        body = chinese(g)
        body["items"][0]["description"] = "Parts of excavators, amended"
        g.amend(d["id"], body)
        again = g.seen(d["id"])
        assert ("exploration" in {r["rule"] for r in again["risk"]["reasons"]}) == was[d["id"]]
    with unit_of_work(g.runtime.sessions) as session:
        rows = session.scalars(select(RiskModelScore).where(RiskModelScore.explored.is_(True))).all()
        assert rows
        assert all(r.rules_channel == "green" and not r.selected for r in rows)


def _decide(g: Gate, decl_id: str, violation: bool) -> None:
    seen = g.seen(decl_id)
    officer = next(h for h in g.officers if h["Authorization"].split("_")[1] == seen["assigned_officer"])
    resp = g.client.post(f"{BASE}/{decl_id}/decisions",
                         json={"outcome": "clear", "reason": "checked", "violation": violation},
                         headers={**officer, "If-Match": seen["etag"]})  # fmt: skip
    assert resp.status_code == 200, resp.text


def test_drift_alarms_when_the_model_is_less_precise_than_the_rules(gate: Gate, model_file: bytes) -> None:  # noqa: F811
    g = gate
    g.rule_set(MODELLED)
    assert upload(g, model_file, "m1").status_code == 201
    g.client.post(f"{MODELS}/m1/dry-run", headers=g.admin)
    g.client.post(f"{MODELS}/m1/activate", headers=g.admin)
    ore = g.goods("26011110", "Iron ore")
    for _ in range(5):
        _decide(g, g.file(ore)["id"], violation=True)  # the rules' picks: all violations
        modelled = g.file(foreign(g))
        assert modelled["channel"] == "yellow"
        _decide(g, modelled["id"], violation=False)  # the model's: none
    assert g.client.get(f"{MODELS}/drift", headers=g.officers[0]).status_code == 403
    report = g.client.get(f"{MODELS}/drift", headers=g.supervisor).json()
    (model,) = report["models"]
    week = model["weeks"][-1]
    assert week["model_selected"] == {"inspected": 5, "violations": 0, "precision": 0.0}
    assert week["rules_selected"]["precision"] == 1.0
    assert week["rules_selected"]["inspected"] == 5
    assert week["alarm"] is True
    assert any("below the rules'" in a["message"] for a in report["alarms"])
    assert week["psi"] is not None


def test_rule_set_model_block_is_validated(gate: Gate) -> None:  # noqa: F811
    bad = MODELLED.replace("model: {threshold: 0.5, weight: 40, exploration: 0}", "model: {threshold: 0.5}")
    resp = gate.client.post("/api/v1/risk/rule-sets", json={"yaml": bad.replace("t.model", "t.bad")},
                            headers=gate.admin)  # fmt: skip
    assert resp.status_code == 422
    assert "model" in resp.json()["detail"]


def test_cli_exports_the_decided_history_and_stores_a_model(
    gate: Gate,  # noqa: F811
    model_file: bytes,
    tmp_path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from typer.testing import CliRunner

    from api.cli import app as cli
    from riskmodel import kcs

    g = gate
    g.rule_set(MODELLED)  # ore: red; anything else green
    for _ in range(4):
        _decide(g, g.file(g.goods("26011110", "Iron ore"))["id"], violation=True)
    g.file(chinese(g))  # green: never decided, not in the history
    settings = g.runtime.settings
    for name, value in {"SMARTGATE_DATABASE_URL": settings.resolved_database_url, "SMARTGATE_ENVIRONMENT": "test",
                        "SMARTGATE_SECRET_KEY": settings.secret_key}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    runner = CliRunner()
    out = tmp_path / "history"
    out.mkdir()
    exported = runner.invoke(cli, ["risk", "model", "export-history", "--out", str(out), "--valid-share", "0.25"])
    assert exported.exit_code == 0, exported.output
    assert json.loads(exported.stdout) == {"lines": 4, "violations": 4, "train": 3, "valid": 1}
    items, labels = kcs.read_csv(out / "train.csv")  # what `train --dataset kcs` reads
    assert [it.hs6 for it in items] == ["260111"] * 3
    assert labels.tolist() == [1, 1, 1]
    assert items[0].fta_claim == "FCN1"
    assert items[0].departure == "CN"
    path = tmp_path / "m.onnx"
    path.write_bytes(model_file)
    stored = runner.invoke(cli, ["risk", "model", "store", "--model", str(path), "--version", "cli.1"])
    assert stored.exit_code == 0, stored.output
    assert json.loads(stored.stdout)["state"] == "stored"
    assert g.client.get(f"{MODELS}/cli.1", headers=g.officer).json()["created_by"].startswith("admin")
    again = runner.invoke(cli, ["risk", "model", "store", "--model", str(path), "--version", "cli.1"])
    assert again.exit_code == 2
    assert again.stderr.startswith("smartgate: error:")
    assert "exists" in again.stderr
    assert runner.invoke(cli, ["risk", "model", "store", "--model", str(path), "--version", "bad/one"]).exit_code == 2
