"""Why the model scored a declaration as it did: tree-path contributions in numpy, and words an officer reads.

onnxruntime gives the score but not the path a row took through the trees, and LightGBM's ``pred_contrib`` is not
there at serving time. So the export writes the served trees' tables into the model file (metadata
``smartgate.riskmodel.trees``: for every node its feature, threshold, children, leaf value and *cover*, the number of
training rows that reached it), and :class:`Explainer` walks them in numpy.

The contributions are Saabas' tree-path attributions: every node has an expected margin (the cover-weighted mean of
the leaves below it); walking from the root to the row's leaf, each step's change of expected margin is credited to
the feature the step split on. Per row they add up exactly to the model's margin: ``bias + sum(contributions) ==
logit(probability)`` (tested against onnxruntime), which also checks that the tables are the trees being served. They
are cheaper than TreeSHAP (one path per tree) and, unlike SHAP, not consistent in the game-theoretic sense; for the
top three reasons an officer reads they rank the same features in practice (docs/risk-model.md).
"""

from __future__ import annotations

import base64
import io
import math
import zlib
from dataclasses import dataclass

import numpy as np

TREES_KEY = "smartgate.riskmodel.trees"


def pack_tables(tables: dict[str, np.ndarray]) -> str:
    """Node tables as text for the model's metadata (npz, zlib, base64)."""
    buffer = io.BytesIO()
    np.savez(buffer, **tables)  # type: ignore[arg-type]
    return base64.b64encode(zlib.compress(buffer.getvalue(), 6)).decode("ascii")


def unpack_tables(text: str) -> dict[str, np.ndarray]:
    """The node tables written by :func:`pack_tables` (arrays only: no pickled objects are loaded)."""
    with np.load(io.BytesIO(zlib.decompress(base64.b64decode(text))), allow_pickle=False) as data:
        return {name: data[name] for name in data.files}


class Explainer:
    """Tree-path contributions of one or more encoded rows (float32 feature matrix)."""

    def __init__(self, tables: dict[str, np.ndarray], n_features: int) -> None:
        self.n_features = n_features
        feature = tables["feature"].astype(np.int64)  # -1 at leaves
        threshold = tables["threshold"].astype(np.float32)
        yes = tables["yes"].astype(np.int64)  # child when x <= threshold (or missing and missing_yes)
        no = tables["no"].astype(np.int64)
        value = tables["value"].astype(np.float64)  # leaf value (margin); 0 at internal nodes
        cover = np.maximum(tables["cover"].astype(np.float64), 0.0)
        roots = tables["roots"].astype(np.int64)
        self.missing_yes = tables["missing_yes"].astype(bool)
        n = len(feature)
        # Expected margin of every node: cover-weighted mean of its leaves, children before parents.
        expected = value.copy()
        weight = cover.copy()
        order = _postorder(roots, yes, no, feature)
        for node in order:
            if feature[node] >= 0:
                a, b = yes[node], no[node]
                total = weight[a] + weight[b]
                expected[node] = (
                    (expected[a] * weight[a] + expected[b] * weight[b]) / total
                    if total > 0
                    else (expected[a] + expected[b]) / 2
                )
                weight[node] = total
        parent_feature = np.full(n, -1, dtype=np.int64)
        delta = np.zeros(n, dtype=np.float64)
        internal = np.flatnonzero(feature >= 0)
        for children in (yes[internal], no[internal]):
            parent_feature[children] = feature[internal]
            delta[children] = expected[children] - expected[internal]
        self.feature, self.threshold, self.yes, self.no = feature, threshold, yes, no
        self.roots = roots
        self.delta, self.parent_feature = delta, parent_feature
        self.bias = float(expected[roots].sum())
        self.depth = int(tables["depth"]) if "depth" in tables else 64

    def contributions(self, x: np.ndarray) -> np.ndarray:
        """Per row, the margin credited to each feature: shape (rows, features); ``bias`` plus a row's sum is its
        margin (the logit of the probability)."""
        x = np.asarray(x, dtype=np.float32).reshape(-1, self.n_features)
        out = np.zeros((len(x), self.n_features), dtype=np.float64)
        for r, row in enumerate(x):
            node = self.roots.copy()
            for _ in range(self.depth + 1):
                f = self.feature[node]
                active = f >= 0
                if not active.any():
                    break
                idx = node[active]
                values = row[f[active]]
                go_yes = (values <= self.threshold[idx]) | (np.isnan(values) & self.missing_yes[idx])
                nxt = np.where(go_yes, self.yes[idx], self.no[idx])
                np.add.at(out[r], self.parent_feature[nxt], self.delta[nxt])
                node[active] = nxt
        return out


def _postorder(roots: np.ndarray, yes: np.ndarray, no: np.ndarray, feature: np.ndarray) -> list[int]:
    out: list[int] = []
    for root in roots.tolist():
        stack = [(int(root), False)]
        while stack:
            node, done = stack.pop()
            if done or feature[node] < 0:
                out.append(node)
                continue
            stack.append((node, True))
            stack.append((int(yes[node]), False))
            stack.append((int(no[node]), False))
    return out


