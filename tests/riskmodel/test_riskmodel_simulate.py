"""The week-by-week replay: every strategy spends the same budget, models learn only from what was inspected,
exploration draws among the unselected, and the CLI prints a table and writes an HTML report."""

from __future__ import annotations

import numpy as np
from typer.testing import CliRunner

from riskmodel import simulate
from riskmodel.cli import app

RULES = """version: 't.sim'
rules:
  - {id: fta, type: form_e_non_chinese_origin, weight: 45}
  - {id: new, type: new_trader, max_prior_declarations: 3, weight: 25}
  - {id: klass, type: compliance_class, weights: {A: -15, B: 0, C: 35}}
"""


def test_replay_spends_the_same_budget_and_learns_only_from_the_inspected(kcs_data) -> None:
    items, labels = kcs_data["train"]
    items, labels = items[:6000], labels[:6000]
    result = simulate.simulate(items, labels, budget=10, warmup=3, retrain=2, rules_text=RULES, rounds=20)
    names = [s["name"] for s in result["strategies"]]
    assert names == ["rules alone", "exploitation only", "exploration 5%", "exploration 10%", "exploration 20%"]
    weeks = result["weeks"]
    assert weeks == sorted(weeks)
    assert len(weeks) >= 6
    for s in result["strategies"]:
        assert [w["week"] for w in s["weekly"]] == weeks
        for w in s["weekly"]:
            assert w["inspected"] == max(1, int(np.ceil(w["declarations"] * 0.1 - 1e-9)))
            assert 0 <= w["found"] <= min(w["inspected"], w["frauds"])
    summary = {s["name"]: s["summary"] for s in result["strategies"]}
    assert summary["exploitation only"]["exploration_hit_rate"] is None
    assert summary["exploration 20%"]["exploration_hit_rate"] is not None
    # Learning from outcomes beats a base rate of about one in five.
    assert summary["exploitation only"]["precision"] > 0.3


def test_cli_prints_the_table_and_writes_the_report(tmp_path, kcs_data) -> None:
    items, labels = kcs_data["train"]
    data = tmp_path / "kcs"
    data.mkdir()
    # A small file in the KCS columns (the adapter reads them).
    header = "Declaration ID,Date,Office ID,Process Type,Import Type,Import Use,Payment Type,Mode of Transport," \
             "Declarant ID,Importer ID,Seller ID,Courier ID,HS6 Code,Country of Departure,Country of Origin," \
             "Tax Rate,Tax Type,Country of Origin Indicator,Net Mass,Item Price,Fraud,Critical Fraud"  # fmt: skip
    rows = [header]
    for it, y in zip(items[:3000], labels[:3000], strict=True):
        rows.append(",".join([it.id, it.date.isoformat(), it.office, it.process_type, it.import_type, it.import_use,
                              it.payment_type, it.transport_mode, it.declarant, it.importer, it.seller, it.courier,
                              it.hs6, it.departure, it.origin, str(it.tax_rate), it.tax_type, it.origin_indicator,
                              str(it.net_mass), str(it.value), str(int(y)), "0"]))  # fmt: skip
    (data / "train.csv").write_text("\n".join(rows) + "\n")
    report = tmp_path / "replay.html"
    runner = CliRunner()
    out = runner.invoke(app, ["model", "simulate", "--data", str(data), "--warmup", "2", "--retrain", "3",
                              "--html", str(report)])  # fmt: skip
    assert out.exit_code == 0, out.output
    assert "exploration 10%" in out.output
    assert "rules alone" in out.output
    page = report.read_text()
    assert page.count("<svg") == 2
    assert "<polyline" in page
    bad = runner.invoke(app, ["model", "simulate", "--data", str(tmp_path / "nowhere")])
    assert bad.exit_code == 2
