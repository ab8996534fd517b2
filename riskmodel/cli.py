"""`smartgate risk model ...`: train the fraud model on a dataset and export it to ONNX; evaluate an exported model."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import NoReturn

import typer

app = typer.Typer(help="Risk selectivity: the learned fraud model beside the rules.", no_args_is_help=True)
model_app = typer.Typer(help="Train, export (ONNX) and evaluate the learned fraud model.", no_args_is_help=True)
app.add_typer(model_app, name="model")

DATASETS = ("kcs",)


def fail(message: str, code: int = 2) -> NoReturn:
    """Print a one-line error and exit non-zero (2: bad input)."""
    typer.echo(f"smartgate: error: {message}", err=True)
    raise typer.Exit(code)


def _dataset(name: str) -> None:
    if name not in DATASETS:
        fail(f"unknown dataset '{name}'; choose one of: {', '.join(DATASETS)}")


@app.callback()
def _main() -> None:
    """Risk selectivity commands."""


@model_app.command("train")
def train(
    out: Path = typer.Option(..., "--out", help="Where to write the model (ONNX, with its risk profiles inside)."),
    dataset: str = typer.Option("kcs", "--dataset", help="Dataset adapter: kcs (Korea Customs Service synthetic)."),
    data: Path = typer.Option(..., "--data", help="Directory of the dataset (kcs: train.csv, optional valid.csv)."),
    encoding: str = typer.Option(
        "out-of-fold", "--encoding", help="Risk profiles of training rows: out-of-fold | earlier-periods."
    ),
    rounds: int = typer.Option(600, "--rounds", min=1, help="Boosting rounds."),
    sample: int = typer.Option(0, "--sample", min=0, help="Train on the first N rows only (0: all)."),
) -> None:
    """Train on train.csv (labels: Fraud) and export to ONNX; print one JSON object (and valid.csv's metrics)."""
    from riskmodel import kcs
    from riskmodel.records import DatasetError

    _dataset(dataset)
    if encoding not in ("out-of-fold", "earlier-periods"):
        fail(f"unknown encoding '{encoding}'; choose out-of-fold or earlier-periods (in-sample target encoding leaks)")
    if out.exists() and out.is_dir():
        fail(f"{out}: is a directory")
    if not out.parent.exists():
        fail(f"{out.parent}: no such directory")
    try:
        splits = kcs.read_dir(data)
    except DatasetError as exc:
        fail(str(exc))
    try:
        from riskmodel import training
    except ImportError as exc:
        fail(f"training needs the riskml extra (pip install 'smartgate[riskml]'): {exc}", 1)
    from riskmodel.metrics import evaluate
    from riskmodel.scoring import Scorer

    items, labels = splits["train"]
    if sample:
        items, labels = items[:sample], labels[:sample]
    start = time.perf_counter()
    trained = training.train(items, labels, encoding=encoding, rounds=rounds)  # type: ignore[arg-type]
    blob = training.to_onnx(trained)
    out.write_bytes(blob)
    report: dict = {"model": str(out), "bytes": len(blob), **trained.info}
    report["seconds"] = round(time.perf_counter() - start, 1)
    if "valid" in splits:
        valid_items, valid_labels = splits["valid"]
        report["valid"] = evaluate(Scorer(blob).score(valid_items), valid_labels)
    print(json.dumps(report))


@model_app.command("evaluate")
def evaluate(
    model: Path = typer.Option(..., "--model", help="A model written by `smartgate risk model train`."),
    dataset: str = typer.Option("kcs", "--dataset", help="Dataset adapter: kcs."),
    data: Path = typer.Option(..., "--data", help="A labelled CSV file of the dataset (kcs: valid.csv, say)."),
) -> None:
    """Score the file with onnxruntime and print {"n", "positives", "auc", "precision_at", "recall_at"} as JSON."""
    from riskmodel import kcs
    from riskmodel.metrics import evaluate as metrics
    from riskmodel.records import DatasetError
    from riskmodel.scoring import ModelError, Scorer

    _dataset(dataset)
    try:
        scorer = Scorer(model)
    except ModelError as exc:
        fail(f"{model}: {exc}" if str(model) not in str(exc) else str(exc))
    try:
        items, labels = kcs.read_csv(data)
    except DatasetError as exc:
        fail(str(exc))
    print(json.dumps(metrics(scorer.score(items), labels)))


@model_app.command("simulate")
def simulate(
    dataset: str = typer.Option("kcs", "--dataset", help="Dataset adapter: kcs."),
    data: Path = typer.Option(..., "--data", help="Directory of the dataset (kcs: train.csv, valid.csv)."),
    budget: float = typer.Option(10.0, "--budget", min=0.1, max=100, help="Inspected share of each week, in %."),
    warmup: int = typer.Option(8, "--warmup", min=1, help="Weeks inspected by the rules before a model exists."),
    retrain: int = typer.Option(4, "--retrain", min=1, help="Retrain the model every N weeks."),
    rules: Path | None = typer.Option(None, "--rules", help="Rule set YAML (default: the shipped default)."),
    html_out: Path | None = typer.Option(None, "--html", help="Also write an HTML report with plots here."),
    as_json: bool = typer.Option(False, "--json", help="Print the whole result as JSON instead of the table."),
) -> None:
    """Replay the data week by week, learning only from inspected outcomes: precision and recall per week for
    exploitation only, exploration 5/10/20 % and the rules alone."""
    from riskmodel import kcs
    from riskmodel import simulate as sim
    from riskmodel.records import DatasetError

    _dataset(dataset)
    if rules is not None and not rules.is_file():
        fail(f"{rules}: no such file")
    if html_out is not None and not html_out.parent.exists():
        fail(f"{html_out.parent}: no such directory")
    try:
        splits = kcs.read_dir(data)
    except DatasetError as exc:
        fail(str(exc))
    try:
        import lightgbm  # noqa: F401
    except ImportError as exc:
        fail(f"simulating needs the riskml extra (pip install 'smartgate[riskml]'): {exc}", 1)
    import numpy as np

    items = [it for split in splits.values() for it in split[0]]
    labels = np.concatenate([split[1] for split in splits.values()])
    try:
        text = rules.read_text(encoding="utf-8") if rules is not None else None
        result = sim.simulate(items, labels, budget=budget, warmup=warmup, retrain=retrain, rules_text=text)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        fail(f"cannot use the rule set: {exc}")
    if html_out is not None:
        html_out.write_text(sim.report_html(result), encoding="utf-8")
    print(json.dumps(result) if as_json else sim.table(result))


def main() -> None:
    """Entry point for `python -m riskmodel.cli`."""
    app(prog_name="smartgate risk")


if __name__ == "__main__":  # pragma: no cover
    main()
