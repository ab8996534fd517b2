"""GateReader: container codes (ISO 6346), size type, seal barcodes and QR codes from one gate image."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ocr import iso6346
from ocr.barcodes import Barcode, read_barcodes
from ocr.images import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, DEFAULT_READ_MAX_SIDE, load_image
from ocr.parse import Candidate, Line, find_codes, group_rows, rank, trustworthy, with_check_digit

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from ocr.engine import OcrEngine

__all__ = ["DEFAULT_FALLBACK_BUDGET", "PATHS", "Barcode", "CodeRead", "DeadlineExceeded", "GateRead", "GateReader"]

#: Which stage produced a code (`CodeRead.path`): the staged fast path on the 640 px detection; the check digit
#: read inside its painted box; and the fallback chain: the plain whole-image pipeline (960 px detection,
#: direction classifier, recogniser on every box), its widened second recognition, the columns of its
#: detection, the image turned a quarter.
PATHS = ("fast", "box", "plain", "widened", "columns", "rotated")
#: CPU seconds (of the reading thread) from the start of a read after which the fallback chain starts no further
#: stage. The plain stage takes ~0.4 s CPU on an 800x600 image, the widened re-read ~0.1 s, the turned image ~0.4 s.
DEFAULT_FALLBACK_BUDGET = 1.5


class DeadlineExceeded(TimeoutError):
    """The read was given up between two stages of the pipeline because its deadline (time.monotonic) passed."""


def _check(deadline: float | None) -> None:
    """Raise `DeadlineExceeded` once `deadline` has passed (checked between stages: none takes long)."""
    if deadline is not None and time.monotonic() >= deadline:
        raise DeadlineExceeded("deadline passed")


@dataclass(frozen=True, slots=True)
class CodeRead:
    """One container code read from the image; anything but status "verified" must go to an officer."""

    code: str
    status: str  # "verified" | "corrected" | "check_digit_computed" | "failed"
    confidence: float
    owner: str
    category: str
    serial: str
    check_digit: str
    size_type: str | None
    layout: str  # "horizontal" | "two_line" | "vertical"
    changes: int
    #: The stage that produced the reading (one of `PATHS`); not part of `to_dict`, whose keys the CLI's JSON
    #: lines and the inspection service's stored reads keep as they were.
    path: str = "fast"

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON output."""
        return {
            "code": self.code,
            "status": self.status,
            "confidence": self.confidence,
            "owner": self.owner,
            "category": self.category,
            "serial": self.serial,
            "check_digit": self.check_digit,
            "size_type": self.size_type,
            "layout": self.layout,
            "changes": self.changes,
        }


