"""Training, ONNX export and scoring: parity with the training library, leak-free profiles, onnxruntime-only serving."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from riskmodel import features, training
from riskmodel.metrics import evaluate
from riskmodel.scoring import ModelError, Scorer

REPO = Path(__file__).resolve().parents[2]


def test_onnx_scores_equal_the_training_library_on_a_sample(small_model, kcs_data) -> None:
    items, _ = kcs_data["valid"]
    sample = items[:2000]
    reference = small_model.predict(sample)
    served = Scorer(training.to_onnx(small_model)).score(sample)
    assert served.shape == reference.shape
    assert np.max(np.abs(served - reference)) <= 1e-5
    assert reference.std() > 0.05  # a real spread of scores, not a constant


def test_float32_thresholds_do_not_change_the_booster(small_model, kcs_data) -> None:
    x = small_model.profiles.transform(kcs_data["valid"][0][:1000])
    again = training.float32_thresholds(small_model.booster)
    assert np.array_equal(again.predict(x), small_model.booster.predict(x))


def test_in_sample_target_encoding_leaks_and_training_does_not_use_it(small_model, small_settings, kcs_data) -> None:
    items, labels = kcs_data["train"]
    valid, y_valid = kcs_data["valid"]
    leaky = training.train(items, labels, encoding="in-sample", **small_settings)
    # Judged on its own (leaky) training matrix it looks perfect ...
    own = evaluate(leaky.booster.predict(features.in_sample(items, labels)), labels)["precision_at"]["5"]
    # ... and on a later period it falls far below the leak-free model.
    leaky_valid = evaluate(leaky.predict(valid), y_valid)["precision_at"]["5"]
    honest_valid = evaluate(small_model.predict(valid), y_valid)["precision_at"]["5"]
    assert own >= 0.95
    assert honest_valid >= 0.8
    assert leaky_valid <= honest_valid - 0.2, (own, leaky_valid, honest_valid)
    assert small_model.info["encoding"] == "out-of-fold"


def test_training_rows_never_see_their_own_label(kcs_data) -> None:
    items, labels = kcs_data["train"]
    x = training.encode(items, labels)  # the default, what train() uses
    names = features.feature_names()
    seen, rate = names.index("seen_importer"), names.index("rate_importer")
    once = Counter(it.importer for it in items)
    single = np.array([once[it.importer] == 1 for it in items])
    # an importer met once has no other row to learn from: unseen, at the prior, whatever its label
    assert single.sum() > 1000
    assert np.all(x[single, seen] == 0)
    assert np.allclose(
        x[single, rate][labels[single] == 1].mean(), x[single, rate][labels[single] == 0].mean(), atol=0.01
    )
    leaky = features.in_sample(items, labels)
    assert leaky[single, rate][labels[single] == 1].mean() > leaky[single, rate][labels[single] == 0].mean() + 0.02


def test_earlier_periods_encoding_uses_only_past_months(kcs_data) -> None:
    items, labels = kcs_data["train"]
    x = features.earlier_periods(items, labels)
    seen = features.feature_names().index("seen_importer")
    first_month = np.array([it.date.month == items[0].date.month for it in items])
    assert np.all(x[first_month, seen] == 0)  # no past yet
    assert np.any(x[~first_month, seen] > 0)


def test_serving_imports_no_training_library() -> None:
    code = (
        "import sys, riskmodel.scoring, riskmodel.kcs, riskmodel.metrics, riskmodel.features;"
        "bad = {'lightgbm', 'sklearn', 'onnxmltools', 'skl2onnx', 'onnx'} & {m.split('.')[0] for m in sys.modules};"
        "print(sorted(bad)); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_scorer_refuses_what_is_not_a_risk_model(tmp_path: Path, small_model) -> None:
    with pytest.raises(ModelError, match="no such file"):
        Scorer(tmp_path / "missing.onnx")
    with pytest.raises(ModelError, match="not an ONNX model"):
        Scorer(b"not a model")
    import onnx

    bare = onnx.load_from_string(training.to_onnx(small_model))
    del bare.metadata_props[:]
    with pytest.raises(ModelError, match="not a smartgate risk model"):
        Scorer(bare.SerializeToString())
    assert Scorer(training.to_onnx(small_model)).score([]).shape == (0,)


def test_the_filing_path_encodes_items_as_the_batch_path_does(small_model, kcs_data) -> None:
    """Scoring at filing (a few items: plain Python, one look-up per profile) and in bulk (numpy) give the same
    matrix, and key_tuple lists the keys of KEYS in order."""
    items = kcs_data["valid"][0][:400]
    for it in items[:50]:
        assert features.key_tuple(it) == tuple(key(it) for key in features.KEYS.values())
    bulk = small_model.profiles.transform(items)
    one_by_one = np.vstack([small_model.profiles.transform(items[i : i + 8]) for i in range(0, len(items), 8)])
    np.testing.assert_array_equal(one_by_one, bulk)
