"""Vertical codes (one character per row): find the column in the detector's map, re-lay it as one text line."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Column", "find_columns", "ink_mask"]

_MIN_CHARS = 7  # an 11-character code may lose a few characters to merging, never most of them


@dataclass(frozen=True, slots=True)
class Column:
    """A vertical code, ready for the recogniser: turned on its side, and re-laid upright when it could be cut."""

    rotated: Any  # BGR: the column turned a quarter left, so it reads left to right (characters on their side)
    relaid: Any | None  # BGR: the characters cut apart and laid left to right upright, or None
    bounds: tuple[float, float, float, float]  # in image pixels

    @property
    def rect(self) -> tuple[float, float, float, float]:
        """Bounds of the whole column in the image."""
        return self.bounds


def _seeds(boxes: list[Any], img_h: int) -> list[tuple[Any, float, float]]:
    """Column seeds (quad, character width, axis slope dx/dy): tall boxes, or stacks of single characters."""
    import numpy as np

    rects = [(float(q[:, 0].min()), float(q[:, 1].min()), float(q[:, 0].max()), float(q[:, 1].max())) for q in boxes]
    out: list[tuple[Any, float, float]] = []
    for q, r in zip(boxes, rects, strict=True):
        w, h = r[2] - r[0], r[3] - r[1]
        if h >= 3.0 * w and h >= 0.1 * img_h:
            axis = (q[2] + q[3]) / 2 - (q[0] + q[1]) / 2
            slope = float(axis[0] / axis[1]) if axis[1] > 0 else 0.0
            out.append((q, float(np.linalg.norm(q[1] - q[0])), slope))
    # Stacks of character-sized boxes (the detector sometimes finds each character of a column on its own).
    small = [i for i, r in enumerate(rects) if (r[2] - r[0]) <= 60 and 0.6 <= (r[3] - r[1]) / max(r[2] - r[0], 1) <= 3]
    for i in small:
        r = rects[i]
        cx, w = (r[0] + r[2]) / 2, max(r[2] - r[0], 8.0)
        stack = [j for j in small if abs((rects[j][0] + rects[j][2]) / 2 - cx) <= 0.7 * w]
        if len(stack) >= 4:
            pts = np.concatenate([boxes[j] for j in stack]).astype(np.float32)
            x0, y0, x1, y1 = pts[:, 0].min(), pts[:, 1].min(), pts[:, 0].max(), pts[:, 1].max()
            if y1 - y0 >= 3.0 * (x1 - x0):
                quad = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float32)
                cys = [(rects[j][1] + rects[j][3]) / 2 for j in stack]
                cxs = [(rects[j][0] + rects[j][2]) / 2 for j in stack]
                slope = float(np.polyfit(cys, cxs, 1)[0])
                out.append((quad, float(max(rects[j][2] - rects[j][0] for j in stack)), slope))
    return out


def find_columns(bgr: Any, boxes: list[Any]) -> list[Column]:
    """Find vertical codes (one character per row) among detector boxes and prepare them for the recogniser.

    The detector sees a vertical code as a thin tall text line, often broken where it lost a character. A tall
    box (or a stack of character boxes) seeds a column and gives its axis; the detector's other pieces on that
    axis extend it; a strip is cut out upright along it; the characters are separated by the row profile of
    stroke pixels, which may extend the column further (a character the detector missed).
    """
    import numpy as np

    img_h, img_w = bgr.shape[:2]
    columns: list[Column] = []
    rects = [(float(q[:, 0].min()), float(q[:, 1].min()), float(q[:, 0].max()), float(q[:, 1].max())) for q in boxes]
    for quad, cw, slope in sorted(_seeds(boxes, img_h), key=lambda t: -float(np.ptp(t[0][:, 1]))):
        cw = max(cw, 8.0)
        if abs(slope) > 0.35:  # more than ~20 degrees off vertical: not a column on a door edge
            continue
        xm, ym = float(quad[:, 0].mean()), float(quad[:, 1].mean())
        if any(c.bounds[0] <= xm <= c.bounds[2] and c.bounds[1] <= ym <= c.bounds[3] for c in columns):
            continue
        # Pieces on the axis, chained from the seed across gaps of up to three characters.
        on_axis = sorted(
            (
                r
                for r in rects
                if r[2] - r[0] <= 2.0 * cw
                and abs((r[0] + r[2]) / 2 - (xm + slope * ((r[1] + r[3]) / 2 - ym))) <= 0.6 * cw
            ),
            key=lambda r: r[1],
        )
        top, bottom = float(quad[:, 1].min()), float(quad[:, 1].max())
        grown = True
        while grown:
            grown = False
            for r in on_axis:
                if r[1] - 3.0 * cw <= bottom and r[3] + 3.0 * cw >= top and (r[1] < top or r[3] > bottom):
                    top, bottom, grown = min(top, r[1]), max(bottom, r[3]), True
        strip, to_img = _cut_strip(bgr, xm, ym, slope, cw)
        cells, breaks = _segment(strip, cw, top - to_img[1], bottom - to_img[1])
        if len(cells) >= 5:
            # Re-centre the axis on the characters found, and keep the new cut if it finds at least as many.
            cys = np.array([(c[1] + c[3]) / 2 for c in cells], dtype=np.float64)
            cxs = np.array([(c[0] + c[2]) / 2 for c in cells], dtype=np.float64)
            fit_slope, fit_x = np.polyfit(cys, cxs, 1)
            mid_y = strip.shape[0] / 2
            xm2 = xm + slope * (mid_y - ym) + float(fit_slope * mid_y + fit_x - strip.shape[1] / 2)
            slope2 = slope + float(fit_slope)
            strip2, to_img2 = _cut_strip(bgr, xm2, mid_y, slope2, cw)
            cells2, breaks2 = _segment(strip2, cw, top - to_img2[1], bottom - to_img2[1])
            if len(cells2) >= len(cells):
                strip, to_img, cells, breaks = strip2, to_img2, cells2, breaks2
                xm, ym, slope = xm2, mid_y, slope2
        if cells:
            top = min(top, to_img[1] + cells[0][1])
            bottom = max(bottom, to_img[1] + cells[-1][3])
        y0 = int(max(0.0, top - to_img[1] - 0.4 * cw))
        y1 = int(min(float(strip.shape[0]), bottom - to_img[1] + 0.4 * cw))
        if y1 - y0 < 3 * cw:
            continue
        rotated = np.ascontiguousarray(np.rot90(strip[y0:y1]))
        relaid = _relaid(strip, cells, breaks) if len(cells) >= _MIN_CHARS else None
        half = cw + abs(slope) * (bottom - top) / 2
        bounds = (
            max(0.0, xm + slope * ((top + bottom) / 2 - ym) - half),
            top,
            min(float(img_w), xm + slope * ((top + bottom) / 2 - ym) + half),
            bottom,
        )
        columns.append(Column(rotated, relaid, bounds))
    return columns


def ink_mask(bgr: Any, cw: float, polarity: str | None = None) -> Any:
    """Binary mask (uint8 0/1) of paint strokes narrower than about a character, either polarity (or the one
    named: "light" paint on a dark door, "dark" on a light one).

    Top-hat / black-hat keep strokes narrower than the kernel and remove paint gradients, corrugation and
    shadows; the polarity with the stronger response is the stencil's.
    """
    import cv2
    import numpy as np

    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    k = max(5, int(0.7 * cw)) | 1
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    light = cv2.morphologyEx(gray, cv2.MORPH_TOPHAT, kernel)
    dark = cv2.morphologyEx(gray, cv2.MORPH_BLACKHAT, kernel)
    if polarity is None:
        resp = light if float(np.percentile(light, 95)) >= float(np.percentile(dark, 95)) else dark
    else:
        resp = light if polarity == "light" else dark
    # Threshold relative to the strongest strokes: Otsu splits corrugation texture when the ink is sparse.
    level = max(12.0, 0.45 * float(np.percentile(resp, 99)))
    bw: Any = (resp >= level).astype(np.uint8)
    return cv2.morphologyEx(bw, cv2.MORPH_OPEN, np.ones((2, 2), np.uint8))


def _cut_strip(bgr: Any, xm: float, ym: float, slope: float, cw: float) -> tuple[Any, tuple[float, float]]:
    """Cut a full-height strip about 2.2 characters wide along the axis through (xm, ym) with slope dx/dy, upright.

    Returns the strip and the image coordinates of its top-left corner (approximately: rotation is small).
    """
    import cv2
    import numpy as np

    img_h = bgr.shape[0]
    # Pivot on the axis at mid-height so the strip covers exactly the image's rows (no replicated border rows).
    xm, ym = xm + slope * (img_h / 2 - ym), img_h / 2
    angle = float(np.degrees(np.arctan(slope)))
    sw, sh = int(2.2 * cw), img_h
    rot = cv2.getRotationMatrix2D((xm, ym), -angle, 1.0)
    rot[0, 2] += sw / 2 - xm
    rot[1, 2] += sh / 2 - ym
    strip = cv2.warpAffine(bgr, rot, (sw, sh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return strip, (xm - sw / 2, ym - sh / 2)


def _segment(  # noqa: C901 - one scan over a strip's rows
    strip: Any, cw: float, seed_top: float, seed_bottom: float
) -> tuple[list[tuple[int, int, int, int]], set[int]]:
    """Cut an upright strip into character cells by the row profile of strokes, keeping the run of evenly spaced
    cells that overlaps the seed; also return the indices that follow a wide gap (code | size type)."""
    import numpy as np

    if strip.size == 0 or strip.shape[0] < 10 or strip.shape[1] < 4:
        return [], set()
    bw = ink_mask(strip, cw)
    # Keep the central band: the strip is about two characters wide to allow for the axis estimate.
    keep = np.zeros(bw.shape[1], dtype=bool)
    keep[int(0.1 * bw.shape[1]) : int(0.9 * bw.shape[1]) + 1] = True
    keep &= bw.mean(axis=0) < 0.7  # a full-height line (door edge, locking bar) is not a character
    if keep.sum() < 2:
        return [], set()
    xs = np.flatnonzero(keep)
    bw = bw[:, keep]
    profile = bw.sum(axis=1).astype(np.float32)
    smooth = np.convolve(profile, np.ones(3, dtype=np.float32) / 3, mode="same")
    n = len(profile)
    lo, hi = max(0, int(seed_top)), min(n, int(seed_bottom) + 1)
    if hi - lo < 3 * cw:
        return [], set()
    # Row pitch from the autocorrelation of the profile over the seed: stencilled rows are evenly spaced, and the
    # period survives broken strokes that would cut a character in two.
    seg = profile[lo:hi] - profile[lo:hi].mean()
    ac = np.correlate(seg, seg, mode="full")[len(seg) - 1 :]
    lag_lo, lag_hi = max(3, int(0.7 * cw)), min(len(ac) - 1, int(3.5 * cw))
    if lag_hi <= lag_lo:
        return [], set()
    pitch = float(lag_lo + int(np.argmax(ac[lag_lo : lag_hi + 1])))
    ink_min = max(2.0, 0.12 * float(np.percentile(profile[lo:hi], 90)) * pitch)

    def next_cut(at: float, step: float) -> int:
        """The emptiest row about one pitch from `at` (in the direction of `step`)."""
        a = int(at + step * 0.7 * pitch)
        b = int(at + step * 1.3 * pitch)
        a, b = sorted((min(max(a, 0), n - 1), min(max(b, 0), n - 1)))
        if b <= a:
            return -1
        return a + int(np.argmin(smooth[a : b + 1]))

    # Start at the emptiest row just above the first inked row of the seed, then walk the grid both ways.
    first_ink = lo + int(np.argmax(profile[lo:hi] > 0))
    start = max(0, first_ink - int(0.3 * pitch))
    start = start + int(np.argmin(smooth[start : first_ink + 1])) if first_ink > start else start
    cuts = [start]
    empty = 0
    while True:  # downwards; stop after two empty rows (one is allowed: code | size type)
        nxt = next_cut(cuts[-1], 1)
        if nxt <= cuts[-1] or nxt >= n - 1:
            break
        cuts.append(nxt)
        if profile[cuts[-2] : nxt].sum() < ink_min:
            empty += 1
            if empty >= 2:
                break
        else:
            empty = 0
    while True:  # upwards; stop at the first empty row
        prv = next_cut(cuts[0], -1)
        if prv < 0 or prv >= cuts[0] or profile[prv : cuts[0]].sum() < ink_min:
            break
        cuts.insert(0, prv)
    cells: list[tuple[int, int, int, int]] = []
    breaks: set[int] = set()
    pad = max(1, int(0.06 * pitch))
    gap_before = False
    for ya, yb in zip(cuts, cuts[1:], strict=False):
        block = bw[ya:yb]
        if block.sum() < ink_min:
            gap_before = bool(cells)
            continue
        cols = np.flatnonzero(block.any(axis=0))
        if gap_before:
            breaks.add(len(cells))
            gap_before = False
        cells.append(
            (
                max(0, int(xs[cols[0]]) - 2 * pad),
                max(0, ya - pad),
                min(strip.shape[1], int(xs[cols[-1]]) + 2 * pad + 1),
                min(strip.shape[0], yb + pad),
            )
        )
    return cells, breaks


def _relaid(strip: Any, cells: list[tuple[int, int, int, int]], breaks: set[int], height: int = 48) -> Any:
    """Cut each cell, scale it to `height`, and lay the cells left to right as one line of upright text."""
    import cv2
    import numpy as np

    pieces: list[Any] = []
    widest = max(c[2] - c[0] for c in cells)
    for k, (cx0, cy0, cx1, cy1) in enumerate(cells):
        # Every cell is as wide as the widest character so narrow ones (I, 1) keep their true proportions.
        mid = (cx0 + cx1) // 2
        cell = strip[cy0:cy1, max(0, mid - widest // 2) : mid + widest - widest // 2]
        if cell.size == 0:
            continue
        ch, cw = cell.shape[:2]
        new_w = max(4, int(round(cw * height / max(ch, 1))))
        cell = cv2.resize(cell, (new_w, height), interpolation=cv2.INTER_LINEAR)
        if pieces:
            pad_w = height if k in breaks else max(2, height // 8)
            pad = np.empty((height, pad_w, 3), dtype=np.uint8)
            pad[:] = np.median(cell[:, :2].reshape(-1, 3), axis=0).astype(np.uint8)
            pieces.append(pad)
        pieces.append(cell)
    if not pieces:
        return np.zeros((height, height, 3), dtype=np.uint8)
    return np.ascontiguousarray(np.hstack(pieces))
