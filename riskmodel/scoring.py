"""Score declaration items with an exported model on onnxruntime only (no training library at serving time)."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort

from riskmodel import explain, features
from riskmodel.records import Item

METADATA_KEY = "smartgate.riskmodel"


class ModelError(ValueError):
    """A file that is not a risk model this library can score with."""


class Scorer:
    """An exported risk model: profiles from its metadata, trees on onnxruntime (one intra-op thread by default)."""

    def __init__(self, model: bytes | Path | str, *, threads: int = 1) -> None:
        if isinstance(model, (str, Path)):
            path = Path(model)
            if not path.is_file():
                raise ModelError(f"{path}: no such file")
            model = path.read_bytes()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # One row (or one declaration's lines) per call: run the nodes one after the other, with every graph
        # optimisation, and never let a worker spin waiting for work (spinning is CPU time the filing pays).
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types for a bad file
            raise ModelError(f"not an ONNX model: {str(exc).splitlines()[0][:200]}") from None
        meta = self.session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
        if meta is None:
            raise ModelError("an ONNX model, but not a smartgate risk model (no profiles in its metadata)")
        payload = json.loads(meta)
        if payload["features"] != features.feature_names():
            raise ModelError("the model was trained on other features than this version computes; retrain it")
        self.profiles = features.Profiles(payload["profiles"]).prepare()
        self.info: dict = payload["info"]
        self._input = self.session.get_inputs()[0].name
        outputs = [o.name for o in self.session.get_outputs()]
        if outputs != ["probability"]:
            raise ModelError(f"a risk model has one output, probability; this one has {outputs}")
        self._output = "probability"
        # The binding behind InferenceSession.run (skips its per-call checks); the public method where absent.
        self._run = getattr(self.session, "_sess", None)
        self._outputs = [self._output]
        self._local = threading.local()  # per thread: a preallocated one-row input and output, bound once
        trees = self.session.get_modelmeta().custom_metadata_map.get(explain.TREES_KEY)
        # Models exported before the tree tables were added score as before but cannot explain.
        self.explainer = explain.Explainer(explain.unpack_tables(trees), len(self.profiles.names)) if trees else None

    def explain(self, items: Sequence[Item], *, top: int = 3) -> list[list[explain.Reason]]:
        """Per item, the features that raised its score most, in words (empty lists when the model carries no tree
        tables)."""
        if self.explainer is None or not items:
            return [[] for _ in items]
        x = self.profiles.transform(items)
        contributions = self.explainer.contributions(x)
        prior = self.profiles.prior
        return [explain.reasons(self.profiles.names, x[i], contributions[i], prior, top=top) for i in range(len(x))]

    def _one_row(self) -> tuple[np.ndarray, np.ndarray, ort.IOBinding]:
        local = self._local
        bound = getattr(local, "bound", None)
        if bound is None:
            x = np.zeros((1, len(self.profiles.names)), dtype=np.float32)
            y = np.zeros((1, 1), dtype=np.float32)
            binding = self.session.io_binding()
            binding.bind_cpu_input(self._input, x)
            binding.bind_output(self._output, "cpu", 0, np.float32, [1, 1], y.ctypes.data)
            bound = local.bound = (x, y, binding)
        return bound

    def predict_row(self, row: Sequence[float] | np.ndarray) -> float:
        """Fraud probability of one encoded row: the single-row fast path (a preallocated input and output bound to
        the session once per thread, no per-call allocation or checks)."""
        x, y, binding = self._one_row()
        x[0] = row
        if self._run is not None:
            self._run.run_with_iobinding(binding._iobinding, None)
        else:  # pragma: no cover - an onnxruntime without the private binding
            self.session.run_with_iobinding(binding)
        return float(y[0, 0])

    def predict_matrix(self, x: np.ndarray) -> np.ndarray:
        """Fraud probability of each row of an already-encoded float32 feature matrix."""
        if x.shape[0] == 1:
            return np.asarray([self.predict_row(x[0])], dtype=np.float64)
        feed = {self._input: np.ascontiguousarray(x, dtype=np.float32)}
        if self._run is not None:
            (probabilities,) = self._run.run(self._outputs, feed, None)
        else:  # pragma: no cover
            (probabilities,) = self.session.run(self._outputs, feed)
        return np.asarray(probabilities, dtype=np.float64).reshape(-1)

    def score(self, items: Sequence[Item]) -> np.ndarray:
        """Fraud probability of each item."""
        if not items:
            return np.empty(0, dtype=np.float64)
        if len(items) == 1:
            return np.asarray([self.predict_row(self.profiles.row(items[0]))], dtype=np.float64)
        return self.predict_matrix(self.profiles.transform(items))