@dataclass(frozen=True, slots=True)
class GateRead:
    """Everything read from one image: codes best first, barcodes, and the seconds the read took."""

    container_codes: list[CodeRead] = field(default_factory=list)
    barcodes: list[Barcode] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON output."""
        return {
            "container_codes": [c.to_dict() for c in self.container_codes],
            "barcodes": [{"type": b.type, "data": b.data} for b in self.barcodes],
            "seconds": round(self.seconds, 4),
        }


def _code_read(c: Candidate) -> CodeRead:
    """Build the public record from a parser candidate."""
    owner, category, serial, check = iso6346.split(c.code)
    return CodeRead(
        c.code,
        c.status,
        c.confidence,
        owner + category,
        category,
        serial,
        check,
        c.size_type,
        c.layout,
        c.changes,
        c.path,
    )


class GateReader:
    """Reads gate images. Create one per process: the ONNX sessions are built once, on first use, under a lock.

    `read` is thread-safe. `intra_op_threads` is the number of threads onnxruntime uses inside one inference; the
    default of 1 lets a multi-core host serve one image per core with predictable latency.
    """

    def __init__(
        self,
        *,
        intra_op_threads: int = 1,
        det_max_side: int = 640,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        max_side: int = DEFAULT_READ_MAX_SIDE,
        barcodes: bool = True,
        fallback_budget: float = DEFAULT_FALLBACK_BUDGET,
    ) -> None:
        """Configure the reader; no model is loaded until the first read (or `warm_up`).

        `fallback_budget` (CPU seconds from the start of a read; 0 turns the fallback off) bounds the fallback chain
        that runs when the fast path verifies nothing; a read's `deadline` still bounds everything.
        """
        self.intra_op_threads = intra_op_threads
        self.det_max_side = det_max_side
        self.max_bytes = max_bytes
        self.max_pixels = max_pixels
        self.max_side = max_side
        self.barcodes = barcodes
        self.fallback_budget = fallback_budget
        self._engine: OcrEngine | None = None
        self._lock = threading.Lock()

    @property
    def engine(self) -> OcrEngine:
        """The one engine of this reader, created on first use."""
        if self._engine is None:
            with self._lock:
                if self._engine is None:
                    from ocr.engine import OcrEngine

                    self._engine = OcrEngine(intra_op_threads=self.intra_op_threads, det_max_side=self.det_max_side)
        return self._engine

    def warm_up(self) -> None:
        """Load the models now (at service start) rather than on the first truck."""
        _ = self.engine

    def read(self, image_bytes: bytes, *, deadline: float | None = None) -> GateRead:
        """Decode an image safely (raises `ocr.images.ImageError`), reduced to `max_side`, and read it; `seconds`
        covers both steps."""
        start = time.perf_counter()
        bgr = load_image(image_bytes, max_bytes=self.max_bytes, max_pixels=self.max_pixels, max_side=self.max_side)
        return self.read_array(bgr, deadline=deadline, _start=start)

    def read_array(
        self, bgr: NDArray[np.uint8], *, deadline: float | None = None, _start: float | None = None
    ) -> GateRead:
        """Read an already decoded BGR image; past `deadline` (time.monotonic) it raises `DeadlineExceeded` at
        the next stage boundary instead of finishing."""
        start = time.perf_counter() if _start is None else _start
        codes = self.read_codes(bgr, deadline=deadline)
        _check(deadline)
        bars = read_barcodes(bgr) if self.barcodes else []
        return GateRead([_code_read(c) for c in codes], bars, time.perf_counter() - start)

    # -- the pipeline ----------------------------------------------------------------------------------------

    def read_codes(self, bgr: NDArray[np.uint8], *, deadline: float | None = None) -> list[Candidate]:
        """The fast path, then, when it verified nothing, the fallback chain within the time budget.

        The chain: the check digit read inside its painted box next to the fast path's codes; then the plain
        whole-image pipeline (`ocr.plain`): 960 px detection, direction classifier and recogniser on every box,
        the widened second recognition, the boxes again, the columns of that detection, the image turned a
        quarter. Each stage starts only before `start + fallback_budget` (and `deadline`); whatever verified
        first wins, and every reading is ranked together (status, then confidence).
        """
        from ocr.plain import box_reads, merge, plain_read

        start = time.thread_time()
        # Passing readings too unsure to be evidence are dropped before anything else looks at them.
        cands = [c for c in self._fast_codes(bgr, deadline=deadline) if trustworthy(c)]
        if _settled(cands) or self.fallback_budget <= 0:
            return cands
        _check(deadline)
        cands = merge(cands, box_reads(self.engine, bgr, cands))

        def out_of_time() -> bool:
            # CPU time of this thread (onnxruntime runs in it with one intra-op thread): the same image gets the
            # same stages on a loaded machine; the wall-clock bound is the read's deadline.
            spent = time.thread_time() - start >= self.fallback_budget
            return spent or (deadline is not None and time.monotonic() >= deadline)

        if _settled(cands) or out_of_time():
            return cands
        return plain_read(self.engine, bgr, out_of_time=out_of_time, prior=cands)

    def _fast_codes(self, bgr: NDArray[np.uint8], *, deadline: float | None = None) -> list[Candidate]:
        """Detect text once, then recognise in stages, likeliest code regions first; stop once a code verifies.

        1. Vertical columns found by the whole-image detection, re-laid upright (a tall box that could not be cut
           is read turned on its side).
        2. The large horizontal text (container codes are the largest stencils on a door: ISO 6346 asks for at
           least 100 mm characters, weight plates and capacity markings are about half that).
        3. The columns' second reading, turned on their side.
        4. The door edges at full resolution, where vertical codes are painted and where their thin characters
           are too small for the whole-image detection.
        5. The remaining small text (a code painted smaller than usual).

        `deadline` is checked before each stage (see `read_array`).
        """
        from ocr.columns import find_columns

        det = self.engine.detect(bgr)
        columns = find_columns(bgr, det.boxes)
        # Boxes inside a column are its characters (or pieces of it): the column is read as one line instead.
        # A tall box that is not part of a column is still read as one, turned on its side.
        regions = [_Region(q, _rect(q), _tall(_rect(q))) for q in det.boxes]
        regions = [r for r in regions if not any(_inside(r.rect, c.rect) for c in columns)]
        tallest = max((r.height for r in regions if not r.vertical), default=0.0)
        big = [r for r in regions if not r.vertical and r.height >= 0.75 * tallest]
        rest = [r for r in regions if not r.vertical and r.height < 0.75 * tallest]
        stages: list[tuple[list[_Region], list[Any], bool]] = [
            ([r for r in regions if r.vertical], columns, False),
            (big, [], False),
            ([], [c for c in columns if c.relaid is not None], True),
        ]
        lines: list[Line] = []
        cands: list[Candidate] = []
        for regs, cols, rotated in stages:
            if regs or cols:
                _check(deadline)
                lines += self._recognise(bgr, regs, cols, rotated=rotated)
                cands = self._rescue_check_digits(bgr, self._parse(lines), regions)
                if _settled(cands):
                    return cands
        # A corrected reading is final enough: the edge and small-text passes could only confirm the same code.
        if cands and cands[0].status == "corrected":
            return cands
        _check(deadline)
        # Columns the whole-image pass found too are read again here: at full resolution the same column often
        # reads right where the 640 px cut did not (nothing verified so far, or this stage would not run).
        edge_cols = self._edge_columns(bgr, deadline)
        if edge_cols:
            _check(deadline)
            lines += self._recognise(bgr, [], edge_cols, rotated=False)
            lines += self._recognise(bgr, [], edge_cols, rotated=True)
            cands = self._rescue_check_digits(bgr, self._parse(lines), regions)
            if _settled(cands):
                return cands
        if rest:
            _check(deadline)
            lines += self._recognise(bgr, rest, [], rotated=False)
            cands = self._rescue_check_digits(bgr, self._parse(lines), regions)
            if _settled(cands):
                return cands
        _check(deadline)
        return self._reread_rows(bgr, lines, cands, regions)

    def _reread_rows(
        self, bgr: NDArray[np.uint8], lines: list[Line], cands: list[Candidate], regions: list[_Region]
    ) -> list[Candidate]:
        """Read each row the detector split into several boxes again, as one crop, when nothing verified.

        The detector sometimes cuts a code into overlapping boxes (owner / serial / check digit) and a box's edge
        then slices through a character: the left box reads half of the serial's first digit as an extra letter
        ("JPLUS 952225" for JPLU 952225) and the row no longer parses. Joining the texts cannot tell a fragment
        from a character, so the whole row is recognised once more as one upright strip; that reading is parsed
        with the other lines and ranked with the earlier candidates. It is another honest reading, validated by
        its own check digit like any other: nothing is substituted here.
        """
        import cv2
        import numpy as np

        groups = _row_groups([r for r in regions if not r.vertical])
        if not groups:
            return cands
        quads = []
        for g in groups:
            pts = np.concatenate([r.quad for r in g]).astype(np.float32)
            quads.append(cv2.boxPoints(cv2.minAreaRect(pts)).astype(np.float32))
        merged = self._recognise(bgr, [_Region(q, _rect(q), False) for q in quads], [], rotated=False)
        members = {r.rect for g in groups for r in g}
        # The joined rows replace their pieces; every other line (the row below for a two-line code or a size
        # type, the columns) stays, so the layouts parse as before.
        others = [ln for ln in lines if ln.box not in members]
        return self._rescue_check_digits(bgr, rank(cands + self._parse(others + merged)), regions)

    def _edge_columns(self, bgr: NDArray[np.uint8], deadline: float | None = None) -> list[Any]:
        """Look for vertical codes along the left and right door edges with the detector at full resolution."""
        import numpy as np

        from ocr.columns import find_columns

        h, w = bgr.shape[:2]
        band = max(32, int(0.2 * w))
        found = []
        for x0 in (0, w - band):
            _check(deadline)
            strip = np.ascontiguousarray(bgr[:, x0 : x0 + band])
            det = self.engine.detect(strip, max_side=max(h, band))
            boxes = [b + np.array([x0, 0], dtype=np.float32) for b in det.boxes]
            found += find_columns(bgr, boxes)
        return found

    def _recognise(
        self, bgr: NDArray[np.uint8], regions: list[_Region], columns: list[Any], *, rotated: bool
    ) -> list[Line]:
        """Recognise the crops of `regions` and of the columns: re-laid upright (or, without a clean cut of the
        characters, turned on its side), or with `rotated` the turned reading of the columns that were re-laid."""
        import numpy as np

        from ocr.engine import crop_box

        crops = [crop_box(bgr, r.quad) for r in regions]
        places: list[tuple[tuple[float, float, float, float], bool, float | None, float]] = []
        for r in regions:
            q = r.quad
            th = float(min(np.linalg.norm(q[3] - q[0]), np.linalg.norm(q[1] - q[0])))
            dx, dy = float(q[1][0] - q[0][0]), float(q[1][1] - q[0][1])
            places.append((r.rect, r.vertical, th, dy / dx if abs(dx) > 1e-6 else 0.0))
        for c in columns:
            img = (
                (c.rotated if c.relaid is not None else None)
                if rotated
                else (c.relaid if c.relaid is not None else c.rotated)
            )
            if img is not None:
                crops.append(img)
                places.append((c.rect, True, None, 0.0))
        if not crops:
            return []
        reads = self.engine.recognise(crops)
        return [
            Line(rd.text.strip(), _strip_probs(rd.text, rd.probs), rect, vertical, th, slope)
            for (rect, vertical, th, slope), rd in zip(places, reads, strict=True)
        ]

    def _parse(self, lines: list[Line]) -> list[Candidate]:
        """Group boxes into rows and find the codes."""
        grouped = group_rows([ln for ln in lines if ln.text])
        return rank(find_codes(grouped))

    def _rescue_check_digits(
        self, bgr: NDArray[np.uint8], cands: list[Candidate], regions: list[_Region]
    ) -> list[Candidate]:
        """Read the check digit right of a 10-character horizontal code when the detector missed it.

        The check digit is usually painted in a box, which the detector often does not take for text. The crop
        covers about one character after the serial; it is accepted only if it reads as exactly one confident
        digit (box edges read as I, 1 or | are stripped) and no other detected text lies there.
        """
        import numpy as np

        from ocr.columns import ink_mask
        from ocr.engine import crop_box

        todo = [c for c in cands if c.status == "check_digit_computed" and c.layout != "vertical" and c.box]
        if not todo:
            return cands
        crops, owners = [], []
        h_img, w_img = bgr.shape[:2]
        for c in todo:
            assert c.box is not None
            x0, y0, x1, y1 = c.box
            lh = y1 - y0
            # Inside the line's height: the frame's top and bottom edges stay out, the digit stays in. Up to two
            # character heights to the right (stencils leave a gap before the boxed digit), trimmed to the ink.
            area = (x1 - 0.1 * lh, y0 + 0.1 * lh, min(w_img - 1.0, x1 + 2.0 * lh), y1 - 0.1 * lh)
            if area[2] - area[0] < 0.5 * lh or any(
                _inside(r.rect, area) and r.rect[0] > x1 - 0.1 * lh for r in regions
            ):
                continue
            quad = np.array(
                [[area[0], area[1]], [area[2], area[1]], [area[2], area[3]], [area[0], area[3]]], dtype=np.float32
            )
            crop = crop_box(bgr, np.clip(quad, 0, None))
            digit = _lone_character(crop, ink_mask(crop, 0.6 * lh), lh)
            if digit is not None:
                crops.append(digit)
                owners.append(c)
        if not crops:
            return cands
        extra = []
        for c, rd in zip(owners, self.engine.recognise(crops), strict=True):
            chars = [(ch, p) for ch, p in zip(rd.text, rd.probs, strict=False) if ch != " "]
            # Box edges: a leading/trailing I, L or 1 next to another character is the frame, not a digit.
            while len(chars) > 1 and chars[0][0] in "IL1":
                chars = chars[1:]
            while len(chars) > 1 and chars[-1][0] in "IL1":
                chars = chars[:-1]
            if len(chars) == 1 and chars[0][0].isdigit() and chars[0][1] >= 0.8:
                new = with_check_digit(c, chars[0][0], chars[0][1], path="box")
                # A disagreeing rescued digit proves nothing either way: keep the computed reading then.
                if new is not None and new.status in ("verified", "corrected"):
                    extra.append(new)
        return rank(cands + extra)


def _lone_character(crop: Any, mask: Any, lh: float) -> Any:
    """Trim `crop` to its one inked character, removing a frame drawn around it; None if there is not just one.

    The recogniser reads a framed digit badly (the frame's sides look like I or 1), so full-height ink columns at
    either end and full-width ink rows at top and bottom are cut away.
    """
    import cv2
    import numpy as np

    cols = mask.sum(axis=0)
    inked = np.flatnonzero(cols >= 2)
    if inked.size == 0:
        return None
    x0, x1 = int(inked[0]), int(inked[-1]) + 1
    if x1 - x0 > 1.3 * mask.shape[0]:
        return None  # more than one character's worth of ink
    h = mask.shape[0]
    full = cols >= 0.7 * h
    quarter = max(2, (x1 - x0) // 4)
    left = [x for x in range(x0, x0 + quarter) if full[x]]
    right = [x for x in range(x1 - quarter, x1) if full[x]]
    if left and right:
        x0, x1 = left[-1] + 2, right[0] - 1
        rows = mask[:, x0:x1].sum(axis=1)
        frame_rows = np.flatnonzero(rows >= 0.7 * max(1, x1 - x0))
        top = [y for y in frame_rows if y < h // 3]
        bottom = [y for y in frame_rows if y > 2 * h // 3]
        y0 = top[-1] + 2 if top else 0
        y1 = bottom[0] - 1 if bottom else h
        if x1 - x0 < 3 or y1 - y0 < 0.3 * h:
            return None
        inner = crop[y0:y1, x0:x1]
    else:
        inner = crop[:, x0:x1]
    m = max(2, int(0.15 * lh))
    return np.ascontiguousarray(cv2.copyMakeBorder(inner, m // 2, m // 2, m, m, cv2.BORDER_REPLICATE))


def _row_groups(regions: list[_Region]) -> list[list[_Region]]:
    """Horizontal boxes that sit next to each other on one row, in reading order; only rows of two or more.

    The row's axis follows the tilt of its first box; a box joins when its centre lies on that axis, its height
    is comparable (a boxed check digit may be much smaller) and the gap to the previous box is under two
    character heights (the stencil gap before a boxed check digit is about one).
    """
    import numpy as np

    todo = sorted(regions, key=lambda r: r.rect[0])
    used: set[int] = set()
    out: list[list[_Region]] = []
    for i, a in enumerate(todo):
        if i in used:
            continue
        used.add(i)
        q = a.quad
        dx, dy = float(q[1][0] - q[0][0]), float(q[1][1] - q[0][1])
        slope = dy / dx if abs(dx) > 1e-6 else 0.0
        cx, cy = float(q[:, 0].mean()), float(q[:, 1].mean())
        row = [a]
        for j in range(i + 1, len(todo)):
            b = todo[j]
            if j in used:
                continue
            th = max(a.height, b.height)
            bx, by = float(np.mean(b.quad[:, 0])), float(np.mean(b.quad[:, 1]))
            if abs(by - (cy + slope * (bx - cx))) > 0.45 * th or not 0.25 <= b.height / max(a.height, 1e-6) <= 1.6:
                continue
            if b.rect[0] - row[-1].rect[2] > 2.0 * th:
                continue
            used.add(j)
            row.append(b)
        if len(row) >= 2:
            out.append(row)
    return out


def _tall(rect: tuple[float, float, float, float]) -> bool:
    """Whether a box is a column of several characters (one per row)."""
    return (rect[3] - rect[1]) >= 3.0 * (rect[2] - rect[0])


def _settled(cands: list[Candidate]) -> bool:
    """Whether the search can stop: the best reading is verified."""
    return bool(cands) and cands[0].status == "verified"


def _inside(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    """Whether the centre of rectangle `a` lies inside rectangle `b`."""
    cx, cy = (a[0] + a[2]) / 2, (a[1] + a[3]) / 2
    return b[0] <= cx <= b[2] and b[1] <= cy <= b[3]


@dataclass(frozen=True, slots=True)
class _Region:
    """A text region to recognise: its quadrilateral, axis-aligned bounds and orientation."""

    quad: Any  # 4x2 float32, clockwise from top-left
    rect: tuple[float, float, float, float]
    vertical: bool

    @property
    def height(self) -> float:
        """Character size: the short side of the quadrilateral (the bounds of a long tilted line are much taller)."""
        import numpy as np

        q = self.quad
        return float(min(np.linalg.norm(q[1] - q[0]), np.linalg.norm(q[3] - q[0])))


def _rect(quad: Any) -> tuple[float, float, float, float]:
    """Axis-aligned bounds of a quadrilateral."""
    return (float(quad[:, 0].min()), float(quad[:, 1].min()), float(quad[:, 0].max()), float(quad[:, 1].max()))


def _strip_probs(text: str, probs: tuple[float, ...]) -> tuple[float, ...]:
    """Probabilities of `text.strip()`: drop those of leading and trailing spaces."""
    lead = len(text) - len(text.lstrip())
    return probs[lead : lead + len(text.strip())]
