"""Explanations at serving time: tree-path contributions from the tables the export writes, in numpy, adding up to
the margin onnxruntime computes (so the tables are the trees being served), and ranking like LightGBM's own."""

from __future__ import annotations

import numpy as np

from riskmodel import training
from riskmodel.scoring import Scorer


def test_contributions_add_up_to_the_onnxruntime_margin(small_model, kcs_data) -> None:
    scorer = Scorer(training.to_onnx(small_model))
    assert scorer.explainer is not None
    x = scorer.profiles.transform(kcs_data["valid"][0][:500])
    p = scorer.predict_matrix(x)
    contributions = scorer.explainer.contributions(x)
    margin = np.log(p / (1 - p))
    assert np.max(np.abs(scorer.explainer.bias + contributions.sum(axis=1) - margin)) <= 1e-4
    # The feature credited most is, most of the time, LightGBM's own (TreeSHAP) first one too.
    reference = small_model.booster.predict(x, pred_contrib=True)[:, :-1]
    assert np.mean(contributions.argmax(axis=1) == reference.argmax(axis=1)) >= 0.6


def test_reasons_are_words_that_raise_the_score(small_model, kcs_data) -> None:
    scorer = Scorer(training.to_onnx(small_model))
    items = kcs_data["valid"][0][:50]
    p = scorer.score(items)
    risky = int(p.argmax())
    (reasons,) = scorer.explain([items[risky]])
    assert 1 <= len(reasons) <= 3
    assert all(r.contribution > 0 for r in reasons)
    assert [r.contribution for r in reasons] == sorted((r.contribution for r in reasons), reverse=True)
    assert all(r.text and "_" not in r.text for r in reasons)  # words, not column names
