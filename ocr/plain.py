"""The plain whole-image PP-OCR pipeline: GateReader's fallback, and the benchmark's baseline.

Detection on the whole image (at 960 px, larger than the fast path's 640 px), PP-OCR's direction classifier and
the recogniser on every box, ISO 6346 parsing with position-aware repair (`ocr.parse`, `ocr.iso6346`), then a
second recognition of each code-like line widened on both sides (a detector box that shaved off the first
character or left out the boxed check digit). `rotated` adds a detection of the image turned a quarter, for
codes written along a door edge; `columns` re-lays stacked characters found by this detection.

Every reading is honest: a code is `verified` only when the check digit read equals the one computed from the
ten characters before it; nothing here substitutes characters until something validates.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ocr.parse import STATUSES, Candidate, Line, find_codes, group_rows, rank, trustworthy

if TYPE_CHECKING:
    from ocr.engine import OcrEngine

__all__ = ["PLAIN_DET_SIDE", "Quad", "merge", "plain_read", "read_lines", "widened_lines"]

PLAIN_DET_SIDE = 960
Quad = Any  # 4x2 float32, clockwise from top-left


def _is_tall(q: Quad) -> bool:
    import numpy as np

    w = float(np.linalg.norm(q[1] - q[0]))
    h = float(np.linalg.norm(q[3] - q[0]))
    return h >= 1.5 * w


def _line(text: str, probs: tuple[float, ...], q: Quad, vertical: bool) -> Line:
    import numpy as np

    lead = len(text) - len(text.lstrip())
    stripped = text.strip()
    rect = (float(q[:, 0].min()), float(q[:, 1].min()), float(q[:, 0].max()), float(q[:, 1].max()))
    th = float(min(np.linalg.norm(q[3] - q[0]), np.linalg.norm(q[1] - q[0])))
    dx, dy = float(q[1][0] - q[0][0]), float(q[1][1] - q[0][1])
    slope = dy / dx if abs(dx) > 1e-6 and not vertical else 0.0
    return Line(stripped, probs[lead : lead + len(stripped)], rect, vertical, th, slope)


def read_lines(engine: OcrEngine, bgr: Any, quads: list[Quad]) -> list[tuple[Line, Quad]]:
    """Cut every box upright (a tall one turned on its side), turn the upside-down ones, recognise them all."""
    import numpy as np

    from ocr.engine import crop_box

    if not quads:
        return []
    crops = [crop_box(bgr, q) for q in quads]
    flips = engine.upside_down(crops)
    crops = [np.ascontiguousarray(np.rot90(c, 2)) if f else c for c, f in zip(crops, flips, strict=True)]
    reads = engine.recognise(crops)
    return [(_line(rd.text, rd.probs, q, _is_tall(q)), q) for rd, q in zip(reads, quads, strict=True)]


def _widen(q: Quad, w_img: int, h_img: int) -> Quad:
    """The box stretched along its own axis: 0.4 heights before, 2.2 after (a boxed check digit beyond a gap),
    and a quarter height above and below."""
    import numpy as np

    q = q.astype(np.float32)
    u = q[1] - q[0]
    v = q[3] - q[0]
    lu, lv = float(np.linalg.norm(u)), float(np.linalg.norm(v))
    if lu < 1 or lv < 1:
        return q
    u, v = u / lu, v / lv
    h = lv
    out = np.array(
        [
            q[0] - 0.4 * h * u - 0.25 * h * v,
            q[1] + 2.2 * h * u - 0.25 * h * v,
            q[2] + 2.2 * h * u + 0.25 * h * v,
            q[3] - 0.4 * h * u + 0.25 * h * v,
        ],
        dtype=np.float32,
    )
    out[:, 0] = np.clip(out[:, 0], 0, w_img - 1)
    out[:, 1] = np.clip(out[:, 1], 0, h_img - 1)
    return out


def _code_like(text: str) -> bool:
    """A line worth a second look: enough characters to hold part of a code, letters and digits both."""
    t = text.replace(" ", "")
    return 4 <= len(t) <= 16 and any(c.isdigit() for c in t)


def widened_lines(
    engine: OcrEngine, bgr: Any, lines: list[tuple[Line, Quad]], cands: list[Candidate], limit: int = 8
) -> tuple[list[tuple[Line, Quad]], set[int]]:
    """Recognise again, widened, the horizontal lines of unverified candidates and the other code-like lines;
    return the new lines and the ids of the lines they replace."""
    h_img, w_img = bgr.shape[:2]
    boxes = [c.box for c in cands if c.status != "verified" and c.box is not None]

    def priority(item: tuple[Line, Quad]) -> tuple[int, float]:
        ln = item[0]
        hit = any(_overlaps(ln.box, b) for b in boxes)
        return (0 if hit else 1, -ln.height)

    todo = [
        it
        for it in lines
        if not it[0].vertical and (_code_like(it[0].text) or any(_overlaps(it[0].box, b) for b in boxes))
    ]
    todo = sorted(todo, key=priority)[:limit]
    wide = read_lines(engine, bgr, [_widen(q, w_img, h_img) for _, q in todo]) if todo else []
    return wide, {id(ln) for ln, _ in todo}


def _overlaps(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return not (a[2] < b[0] or b[2] < a[0] or a[3] < b[1] or b[3] < a[1])


def _tag(cands: list[Candidate], path: str) -> list[Candidate]:
    """Name the stage that produced the candidates, and drop the unsure ones that passed their check digit."""
    return [replace(c, path=path) for c in cands if _sure_enough(c)]


def _sure_enough(c: Candidate) -> bool:
    return trustworthy(c)


def _settled(cands: list[Candidate]) -> bool:
    return bool(cands) and cands[0].status == "verified"


def plain_read(
    engine: OcrEngine,
    bgr: Any,
    *,
    out_of_time: Callable[[], bool] | None = None,
    rotated: bool = True,
    columns: bool = True,
    boxes: bool = True,
    prior: list[Candidate] | None = None,
) -> list[Candidate]:
    """Read codes with the plain pipeline, stage by stage, stopping at the first verified code or once
    `out_of_time()` says so (checked between stages); each candidate's `path` names the stage that produced it:
    "plain", "widened", "box", "columns", "rotated". `prior` candidates (the fast path's) are ranked with these.
    """
    import cv2
    import numpy as np

    from ocr.engine import crop_box

    def stop(cands: list[Candidate]) -> bool:
        return _settled(cands) or (out_of_time is not None and out_of_time())

    cands = list(prior or [])
    det = engine.detect(bgr, max_side=PLAIN_DET_SIDE)
    lines = read_lines(engine, bgr, det.boxes)
    cands = merge(cands, _tag(find_codes(group_rows([ln for ln, _ in lines if ln.text])), "plain"))
    if stop(cands):
        return cands
    wide, replaced = widened_lines(engine, bgr, lines, cands)
    if wide:
        # The widened readings are parsed with every line that was not widened (the owner line of a two-line
        # code, the size type below), and their codes ranked with the first readings.
        others = [ln for ln, _ in lines if id(ln) not in replaced and ln.text]
        found = find_codes(group_rows([ln for ln, _ in wide if ln.text] + others))
        cands = merge(cands, _tag([c for c in found if c.box is not None and _from(c, wide)], "widened"))
        if stop(cands):
            return cands
    if boxes:
        cands = merge(cands, box_reads(engine, bgr, cands))
        if stop(cands):
            return cands
    if columns:
        from ocr.columns import find_columns

        cols = find_columns(bgr, det.boxes)
        imgs = [c.relaid for c in cols if c.relaid is not None]
        if imgs:
            rects = [c.rect for c in cols if c.relaid is not None]
            reads = engine.recognise(imgs)
            col_lines = [
                Line(rd.text.strip(), rd.probs[: len(rd.text.strip())], r, True)
                for rd, r in zip(reads, rects, strict=True)
            ]
            cands = merge(cands, _tag(find_codes([ln for ln in col_lines if ln.text]), "columns"))
            if stop(cands):
                return cands
    if rotated:
        turned = np.ascontiguousarray(cv2.rotate(bgr, cv2.ROTATE_90_CLOCKWISE))
        rdet = engine.detect(turned, max_side=PLAIN_DET_SIDE)
        # Only long lines: in the turned image a code written along the door edge is a long horizontal line.
        quads = []
        for q in rdet.boxes:
            w = float(np.linalg.norm(q[1] - q[0]))
            h = float(np.linalg.norm(q[3] - q[0]))
            if w >= 4.0 * h:
                quads.append(q)
        if quads:
            crops = [crop_box(turned, q) for q in quads]
            flips = engine.upside_down(crops)
            crops = [np.ascontiguousarray(np.rot90(c, 2)) if f else c for c, f in zip(crops, flips, strict=True)]
            reads = engine.recognise(crops)
            rlines = []
            for rd, q in zip(reads, quads, strict=True):
                # Back to the original image's coordinates: turned (x, y) came from (y, W - 1 - x)... as bounds.
                xs, ys = q[:, 0], q[:, 1]
                h0 = bgr.shape[0]
                rect = (float(ys.min()), float(h0 - 1 - xs.max()), float(ys.max()), float(h0 - 1 - xs.min()))
                t = rd.text.strip()
                rlines.append(Line(t, rd.probs[: len(t)], rect, True))
            cands = merge(cands, _tag(find_codes([ln for ln in rlines if ln.text]), "rotated"))
    return cands


def merge(cands: list[Candidate], new: list[Candidate]) -> list[Candidate]:
    """Rank new readings with the earlier ones; a code an earlier stage already read as well keeps that stage's
    reading (so `path` names the first stage that reached the status)."""
    seen = {c.code: STATUSES.index(c.status) for c in cands}
    return rank(cands + [c for c in new if STATUSES.index(c.status) < seen.get(c.code, len(STATUSES))])


def _from(c: Candidate, wide: list[tuple[Line, Quad]]) -> bool:
    """Whether candidate `c` lies on one of the widened lines."""
    assert c.box is not None
    return any(_overlaps(c.box, ln.box) for ln, _ in wide)


def box_reads(engine: OcrEngine, bgr: Any, cands: list[Candidate]) -> list[Candidate]:
    """Candidates completed by the check digit read inside its painted box, for codes whose check digit was
    missing (`check_digit_computed`) or disagreed (`failed`: often a box edge read as the digit).

    The box is found by a contour search next to the serial (`ocr.checkbox`), its inside recognised on its own,
    and accepted only as one confident digit. The result is still checked like any other reading: it verifies
    only if that digit equals the one computed from the ten characters.
    """
    from ocr.checkbox import find_check_box, one_digit
    from ocr.parse import with_check_digit

    todo = [c for c in cands if c.status in ("check_digit_computed", "failed") and c.box][:4]
    found = []
    for c in todo:
        assert c.box is not None
        if c.layout == "vertical":
            # About one character per 1.2 heights along the column, code and size type: ~14 rows.
            b = find_check_box(bgr, c.box, (c.box[3] - c.box[1]) / 14, vertical=True)
        else:
            b = find_check_box(bgr, c.box, c.box[3] - c.box[1])
        if b is not None:
            found.append((c, b))
    if not found:
        return []
    out = []
    for (c, _b), rd in zip(found, engine.recognise([b.inside for _, b in found]), strict=True):
        d = one_digit(rd.text, rd.probs)
        if d is not None:
            new = with_check_digit(c, d[0], d[1], path="box")
            if new is not None and new.status in ("verified", "corrected") and _sure_enough(new):
                out.append(new)
    return out
