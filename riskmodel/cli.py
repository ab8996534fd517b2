"""`smartgate risk model ...`: train the fraud model on a dataset and export it to ONNX; evaluate an exported model."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import typer

if TYPE_CHECKING:
    import numpy as np

    from riskmodel.records import Case
    from riskmodel.scoring import Scorer

app = typer.Typer(help="Risk selectivity: the learned fraud model beside the rules.", no_args_is_help=True)
model_app = typer.Typer(help="Train, export (ONNX) and evaluate the learned fraud model.", no_args_is_help=True)
app.add_typer(model_app, name="model")

DATASETS = ("kcs",)

# The platform's decided declarations, oldest first, for `--from-database`: set by the platform's CLI (api/cli.py),
# which knows the database; the library itself never touches one.
history_source: Callable[[], list[Case]] | None = None


def fail(message: str, code: int = 2) -> NoReturn:
    """Print a one-line error and exit non-zero (2: bad input)."""
    typer.echo(f"smartgate: error: {message}", err=True)
    raise typer.Exit(code)


def _dataset(name: str) -> None:
    if name not in DATASETS:
        fail(f"unknown dataset '{name}'; choose one of: {', '.join(DATASETS)}")


def _history() -> list[Case]:
    if history_source is None:
        fail("--from-database needs the platform's CLI (smartgate risk model ...), which knows the database")
    try:
        cases = history_source()
    except Exception as exc:  # noqa: BLE001 - a database that cannot be read is one line, not a traceback
        fail(
            f"cannot read the platform's history: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        )
    return sorted(cases, key=lambda c: c.date)  # stable: registration order within a day


def split_by_time(cases: Sequence[Case], valid_share: float) -> tuple[list[Case], list[Case]]:
    """The earlier cases for training and the latest ``valid_share`` for evaluation, cut between two days, so that
    no day of the evaluation period has a row in training."""
    cases = list(cases)
    cut = len(cases) - int(len(cases) * valid_share)
    while 0 < cut < len(cases) and cases[cut - 1].date == cases[cut].date:
        cut -= 1
    return cases[:cut], cases[cut:]


def case_scores(scorer: Scorer, cases: Sequence[Case]) -> np.ndarray:
    """Each declaration's score: its riskiest line's, as selectivity reads it."""
    import numpy as np

    items = [it for case in cases for it in case.items]
    scores = scorer.score(items)
    starts = np.cumsum([0] + [len(case.items) for case in cases[:-1]])
    return np.maximum.reduceat(scores, starts)


def case_metrics(scorer: Scorer, cases: Sequence[Case]) -> dict:
    """The budget metrics of these declarations, with ``revenue_at`` (the additional duties the inspections of the
    top k % found, VND)."""
    import numpy as np

    from riskmodel.metrics import evaluate as metrics

    labels = np.asarray([case.label for case in cases])
    return metrics(case_scores(scorer, cases), labels, revenue=np.asarray([case.revenue for case in cases]))


@app.callback()
def _main() -> None:
    """Risk selectivity commands."""


@model_app.command("train")
def train(
    out: Path = typer.Option(..., "--out", help="Where to write the model (ONNX, with its risk profiles inside)."),
    dataset: str = typer.Option("kcs", "--dataset", help="Dataset adapter: kcs (Korea Customs Service synthetic)."),
    data: Path | None = typer.Option(
        None, "--data", help="Directory of the dataset (kcs: train.csv, optional valid.csv)."
    ),
    from_database: bool = typer.Option(
        False,
        "--from-database",
        help="Train on the platform's decided declarations (labels: officers' violation flags), the earlier part.",
    ),
    valid_share: float = typer.Option(
        0.2, "--valid-share", min=0.0, max=0.5, help="--from-database: latest share of declarations held out."
    ),
    encoding: str = typer.Option(
        "out-of-fold", "--encoding", help="Risk profiles of training rows: out-of-fold | earlier-periods."
    ),
    rounds: int = typer.Option(600, "--rounds", min=1, help="Boosting rounds."),
    sample: int = typer.Option(0, "--sample", min=0, help="Train on the first N rows only (0: all)."),
) -> None:
    """Train on train.csv (labels: Fraud), or with --from-database on the platform's decided declarations up to the
    held-out latest period, and export to ONNX; print one JSON object (and the held-out period's metrics)."""
    from riskmodel import kcs
    from riskmodel.records import DatasetError

    _dataset(dataset)
    if from_database == (data is not None):
        fail("give either --data DIR or --from-database")
    if encoding not in ("out-of-fold", "earlier-periods"):
        fail(f"unknown encoding '{encoding}'; choose out-of-fold or earlier-periods (in-sample target encoding leaks)")
    if out.exists() and out.is_dir():
        fail(f"{out}: is a directory")
    if not out.parent.exists():
        fail(f"{out.parent}: no such directory")
    held_out: list[Case] = []
    trained_cases = 0
    if data is not None:
        try:
            splits = kcs.read_dir(data)
        except DatasetError as exc:
            fail(str(exc))
    else:
        import numpy as np

        earlier, held_out = split_by_time(_history(), valid_share)
        if not earlier:
            fail("no decided import declarations before the held-out period: nothing to learn from")
        labels_of = [case.label for case in earlier for _ in case.items]
        if not 0 < sum(labels_of) < len(labels_of):
            fail("the training period needs both declarations with and without violations")
        trained_cases = len(earlier)
        splits = {"train": ([it for case in earlier for it in case.items], np.asarray(labels_of))}
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
    if from_database:
        report["declarations"] = {"train": trained_cases, "valid": len(held_out)}
        if held_out:
            report["valid"] = case_metrics(Scorer(blob), held_out)
    print(json.dumps(report))


@model_app.command("evaluate")
def evaluate(
    model: Path = typer.Option(..., "--model", help="A model written by `smartgate risk model train`."),
    dataset: str = typer.Option("kcs", "--dataset", help="Dataset adapter: kcs."),
    data: Path | None = typer.Option(None, "--data", help="A labelled CSV file of the dataset (kcs: valid.csv, say)."),
    from_database: bool = typer.Option(
        False,
        "--from-database",
        help="Evaluate on the platform's declarations decided after the model's training period (and revenue_at).",
    ),
) -> None:
    """Score the file with onnxruntime and print {"n", "positives", "auc", "precision_at", "recall_at"} as JSON;
    with --from-database, per declaration registered after the model's last training day, also "revenue_at"."""
    import datetime as dt

    from riskmodel import kcs
    from riskmodel.metrics import evaluate as metrics
    from riskmodel.records import DatasetError
    from riskmodel.scoring import ModelError, Scorer

    _dataset(dataset)
    if from_database == (data is not None):
        fail("give either --data FILE or --from-database")
    try:
        scorer = Scorer(model)
    except ModelError as exc:
        fail(f"{model}: {exc}" if str(model) not in str(exc) else str(exc))
    if data is None:
        try:
            last = dt.date.fromisoformat(str(scorer.info["last_date"]))
        except (KeyError, ValueError):
            fail(f"{model}: the model does not say when its training period ended")
        later = [case for case in _history() if case.date > last]
        if not later:
            fail(f"no decided import declarations registered after {last.isoformat()}, the model's last training day")
        print(json.dumps(case_metrics(scorer, later)))
        return
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
