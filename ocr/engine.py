"""PP-OCRv4 text detector and recogniser from the rapidocr-onnxruntime wheel, run directly on onnxruntime."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = ["Detection", "LineRead", "OcrEngine", "crop_box", "model_dir"]

DET_MODEL = "ch_PP-OCRv4_det_infer.onnx"
REC_MODEL = "ch_PP-OCRv4_rec_infer.onnx"
CLS_MODEL = "ch_ppocr_mobile_v2.0_cls_infer.onnx"  # text direction: upright or turned 180 degrees
CLS_SHAPE = (48, 192)
REC_HEIGHT = 48
# Characters kept by the restricted decoder. Container markings use only these; everything else in the model's
# 6,600-character (mostly Chinese) alphabet is noise here, and letting it win a timestep only corrupts codes.
ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_SEPARATORS = ".,:;-/()[]|#_'\"!"


def model_dir() -> Path:
    """Folder of the ONNX models shipped inside the rapidocr-onnxruntime wheel (nothing is downloaded)."""
    return Path(str(resources.files("rapidocr_onnxruntime"))) / "models"


@dataclass(frozen=True, slots=True)
class LineRead:
    """Recognised text of one crop: characters (A-Z, 0-9, space) and the probability of each character."""

    text: str
    probs: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class Detection:
    """Detector output: boxes in image pixels, the text probability map, and map-to-image scale factors."""

    boxes: list[Any]
    prob_map: Any  # float32 (rh, rw)
    scale_x: float
    scale_y: float


class OcrEngine:
    """One detector session and one recogniser session, created once; `detect` and `recognise` are thread-safe.

    onnxruntime's `InferenceSession.run` may be called from several threads at once; everything else here is
    stateless after construction.
    """

    def __init__(self, *, intra_op_threads: int = 1, det_max_side: int = 640) -> None:
        """Load both models with a deliberate thread count (one per request keeps a gate host predictable)."""
        import numpy as np
        import onnxruntime as ort
        from rapidocr_onnxruntime.ch_ppocr_det.utils import DBPostProcess

        models = model_dir()
        for name in (DET_MODEL, REC_MODEL, CLS_MODEL):
            if not (models / name).is_file():
                raise RuntimeError(f"model {name} missing from {models}: reinstall rapidocr-onnxruntime")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = max(1, min(intra_op_threads, os.cpu_count() or 1))
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        providers = ["CPUExecutionProvider"]
        self.det = ort.InferenceSession(str(models / DET_MODEL), sess_options=opts, providers=providers)
        self.rec = ort.InferenceSession(str(models / REC_MODEL), sess_options=opts, providers=providers)
        self.cls = ort.InferenceSession(str(models / CLS_MODEL), sess_options=opts, providers=providers)
        self._cls_in = self.cls.get_inputs()[0].name
        self.intra_op_threads = opts.intra_op_num_threads
        self.det_max_side = det_max_side
        self._det_in = self.det.get_inputs()[0].name
        # onnxruntime's CPU arena keeps every block it ever grew to: one detection at full resolution left the
        # process hundreds of megabytes bigger for good. A run larger than the usual whole-image detection asks
        # the arena to hand back what it grew by (then `ocr.memory.trim` returns it to the OS); the usual runs
        # keep the arena's speed.
        self._det_area = det_max_side * det_max_side
        self._shrink = ort.RunOptions()
        self._shrink.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
        self._rec_in = self.rec.get_inputs()[0].name
        # rapidocr's post-processing with a lower box threshold, so that a faint or boxed check digit is still
        # proposed (the recogniser and the parser reject what is not text), and a larger unclip ratio, so that
        # the first and last characters of a line are not shaved off.
        self._post = DBPostProcess(
            thresh=0.3, box_thresh=0.4, max_candidates=200, unclip_ratio=2.0, use_dilation=True, score_mode="fast"
        )

        chars = self.rec.get_modelmeta().custom_metadata_map["character"].splitlines()
        full = ["blank", *chars, " "]
        # Column groups of the reduced alphabet: blank, space, separator, then 0-9 and A-Z. Lower-case forms
        # are pooled into their capital (stencils are capitals; the model sometimes says "o" for "O").
        groups: list[list[int]] = [[0], [len(full) - 1], [i for i, c in enumerate(full) if c in _SEPARATORS]]
        for c in ALNUM:
            groups.append([i for i, x in enumerate(full) if x == c or (c.isalpha() and x == c.lower())])
        width = max(len(g) for g in groups)
        # Index matrix padded with the blank column; the padding is harmless because max() pools each row.
        self._groups = np.array([g + [g[0]] * (width - len(g)) for g in groups], dtype=np.int64)
        self._labels = ["", " ", "."] + list(ALNUM)

    # -- detection -------------------------------------------------------------------------------------------

    def detect(self, bgr: NDArray[np.uint8], *, max_side: int | None = None) -> Detection:
        """Return text boxes (4x2 float32, clockwise from top-left) in `bgr`'s pixel coordinates, and the map.

        The image is shrunk so its longer side is at most `max_side` (default: the engine's `det_max_side`).
        """
        import cv2
        import numpy as np

        h, w = bgr.shape[:2]
        ratio = min(1.0, (max_side or self.det_max_side) / max(h, w))
        rh = max(32, int(round(h * ratio / 32)) * 32)
        rw = max(32, int(round(w * ratio / 32)) * 32)
        small = cv2.resize(bgr, (rw, rh), interpolation=cv2.INTER_AREA)
        x = (small.astype(np.float32) * (2.0 / 255.0) - 1.0).transpose(2, 0, 1)[None]
        pred = self.det.run(None, {self._det_in: x}, self._shrink if rh * rw > self._det_area else None)[0]
        boxes, _scores = self._post(pred, (h, w))
        out = []
        for box in boxes:
            b = _order_clockwise(np.asarray(box, dtype=np.float32))
            b[:, 0] = np.clip(b[:, 0], 0, w - 1)
            b[:, 1] = np.clip(b[:, 1], 0, h - 1)
            if np.linalg.norm(b[0] - b[1]) > 3 and np.linalg.norm(b[0] - b[3]) > 3:
                out.append(b)
        return Detection(out, pred[0, 0], w / rw, h / rh)

    # -- direction -------------------------------------------------------------------------------------------

    def upside_down(self, crops: list[NDArray[np.uint8]], *, thresh: float = 0.9) -> list[bool]:
        """PP-OCR's direction classifier: which crops hold text turned 180 degrees (with probability > `thresh`).

        Preprocessing as rapidocr's: 48 px high, at most 192 px wide, scaled to [-1, 1], zero-padded.
        """
        import cv2
        import numpy as np

        if not crops:
            return []
        hh, ww = CLS_SHAPE
        x = np.zeros((len(crops), 3, hh, ww), dtype=np.float32)
        for k, img in enumerate(crops):
            h, w = img.shape[:2]
            rw = max(1, min(ww, int(math.ceil(hh * w / max(h, 1)))))
            small = cv2.resize(img, (rw, hh))
            x[k, :, :, :rw] = (small.astype(np.float32) * (2.0 / 255.0) - 1.0).transpose(2, 0, 1)
        out: list[bool] = []
        for i in range(0, len(crops), 6):
            probs = self.cls.run(None, {self._cls_in: x[i : i + 6]})[0]
            out += [bool(p[1] > p[0] and p[1] > thresh) for p in probs]
        return out

    # -- recognition -----------------------------------------------------------------------------------------

    def recognise(self, crops: list[NDArray[np.uint8]], *, batch: int = 6) -> list[LineRead]:
        """Recognise horizontal text crops (BGR), batching crops of similar width to limit padding work."""
        import cv2
        import numpy as np

        results: list[LineRead | None] = [None] * len(crops)
        order = sorted(range(len(crops)), key=lambda i: crops[i].shape[1] / max(1, crops[i].shape[0]))
        # Every crop of a batch is padded to the widest, and the recogniser's cost grows with width: batch only
        # crops of similar width (within 30 %), so a 4-character size type is not padded to a 15-character line.
        batches: list[list[int]] = []
        for i in order:
            ratio = crops[i].shape[1] / max(1, crops[i].shape[0])
            if batches and len(batches[-1]) < batch:
                first = batches[-1][0]
                if ratio <= 1.3 * max(crops[first].shape[1] / max(1, crops[first].shape[0]), 1.0):
                    batches[-1].append(i)
                    continue
            batches.append([i])
        for idx in batches:
            ratios = [crops[i].shape[1] / max(1, crops[i].shape[0]) for i in idx]
            width = int(math.ceil(REC_HEIGHT * max(max(ratios), 1.0)))
            width = int(math.ceil(width / 8) * 8)
            x = np.zeros((len(idx), 3, REC_HEIGHT, width), dtype=np.float32)
            for k, i in enumerate(idx):
                rw = max(1, min(width, int(math.ceil(REC_HEIGHT * ratios[k]))))
                img = cv2.resize(crops[i], (rw, REC_HEIGHT), interpolation=cv2.INTER_LINEAR)
                x[k, :, :, :rw] = (img.astype(np.float32) * (2.0 / 255.0) - 1.0).transpose(2, 0, 1)
            probs = self.rec.run(None, {self._rec_in: x})[0]
            for k, i in enumerate(idx):
                results[i] = self._decode(probs[k])
        return [r if r is not None else LineRead("", ()) for r in results]

    def _decode(self, probs: Any) -> LineRead:
        """Greedy CTC decoding over the reduced alphabet (blank, space, separator, 0-9, A-Z)."""
        reduced = probs[:, self._groups].max(axis=2)  # (T, classes)
        best = reduced.argmax(axis=1)
        text: list[str] = []
        conf: list[float] = []
        prev = 0
        for t, cls in enumerate(best.tolist()):
            if cls != prev and cls != 0:
                text.append(self._labels[cls])
                conf.append(float(reduced[t, cls]))
            elif cls == prev and cls != 0 and conf:
                # The same character held over several frames: keep its most confident frame.
                conf[-1] = max(conf[-1], float(reduced[t, cls]))
            prev = cls
        # Separators become spaces: both only mark token boundaries for the parser.
        out = "".join(text).replace(".", " ")
        return LineRead(out, tuple(conf))


def _order_clockwise(pts: Any) -> Any:
    """Order four points as top-left, top-right, bottom-right, bottom-left.

    A wide box is split into its left and right pairs, a tall one into its top and bottom pairs: splitting a tall
    tilted box by x can swap corners and turn the crop upside down.
    """
    import numpy as np

    pts = np.asarray(pts, dtype=np.float32)
    if np.ptp(pts[:, 1]) > np.ptp(pts[:, 0]):
        ys = pts[np.argsort(pts[:, 1])]
        top = ys[:2][np.argsort(ys[:2, 0])]
        bottom = ys[2:][np.argsort(ys[2:, 0])]
        return np.array([top[0], top[1], bottom[1], bottom[0]], dtype=np.float32)
    xs = pts[np.argsort(pts[:, 0])]
    left = xs[:2][np.argsort(xs[:2, 1])]
    right = xs[2:][np.argsort(xs[2:, 1])]
    return np.array([left[0], right[0], right[1], left[1]], dtype=np.float32)


def crop_box(bgr: Any, box: Any) -> Any:
    """Cut a (possibly tilted) box out of `bgr` as an upright horizontal strip; a tall column is turned left."""
    import cv2
    import numpy as np

    box = _order_clockwise(box)
    w = int(max(np.linalg.norm(box[0] - box[1]), np.linalg.norm(box[2] - box[3])))
    h = int(max(np.linalg.norm(box[0] - box[3]), np.linalg.norm(box[1] - box[2])))
    w, h = max(w, 2), max(h, 2)
    dst = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float32)
    mat = cv2.getPerspectiveTransform(box.astype(np.float32), dst)
    out = cv2.warpPerspective(bgr, mat, (w, h), borderMode=cv2.BORDER_REPLICATE, flags=cv2.INTER_LINEAR)
    if h >= 1.5 * w:
        out = np.ascontiguousarray(np.rot90(out))
    return out
