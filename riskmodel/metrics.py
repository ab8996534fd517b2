"""How customs measure selectivity: precision and recall at a fixed inspection budget (top k % by score), and AUC."""

from __future__ import annotations

import math

import numpy as np

BUDGETS = (1, 2, 5, 10)  # per cent of declarations inspected


def top_k(n: int, percent: float) -> int:
    """How many rows a budget of ``percent`` % of ``n`` inspects (rounded up, at least one)."""
    return max(1, math.ceil(n * percent / 100 - 1e-9))


def auc(scores: np.ndarray, labels: np.ndarray) -> float | None:
    """Area under the ROC curve (Mann-Whitney, ties counted half); None when only one class is present."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels).astype(bool)
    pos, neg = int(labels.sum()), int((~labels).sum())
    if not pos or not neg:
        return None
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores), dtype=np.float64)
    sorted_scores = scores[order]
    # average ranks of tied scores
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    avg = first + (counts - 1) / 2.0 + 1.0
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[labels].sum() - pos * (pos + 1) / 2.0) / (pos * neg))


def evaluate(
    scores: np.ndarray,
    labels: np.ndarray,
    budgets: tuple[int, ...] = BUDGETS,
    revenue: np.ndarray | None = None,
) -> dict:
    """``{"n", "positives", "auc", "precision_at": {"1": ...}, "recall_at": {...}}``, ranking by descending score
    (ties broken by row order, so the figure is reproducible). With ``revenue`` (what inspecting each row
    recovers), also ``revenue_at``: the sum recovered by inspecting the top k %, per budget."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels).astype(np.int64)
    if scores.shape != labels.shape or scores.ndim != 1:
        raise ValueError("scores and labels must be 1-d and of the same length")
    n, positives = len(labels), int(labels.sum())
    if not n:
        raise ValueError("nothing to evaluate")
    order = np.argsort(-scores, kind="mergesort")
    ranked = labels[order]
    hits = np.cumsum(ranked)
    precision, recall = {}, {}
    for b in budgets:
        k = top_k(n, b)
        precision[str(b)] = round(float(hits[k - 1] / k), 4)
        recall[str(b)] = round(float(hits[k - 1] / positives), 4) if positives else None
    a = auc(scores, labels)
    out = {
        "n": n,
        "positives": positives,
        "auc": None if a is None else round(a, 4),
        "precision_at": precision,
        "recall_at": recall,
    }
    if revenue is not None:
        revenue = np.asarray(revenue, dtype=np.float64)
        if revenue.shape != labels.shape:
            raise ValueError("revenue and labels must be of the same length")
        recovered = np.cumsum(revenue[order])
        amounts = (float(recovered[top_k(n, b) - 1]) for b in budgets)
        out["revenue_at"] = {
            str(b): int(v) if v.is_integer() else round(v, 2) for b, v in zip(budgets, amounts, strict=True)
        }
    return out