@dataclass(frozen=True, slots=True)
class Reason:
    """One feature's share of a score, in words."""

    feature: str
    contribution: float  # margin (log-odds) this feature added; > 0 raises the risk
    text: str

    def to_json(self) -> dict:
        """JSON form kept with the assessment."""
        return {"feature": self.feature, "contribution": round(self.contribution, 4), "text": self.text}


PROFILE_WORDS = {
    "declarant": "the declarant (filing agent)",
    "importer": "the importer",
    "seller": "the seller",
    "courier": "the courier",
    "hs6": "this HS6 subheading",
    "hs4": "this HS heading",
    "hs2": "this HS chapter",
    "origin": "this country of origin",
    "departure": "this country of departure",
    "route": "this route (departure, origin, office)",
    "office": "this customs office",
    "tax_type": "this tariff treatment",
    "origin_indicator": "this origin indicator",
    "import_type": "this import type",
    "import_use": "this import use",
    "payment_type": "this payment type",
    "transport_mode": "this mode of transport",
    "hs6_origin": "this HS6 subheading from this origin",
    "hs4_origin": "this HS heading from this origin",
    "importer_hs4": "this importer with this HS heading",
    "declarant_importer": "this declarant filing for this importer",
    "declarant_hs2": "this declarant with this HS chapter",
    "importer_seller": "this importer buying from this seller",
    "office_hs2": "this HS chapter at this office",
    "fta_origin": "this preferential claim with this origin",
}


def _pct(rate: float) -> str:
    return f"{100 * rate:.0f} %"


def describe(name: str, value: float, prior: float) -> str:
    """A feature's value in words an officer reads (the direction of its effect is said by the caller)."""
    if name.startswith("rate_"):
        who = PROFILE_WORDS.get(name[5:], name[5:])
        if abs(value - prior) < 1e-6:  # an unseen key is encoded at the overall rate
            return f"no inspection history of {who}: counted at the overall rate ({_pct(prior)} found violations)"
        return f"past inspections of {who}: {_pct(value)} found violations (all declarations: {_pct(prior)})"
    if name.startswith("seen_"):
        who = PROFILE_WORDS.get(name[5:], name[5:])
        per_10k = math.expm1(value)
        if per_10k <= 0:
            return f"{who} was never seen in the history the model learned from"
        if per_10k >= 100:
            return f"{who} is common: {per_10k / 100:.0f} % of the past declarations"
        return f"{who} is rare: {per_10k:.1f} in 10,000 past declarations"
    words = {
        "log_value": lambda v: f"declared value {math.expm1(v):,.0f} (model currency)",
        "log_mass": lambda v: f"net mass {math.expm1(v):,.0f} kg",
        "log_unit_value": lambda v: f"value per kg {math.exp(v):,.2f}",
        "tax_rate": lambda v: f"duty rate {v:g} %",
        "unit_value_vs_hs": lambda v: (
            f"value per kg is {abs(v):.1f} spreads {'below' if v < 0 else 'above'} the usual for its HS code"
        ),
        "value_vs_hs": lambda v: f"declared value is {math.exp(v):.2g}× the usual for its HS code",
        "tax_rate_vs_hs": lambda v: (
            f"duty rate {'below' if v < 0 else 'above'} the usual for its HS code by {abs(v):g} points"
        ),
        "hs_band_level": lambda v: f"compared with HS{int(v)} declarations" if v else "HS code not seen in training",
        "fta_claim": lambda v: "preferential (FTA) rate claimed" if v else "no preferential rate claimed",
        "fta_partner_mismatch": lambda v: (
            "FTA rate claimed for an origin that is not party to the agreement" if v else "FTA claim matches the origin"
        ),
        "origin_ne_departure": lambda v: (
            "shipped from another country than its origin (transshipment)" if v else "shipped from its origin country"
        ),
        "fta_transshipped": lambda v: "FTA rate claimed on transshipped goods" if v else "no transshipped FTA claim",
        "weekday": lambda v: f"registered on a {('Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun')[int(v) % 7]}",
    }
    phrase = words.get(name)
    return phrase(value) if phrase else f"{name} = {value:g}"


def reasons(
    names: list[str], row: np.ndarray, contributions: np.ndarray, prior: float, *, top: int = 3
) -> list[Reason]:
    """The ``top`` features that raised the score most (then, if fewer did, none that lowered it), in words."""
    row = np.asarray(row, dtype=np.float64).reshape(-1)
    contributions = np.asarray(contributions, dtype=np.float64).reshape(-1)
    order = np.argsort(-contributions, kind="mergesort")
    out = []
    for j in order[:top].tolist():
        c = float(contributions[j])
        if c <= 0:
            break
        out.append(Reason(names[j], c, describe(names[j], float(row[j]), prior)))
    return out


def lowering(
    names: list[str], row: np.ndarray, contributions: np.ndarray, prior: float, *, top: int = 1
) -> list[Reason]:
    """The features that lowered the score most, in words."""
    row = np.asarray(row, dtype=np.float64).reshape(-1)
    contributions = np.asarray(contributions, dtype=np.float64).reshape(-1)
    return [
        Reason(names[j], float(contributions[j]), describe(names[j], float(row[j]), prior))
        for j in np.argsort(contributions, kind="mergesort")[:top].tolist()
        if contributions[j] < 0
    ]
