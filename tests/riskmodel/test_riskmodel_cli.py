"""`smartgate risk model train|evaluate`: JSON on stdout, a one-line error and exit 2 on bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli import app as smartgate
from riskmodel import training
from riskmodel.cli import app

KCS = Path(__file__).resolve().parents[2] / "data" / "kcs-synthetic"


@pytest.fixture(scope="module")
def model_file(tmp_path_factory, small_model) -> Path:
    path = tmp_path_factory.mktemp("model") / "risk.onnx"
    path.write_bytes(training.to_onnx(small_model))
    return path


def _one_line_error(result, code: int = 2) -> str:
    assert result.exit_code == code, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("smartgate: error: ")
    assert "Traceback" not in result.output
    return lines[0]


def test_train_writes_a_model_that_evaluate_scores(tmp_path: Path) -> None:
    data = tmp_path / "kcs"
    data.mkdir()
    with (KCS / "train.csv").open() as src, (data / "train.csv").open("w") as dst:
        dst.writelines(line for _, line in zip(range(3001), src, strict=False))
    out = tmp_path / "m.onnx"
    result = CliRunner().invoke(
        smartgate,
        ["risk", "model", "train", "--dataset", "kcs", "--data", str(data), "--out", str(out), "--rounds", "20"],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["rows"] == 3000
    assert report["encoding"] == "out-of-fold"
    assert "valid" not in report  # no valid.csv in that directory
    result = CliRunner().invoke(
        smartgate,
        ["risk", "model", "evaluate", "--model", str(out), "--dataset", "kcs", "--data", str(KCS / "valid.csv")],
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    assert set(metrics) == {"n", "positives", "auc", "precision_at", "recall_at"}
    assert metrics["n"] == 8134
    assert set(metrics["precision_at"]) == {"1", "2", "5", "10"}
    assert set(metrics["recall_at"]) == {"1", "2", "5", "10"}
    assert 0.5 < metrics["auc"] <= 1


def test_evaluate_prints_one_json_object(model_file: Path) -> None:
    result = CliRunner().invoke(
        app, ["model", "evaluate", "--model", str(model_file), "--data", str(KCS / "valid.csv")]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["positives"] == 1704


def test_train_errors(tmp_path: Path) -> None:
    run = CliRunner().invoke
    out = str(tmp_path / "m.onnx")
    assert "no such directory" in _one_line_error(
        run(app, ["model", "train", "--data", str(tmp_path / "x"), "--out", out])
    )
    assert "no train.csv" in _one_line_error(run(app, ["model", "train", "--data", str(tmp_path), "--out", out]))
    (tmp_path / "train.csv").write_text("a,b\n1,2\n")
    line = _one_line_error(run(app, ["model", "train", "--data", str(tmp_path), "--out", out]))
    assert "missing columns" in line
    assert "Declaration ID" in line
    line = _one_line_error(run(app, ["model", "train", "--dataset", "nope", "--data", str(KCS), "--out", out]))
    assert "unknown dataset" in line
    line = _one_line_error(run(app, ["model", "train", "--data", str(KCS), "--out", out, "--encoding", "in-sample"]))
    assert "leaks" in line
    assert "no such directory" in _one_line_error(
        run(app, ["model", "train", "--data", str(KCS), "--out", str(tmp_path / "a" / "m.onnx")])
    )
    assert not (tmp_path / "m.onnx").exists()


def test_evaluate_errors(tmp_path: Path, model_file: Path) -> None:
    run = CliRunner().invoke
    valid = str(KCS / "valid.csv")
    assert "no such file" in _one_line_error(
        run(app, ["model", "evaluate", "--model", str(tmp_path / "m"), "--data", valid])
    )
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00junk")
    assert "not an ONNX model" in _one_line_error(
        run(app, ["model", "evaluate", "--model", str(junk), "--data", valid])
    )
    missing = str(tmp_path / "none.csv")
    assert "no such file" in _one_line_error(
        run(app, ["model", "evaluate", "--model", str(model_file), "--data", missing])
    )
    bad = tmp_path / "bad.csv"
    shutil.copy(KCS / "valid.csv", bad)
    text = bad.read_text().splitlines()
    bad.write_text("\n".join([text[0].replace("Fraud,", "Fraudulent,"), *text[1:5]]) + "\n")
    line = _one_line_error(run(app, ["model", "evaluate", "--model", str(model_file), "--data", str(bad)]))
    assert "missing columns: Fraud" in line
    bad.write_text("\n".join([text[0], text[1].replace("2021-", "2021/"), *text[2:5]]) + "\n")
    assert "bad date" in _one_line_error(
        run(app, ["model", "evaluate", "--model", str(model_file), "--data", str(bad)])
    )
    line = _one_line_error(
        run(app, ["model", "evaluate", "--model", str(model_file), "--dataset", "x", "--data", valid])
    )
    assert "unknown dataset" in line
