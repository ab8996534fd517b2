"""Train the gradient-boosted trees (LightGBM) on leak-free features and export them, with the profiles, to ONNX.

Needs the ``riskml`` extra. Serving never imports this module (see :mod:`riskmodel.scoring`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import lightgbm as lgb
import numpy as np

from riskmodel import explain, features
from riskmodel.records import Item

METADATA_KEY = "smartgate.riskmodel"
Encoding = Literal["out-of-fold", "earlier-periods", "in-sample"]

PARAMS: dict = {
    "objective": "binary",
    "learning_rate": 0.03,
    "num_leaves": 31,
    "min_data_in_leaf": 40,
    "feature_fraction": 0.7,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 5.0,
    "verbose": -1,
    "num_threads": 1,
    "seed": 0,
    "deterministic": True,
}
ROUNDS = 600


@dataclass
class Trained:
    """A booster, the profiles to encode new rows with, and how it was trained."""

    booster: lgb.Booster
    profiles: features.Profiles
    info: dict = field(default_factory=dict)

    def predict(self, items: Sequence[Item]) -> np.ndarray:
        """Fraud probabilities with the training library (the reference the ONNX export must match)."""
        return np.asarray(self.booster.predict(self.profiles.transform(items)), dtype=np.float64)


def _down_to_float32(text: str) -> str:
    value = float(text)
    f = np.float32(value)
    if float(f) > value:
        f = np.nextafter(f, np.float32(-np.inf))
    return repr(float(f))


def float32_thresholds(booster: lgb.Booster) -> lgb.Booster:
    """The same trees with every split threshold t replaced by the largest float32 <= t.

    The features are float32, so ``x <= t`` and ``x <= that float32`` agree for every input: LightGBM's predictions
    do not change. ONNX's TreeEnsemble stores thresholds as float32; rounded to nearest instead, a threshold could
    land on a feature value and send it the other way (|delta| up to 0.02 measured). After this the export is exact.
    """
    # tree_sizes gives each tree's length in bytes; without it LightGBM parses the trees one after the other.
    lines = [line for line in booster.model_to_string().splitlines() if not line.startswith("tree_sizes=")]
    for i, line in enumerate(lines):
        if line.startswith("threshold="):
            lines[i] = "threshold=" + " ".join(_down_to_float32(t) for t in line[len("threshold=") :].split())
    return lgb.Booster(model_str="\n".join(lines) + "\n")


def encode(items: Sequence[Item], labels: np.ndarray, encoding: Encoding = "out-of-fold", seed: int = 0) -> np.ndarray:
    """The training matrix under one of the encodings (``in-sample`` leaks and exists to show it)."""
    if encoding == "out-of-fold":
        return features.out_of_fold(items, labels, seed=seed)
    if encoding == "earlier-periods":
        return features.earlier_periods(items, labels)
    if encoding == "in-sample":
        return features.in_sample(items, labels)
    raise ValueError(f"unknown encoding {encoding!r}")


def train(
    items: Sequence[Item],
    labels: np.ndarray,
    *,
    encoding: Encoding = "out-of-fold",
    rounds: int = ROUNDS,
    params: dict | None = None,
    seed: int = 0,
) -> Trained:
    """Fit the model on these labelled rows. New rows are encoded with profiles of all of them."""
    labels = np.asarray(labels)
    x = encode(items, labels, encoding, seed)
    merged = {**PARAMS, **(params or {}), "seed": seed}
    booster = lgb.train(merged, lgb.Dataset(x, label=labels, feature_name=features.feature_names()), rounds)
    booster = float32_thresholds(booster)
    info = {
        "rows": len(items),
        "positives": int(labels.sum()),
        "encoding": encoding,
        "rounds": rounds,
        "params": {k: v for k, v in merged.items() if k not in ("verbose", "num_threads")},
        "first_date": min(it.date for it in items).isoformat(),
        "last_date": max(it.date for it in items).isoformat(),
    }
    return Trained(booster, features.Profiles.fit(items, labels), info)


def to_onnx(trained: Trained) -> bytes:
    """The model as ONNX (input ``features`` float32 [N, F], output ``probability`` float32 [N, 1]), with the profiles
    and training info as JSON in the metadata, so that one file is all the scorer needs.

    The trees go out as a ``TreeEnsembleRegressor`` of the raw margin followed by a ``Sigmoid`` node: the same
    arithmetic as LightGBM's binary objective, and on onnxruntime it scores one row in about 60 % of the time of the
    converter's ``TreeEnsembleClassifier`` (plus its label, cast and multiply nodes), measured in the same run.
    """
    from onnx import TensorProto, helper
    from onnxmltools import convert_lightgbm
    from onnxmltools.convert.common.data_types import FloatTensorType

    names = features.feature_names()
    lines = [
        "objective=regression" if line.startswith("objective=") else line
        for line in trained.booster.model_to_string().splitlines()
    ]
    margin = lgb.Booster(model_str="\n".join(lines) + "\n")  # same trees, identity output: the raw score
    model = convert_lightgbm(
        margin,
        name="smartgate-riskmodel",
        initial_types=[("features", FloatTensorType([None, len(names)]))],
        zipmap=False,
        target_opset=15,
    )
    trees = model.graph.node[0]
    if trees.op_type != "TreeEnsembleRegressor":  # pragma: no cover - a converter change
        raise RuntimeError(f"onnxmltools gave {trees.op_type}, expected TreeEnsembleRegressor")
    trees.output[0] = "margin"
    del model.graph.node[1:]
    del model.graph.initializer[:]
    model.graph.node.append(helper.make_node("Sigmoid", ["margin"], ["probability"], name="sigmoid"))
    del model.graph.output[:]
    model.graph.output.append(helper.make_tensor_value_info("probability", TensorProto.FLOAT, [None, 1]))
    payload = {"features": names, "profiles": trained.profiles.spec, "info": trained.info}
    entry = model.metadata_props.add()
    entry.key = METADATA_KEY
    entry.value = json.dumps(payload, separators=(",", ":"))
    entry = model.metadata_props.add()
    entry.key = explain.TREES_KEY
    entry.value = explain.pack_tables(tree_tables(trees, margin))
    return bytes(model.SerializeToString())


def tree_tables(trees, booster: lgb.Booster) -> dict[str, np.ndarray]:
    """The ONNX TreeEnsembleRegressor's nodes as flat arrays (what :class:`riskmodel.explain.Explainer` walks), each
    node with its cover: the training rows LightGBM sent through it, matched by walking both trees together."""
    from onnx import helper

    attrs = {a.name: helper.get_attribute_value(a) for a in trees.attribute}
    tree_ids = np.asarray(attrs["nodes_treeids"], dtype=np.int64)
    node_ids = np.asarray(attrs["nodes_nodeids"], dtype=np.int64)
    index = {(int(t), int(n)): i for i, (t, n) in enumerate(zip(tree_ids, node_ids, strict=True))}
    modes = [m.decode() if isinstance(m, bytes) else m for m in attrs["nodes_modes"]]
    if set(modes) - {"BRANCH_LEQ", "LEAF"}:  # pragma: no cover - a converter change
        raise RuntimeError(f"unexpected node modes {set(modes)}")
    n = len(modes)
    feature = np.where(np.asarray(modes) == "LEAF", -1, np.asarray(attrs["nodes_featureids"], dtype=np.int64))
    yes = np.array([index.get((int(t), int(c)), -1) for t, c in zip(tree_ids, attrs["nodes_truenodeids"], strict=True)])
    no = np.array([index.get((int(t), int(c)), -1) for t, c in zip(tree_ids, attrs["nodes_falsenodeids"], strict=True)])
    yes[feature < 0] = -1
    no[feature < 0] = -1
    value = np.zeros(n)
    for t, node, w in zip(attrs["target_treeids"], attrs["target_nodeids"], attrs["target_weights"], strict=True):
        value[index[(int(t), int(node))]] += w
    if "base_values" in attrs and any(attrs["base_values"]):  # pragma: no cover - LightGBM exports none
        raise RuntimeError("a base value in the exported trees")
    cover = np.zeros(n)
    depth = 0
    roots = []
    for t, info in enumerate(booster.dump_model()["tree_info"]):
        root = index[(t, 0)]
        roots.append(root)
        stack = [(root, info["tree_structure"], 0)]
        while stack:
            node, lgb_node, d = stack.pop()
            depth = max(depth, d)
            if "leaf_index" in lgb_node or "split_feature" not in lgb_node:
                cover[node] = lgb_node.get("leaf_count", 0)
                if feature[node] >= 0:  # pragma: no cover - a converter change
                    raise RuntimeError(f"tree {t}: the ONNX and LightGBM trees differ")
                continue
            if feature[node] != lgb_node["split_feature"]:  # pragma: no cover - a converter change
                raise RuntimeError(f"tree {t}: the ONNX and LightGBM trees differ")
            cover[node] = lgb_node["internal_count"]
            stack.append((int(yes[node]), lgb_node["left_child"], d + 1))
            stack.append((int(no[node]), lgb_node["right_child"], d + 1))
    return {
        "feature": feature.astype(np.int16),
        "threshold": np.asarray(attrs["nodes_values"], dtype=np.float32),
        "yes": yes.astype(np.int32),
        "no": no.astype(np.int32),
        "missing_yes": np.asarray(attrs.get("nodes_missing_value_tracks_true", [0] * n), dtype=np.int8),
        "value": value.astype(np.float64),
        "cover": cover.astype(np.float32),
        "roots": np.asarray(roots, dtype=np.int32),
        "depth": np.asarray(depth, dtype=np.int32),
    }
