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
    if min(float(s.mean()) for s in sides) < 0.85:
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


def find_check_box(bgr: Any, box: tuple[float, float, float, float], h: float) -> CheckBox | None:
    """Look for a check-digit box near a code whose serial ends at `box`'s right edge (`h`: the line's height).

    The search covers the row to the right (the box may sit up to about two characters away, or the detector's
    line may already include it) and the area under the serial's end (a box on its own line). A candidate is a
    closed contour about one character in size, inked on its four sides and hollow inside; the nearest to the
    serial's end wins.
    """
    import cv2
    import numpy as np

    from ocr.columns import ink_mask

    h_img, w_img = bgr.shape[:2]
    best: tuple[float, CheckBox] | None = None
    for ax0, ay0, ax1, ay1 in _areas(box, h, w_img, h_img):
        crop = bgr[ay0:ay1, ax0:ax1]
        # The kernel must be wider than the box's edges and the digit's strokes, not than the whole box.
        mask = ink_mask(crop, 0.9 * h)
        contours, _ = cv2.findContours(mask, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
        for cnt in contours:
            x, y, w, hh = cv2.boundingRect(cnt)
            if not (0.55 * h <= hh <= 1.9 * h and 0.3 * h <= w <= 1.5 * h and 0.4 <= w / hh <= 1.15):
                continue
            thick = _frame_ok(mask, x, y, w, hh)
            if thick is None:
                continue
            m = thick + max(1, int(0.04 * hh))
            inside = crop[y + m : y + hh - m, x + m : x + w - m]
            if inside.shape[0] < 6 or inside.shape[1] < 4:
                continue
            pad = max(3, int(0.2 * inside.shape[0]))
            inside = np.ascontiguousarray(
                cv2.copyMakeBorder(inside, pad // 2, pad // 2, pad, pad, cv2.BORDER_REPLICATE)
            )
            rect = (ax0 + x, ay0 + y, ax0 + x + w, ay0 + y + hh)
            dist = abs(rect[0] - box[2]) + abs((rect[1] + rect[3]) / 2 - (box[1] + box[3]) / 2)
            if best is None or dist < best[0]:
                best = (dist, CheckBox(rect, inside))
    return best[1] if best else None


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
