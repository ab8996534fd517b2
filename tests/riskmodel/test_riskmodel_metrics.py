"""Precision and recall at an inspection budget, and AUC, on examples small enough to check by hand."""

from __future__ import annotations

import numpy as np
import pytest

from riskmodel.metrics import auc, evaluate, top_k


def test_budget_sizes_round_up_and_inspect_at_least_one() -> None:
    assert [top_k(100, b) for b in (1, 2, 5, 10)] == [1, 2, 5, 10]
    assert [top_k(20, b) for b in (1, 2, 5, 10)] == [1, 1, 1, 2]
    assert top_k(150, 1) == 2  # 1.5 rows: inspect 2
    assert top_k(3, 1) == 1


def test_precision_and_recall_at_budgets_on_a_hand_example() -> None:
    # 100 rows, 8 frauds. Ranked by score: the top 10 are F F N F N F N N N F, the other 2 frauds lower down.
    scores = np.linspace(1.0, 0.01, 100)
    labels = np.zeros(100, dtype=int)
    labels[[0, 1, 3, 5, 9, 40, 77]] = 1
    labels[99] = 1
    # shuffle rows: the ranking, not the order of the file, decides
    perm = np.random.default_rng(1).permutation(100)
    out = evaluate(scores[perm], labels[perm])
    assert out["n"] == 100
    assert out["positives"] == 8
    # top 1: F -> 1/1; top 2: F F -> 2/2; top 5: F F N F N -> 3/5; top 10: 5 frauds -> 5/10
    assert out["precision_at"] == {"1": 1.0, "2": 1.0, "5": 0.6, "10": 0.5}
    assert out["recall_at"] == {"1": 0.125, "2": 0.25, "5": 0.375, "10": 0.625}


def test_auc_counts_pairs_and_half_ties() -> None:
    # positives 0.9, 0.5; negatives 0.5, 0.1: pairs (0.9>0.5) (0.9>0.1) (0.5=0.5: half) (0.5>0.1) -> 3.5 / 4
    assert auc(np.array([0.9, 0.5, 0.5, 0.1]), np.array([1, 1, 0, 0])) == pytest.approx(0.875)
    assert auc(np.array([0.1, 0.2, 0.3]), np.array([0, 0, 1])) == 1.0
    assert auc(np.array([0.1, 0.2]), np.array([1, 1])) is None
    out = evaluate(np.array([0.3, 0.2]), np.array([0, 0]))
    assert out["auc"] is None
    assert out["recall_at"]["1"] is None


def test_mismatched_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="same length"):
        evaluate(np.array([0.1, 0.2]), np.array([1]))


def test_revenue_at_sums_what_the_top_k_percent_recovers() -> None:
    scores = np.linspace(1.0, 0.0, 100)  # row 0 ranked first
    labels = np.zeros(100, dtype=int)
    revenue = np.zeros(100)
    labels[[0, 3, 40]] = 1
    revenue[[0, 3, 40]] = [1000, 250, 7]
    out = evaluate(scores, labels, revenue=revenue)
    assert out["revenue_at"] == {"1": 1000, "2": 1000, "5": 1250, "10": 1250}
    assert "revenue_at" not in evaluate(scores, labels)
