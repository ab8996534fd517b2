"""The painted box around a check digit: find it next to the serial by a contour search, cut out its inside.

On real doors the check digit stands in a painted rectangle, often a character or more away from the serial and
sometimes on the line below it. The detector then cuts it off the line, or reads its edges as "1", "I" or "[".
The box is looked for geometrically (a closed, hollow contour of about one character's size) to the right of the
serial and under its end; its inside is recognised on its own, and the box tells where the code ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["CheckBox", "find_check_box", "one_digit"]


@dataclass(frozen=True, slots=True)
class CheckBox:
    """A box found in the image: its bounds (image pixels) and its inside, cut out and padded for the recogniser."""

    rect: tuple[int, int, int, int]
    inside: Any  # BGR


def _areas(box: tuple[float, float, float, float], h: float, w_img: int, h_img: int) -> list[tuple[int, int, int, int]]:
    """Where a check-digit box can be: right of the serial's end on its row, or under the serial's end."""
    x0, y0, x1, y1 = box
    right = (x1 - 1.2 * h, y0 - 0.6 * h, x1 + 3.5 * h, y1 + 0.6 * h)
    below = (x1 - 3.0 * h, y1 - 0.2 * h, x1 + 1.5 * h, y1 + 2.4 * h)
    out = []
    for a in (right, below):
        ax0, ay0 = max(0, int(a[0])), max(0, int(a[1]))
        ax1, ay1 = min(w_img, int(a[2])), min(h_img, int(a[3]))
        if ax1 - ax0 >= 8 and ay1 - ay0 >= 8:
            out.append((ax0, ay0, ax1, ay1))
    return out


def _frame_ok(mask: Any, x: int, y: int, w: int, h: int) -> int | None:
    """If the rectangle (x, y, w, h) of `mask` is outlined by ink on all four sides and hollow inside, return the
    thickness of its edges; else None."""
    import numpy as np

    sub = mask[y : y + h, x : x + w]
    t = max(2, int(round(0.14 * min(w, h))))
    sides = (sub[:t].any(axis=0), sub[-t:].any(axis=0), sub[:, :t].any(axis=1), sub[:, -t:].any(axis=1))
    if min(float(s.mean()) for s in sides) < 0.8:
        return None
    # Edge thickness: how far in the ink of the left and right sides reaches on most rows.
    thick = 1
    for k in range(1, max(2, w // 4)):
        if float(sub[h // 4 : 3 * h // 4, k].mean()) < 0.5 and float(sub[h // 4 : 3 * h // 4, w - 1 - k].mean()) < 0.5:
            thick = k
            break
    inner = sub[thick + 1 : h - thick - 1, thick + 1 : w - thick - 1]
    if inner.size == 0:
        return None
    fill = float(np.mean(inner))
    # Hollow: a digit inside covers a fraction of it; a solid blob (or a character's own outline) does not qualify.
    if not 0.04 <= fill <= 0.55:
        return None
    return thick


def find_check_box(
    bgr: Any, box: tuple[float, float, float, float], h: float, *, vertical: bool = False
) -> CheckBox | None:
    """Look for a check-digit box near a code whose serial ends at `box`'s right edge (`h`: the line's height).

    The search covers the row to the right (the box may sit up to about two characters away, or the detector's
    line may already include it) and the area under the serial's end (a box on its own line). A candidate is a
    closed contour about one character in size, inked on its four sides and hollow inside; the nearest to the
    serial's end wins. With `vertical`, `box` is a column of one character per row and the box is looked for
    inside it (`h`: about one character's height).
    """
    import cv2
    import numpy as np

    from ocr.columns import ink_mask

    h_img, w_img = bgr.shape[:2]
    best: tuple[float, CheckBox] | None = None
    if vertical:
        x0, y0, x1, y1 = box
        areas = [(max(0, int(x0 - 0.3 * h)), max(0, int(y0)), min(w_img, int(x1 + 0.3 * h)), min(h_img, int(y1)))]
    else:
        areas = _areas(box, h, w_img, h_img)
    # Both polarities: in a dark or noisy picture the corrugation can outweigh the paint in the automatic choice.
    for (ax0, ay0, ax1, ay1), polarity in [(a, p) for a in areas for p in ("light", "dark")]:
        crop = bgr[ay0:ay1, ax0:ax1]
        # The kernel must be wider than the box's edges and the digit's strokes, not than the whole box.
        mask = ink_mask(crop, 0.9 * h, polarity)
        contours, _ = cv2.findContours(mask, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
        for cnt in contours:
            x, y, w, hh = cv2.boundingRect(cnt)
            if not (0.5 * h <= hh <= 2.2 * h and 0.3 * h <= w <= 1.6 * h and 0.4 <= w / hh <= 1.2):
                continue
            # Rectify the contour's minimum-area rectangle (the camera rolls the box a few degrees); a painted
            # box fills it, a round character (0, 8, O) does not.
            (rcx, rcy), (rw, rh), ang = cv2.minAreaRect(cnt)
            if rw < 4 or rh < 4 or cv2.contourArea(cnt) < 0.85 * rw * rh:
                continue
            pts = _ordered(cv2.boxPoints(((rcx, rcy), (rw, rh), ang)))
            tw = int(round(float(np.linalg.norm(pts[1] - pts[0]))))
            th = int(round(float(np.linalg.norm(pts[3] - pts[0]))))
            if tw < 4 or th < 6:
                continue
            dst = np.array([[0, 0], [tw - 1, 0], [tw - 1, th - 1], [0, th - 1]], dtype=np.float32)
            warp = cv2.getPerspectiveTransform(pts.astype(np.float32), dst)
            rmask = cv2.warpPerspective(mask, warp, (tw, th), flags=cv2.INTER_NEAREST)
            thick = _frame_ok(rmask, 0, 0, tw, th)
            if thick is None:
                continue
            rcrop = cv2.warpPerspective(crop, warp, (tw, th), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            m = thick + max(1, int(0.06 * th))
            inside = rcrop[m : th - m, m : tw - m]
            if inside.shape[0] < 6 or inside.shape[1] < 4:
                continue
            pad = max(3, int(0.2 * inside.shape[0]))
            inside = np.ascontiguousarray(
                cv2.copyMakeBorder(inside, pad // 2, pad // 2, pad, pad, cv2.BORDER_REPLICATE)
            )
            rect = (ax0 + x, ay0 + y, ax0 + x + w, ay0 + y + hh)
            if vertical:
                dist = abs((rect[0] + rect[2]) / 2 - (box[0] + box[2]) / 2)
            else:
                dist = abs(rect[0] - box[2]) + abs((rect[1] + rect[3]) / 2 - (box[1] + box[3]) / 2)
            if best is None or dist < best[0]:
                best = (dist, CheckBox(rect, inside))
    if best is None and vertical and areas:
        return _widest_cell(bgr, areas[0], h)
    return best[1] if best else None


def _widest_cell(bgr: Any, area: tuple[int, int, int, int], h: float) -> CheckBox | None:
    """In a column too small for the box's thin edges to survive the stroke mask, the box (with its digit) is
    still the widest blob of the column: take it when it is clearly wider than the characters."""
    import cv2
    import numpy as np

    from ocr.columns import ink_mask

    ax0, ay0, ax1, ay1 = area
    crop = bgr[ay0:ay1, ax0:ax1]
    mask = ink_mask(crop, 0.9 * h)
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cells = [cv2.boundingRect(c) for c in contours]
    cells = [c for c in cells if 0.4 * h <= c[3] <= 1.6 * h and c[2] <= 1.6 * h]
    if len(cells) < 6:
        return None
    widths = sorted(c[2] for c in cells)
    median = widths[len(widths) // 2]
    x, y, w, hh = max(cells, key=lambda c: c[2])
    if w < 1.4 * median or not 0.75 <= w / hh <= 1.3:
        return None
    m = max(2, int(0.15 * hh))
    inside = crop[y + m : y + hh - m, x + m : x + w - m]
    if inside.shape[0] < 6 or inside.shape[1] < 4:
        return None
    pad = max(3, int(0.2 * inside.shape[0]))
    inside = np.ascontiguousarray(cv2.copyMakeBorder(inside, pad // 2, pad // 2, pad, pad, cv2.BORDER_REPLICATE))
    return CheckBox((ax0 + x, ay0 + y, ax0 + x + w, ay0 + y + hh), inside)


def _ordered(pts: Any) -> Any:
    """Corners of a rectangle as top-left, top-right, bottom-right, bottom-left."""
    import numpy as np

    pts = np.asarray(pts, dtype=np.float32)
    s = pts.sum(axis=1)
    d = np.diff(pts, axis=1).ravel()
    return np.array([pts[np.argmin(s)], pts[np.argmin(d)], pts[np.argmax(s)], pts[np.argmax(d)]], dtype=np.float32)


def one_digit(text: str, probs: tuple[float, ...], min_prob: float = 0.8) -> tuple[str, float] | None:
    """The one confident digit read inside a box (edges left in the crop, read as I, L or 1, are dropped)."""
    chars = [(ch, p) for ch, p in zip(text, probs, strict=False) if ch != " "]
    while len(chars) > 1 and chars[0][0] in "IL1":
        chars = chars[1:]
    while len(chars) > 1 and chars[-1][0] in "IL1":
        chars = chars[:-1]
    if len(chars) == 1 and chars[0][0].isdigit() and chars[0][1] >= min_prob:
        return chars[0]
    return None
