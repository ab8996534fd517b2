"""Seeded generator of labelled synthetic gate images of container doors (for tests and the benchmark)."""

from __future__ import annotations

import io
import logging
import random
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from ocr import iso6346

__all__ = ["FONT_CANDIDATES", "LAYOUTS", "SynthSample", "available_fonts", "generate", "generate_set", "random_code"]

log = logging.getLogger(__name__)

LAYOUTS = ("horizontal", "two_line", "vertical")

#: Bold sans faces from Debian packages: fonts-dejavu-core, fonts-urw-base35, fonts-noto-mono, fonts-liberation.
#: Container stencils are bold sans or DIN-like; a mono face gives the wide spacing of many stencils.
FONT_CANDIDATES: dict[str, str] = {
    "DejaVuSans-Bold": "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "DejaVuSansCondensed-Bold": "/usr/share/fonts/truetype/dejavu/DejaVuSansCondensed-Bold.ttf",
    "DejaVuSansMono-Bold": "/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf",
    "NimbusSans-Bold": "/usr/share/fonts/opentype/urw-base35/NimbusSans-Bold.otf",
    "NimbusSansNarrow-Bold": "/usr/share/fonts/opentype/urw-base35/NimbusSansNarrow-Bold.otf",
    "NotoSansMono-Bold": "/usr/share/fonts/truetype/noto/NotoSansMono-Bold.ttf",
    "LiberationSans-Bold": "/usr/share/fonts/truetype/liberation/LiberationSans-Bold.ttf",
}
_FALLBACK_FONT = "pillow-default"

# Door paints (RGB) seen on the fleets of the big lines and lessors, and the stencil colour used on each.
_DOORS: list[tuple[tuple[int, int, int], tuple[int, int, int]]] = [
    ((150, 30, 28), (240, 240, 235)),  # maroon
    ((30, 60, 120), (245, 245, 245)),  # blue
    ((20, 90, 60), (240, 240, 240)),  # green
    ((120, 125, 130), (250, 250, 250)),  # grey
    ((200, 90, 30), (250, 250, 250)),  # orange
    ((225, 225, 220), (25, 25, 30)),  # white / light grey
    ((110, 70, 40), (240, 235, 225)),  # brown
    ((205, 170, 40), (30, 30, 30)),  # yellow
]
_OWNERS = ["MSC", "MAE", "CMA", "COS", "EVE", "HLX", "ONE", "OOL", "TGH", "TCL", "CAI", "TRL", "SEG", "GES", "BMO"]
_COMPANIES = ["MAERSK", "COSCO", "HAPAG-LLOYD", "CMA CGM", "EVERGREEN", "TRITON", "TEXTAINER", "SEACO", "ONE"]
_SIZE_TYPES = ["22G1", "42G1", "45G1", "22R1", "45R1", "L5G1", "22U1", "42P1"]

OUT_W, OUT_H = 800, 600

#: How the generated world departs from a clean door (probabilities and ranges), documented in docs/ocr.md.
#: Each image's draws are recorded in `SynthSample.params`.
WORLD: dict[str, Any] = {
    "check_box_p": 0.75,  # the check digit painted in a box, on every layout
    "check_box_far_p": 0.3,  # box 1-2 characters away from the serial (else 0.4-1.0)
    "check_box_own_line_p": 0.15,  # horizontal: box on the line under the serial's end
    "perspective_jitter": 0.08,  # corners moved up to 8 % of the image
    "roll_deg": 8.0,  # camera roll up to +-8 degrees
    "motion_blur_p": 0.3,
    "motion_blur_px": (3, 7),
    "rust_streaks": (0, 5),
    "paint_wear_p": 0.35,
    "paint_wear_alpha": (0.3, 0.55),  # how much of the paint a worn patch loses
    "dirt_blotches": (0, 6),
    "low_light_p": 0.2,
    "low_light_gain": (0.3, 0.6),
    "glare_p": 0.2,
    "glare_gain": (60, 140),
    "jpeg_quality": (30, 70),
    "lock_occlusion_p": 0.2,  # a lock handle over the edge of the code (<= 25 % of a character's height)
    "bar_in_gap_p": 0.1,  # a locking bar across the stencil gap between owner code and serial
    "corrugation_shadow_p": 0.4,
    "cctv_p": 0.3,  # shot at CCTV resolution: 55-85 % of the size, scaled back up
    "cctv_scale": (0.55, 0.85),
    "max_hard": 2,  # at most two of the hard conditions below in one image
}
_HARD = ("lock_occlusion", "paint_wear", "motion_blur", "low_light", "glare", "cctv")


@dataclass(frozen=True, slots=True)
class SynthSample:
    """One generated gate image with its ground truth (the code, the size type if drawn, the layout)."""

    seed: int
    layout: str
    code: str
    size_type: str | None
    font: str
    jpeg: bytes
    params: dict[str, Any] = field(default_factory=dict)


def random_code(rng: random.Random) -> str:
    """Return a random but well-formed ISO 6346 code: owner letters, U/J/Z, serial and the correct check digit.

    Serials whose check value is 10 (written as 0) are skipped, as ISO 6346 recommends owners do.
    """
    while True:
        if rng.random() < 0.5:
            owner = rng.choice(_OWNERS)
        else:
            owner = "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(3))
        category = "U" if rng.random() < 0.85 else rng.choice("JZ")
        serial = f"{rng.randrange(1_000_000):06d}"
        first10 = owner + category + serial
        if iso6346.check_value(first10) == 10:
            continue
        return first10 + iso6346.calc_check_digit(first10)


@cache
def available_fonts() -> tuple[str, ...]:
    """Names of the candidate fonts present on this machine (empty when none is: the generator then falls back)."""
    found = tuple(name for name, path in FONT_CANDIDATES.items() if Path(path).is_file())
    if not found:
        log.warning(
            "no TTF/OTF font found (install fonts-dejavu-core fonts-urw-base35 fonts-noto-mono); "
            "synthetic images fall back to Pillow's built-in font"
        )
    return found


def _font(name: str, size: int) -> Any:
    """Load a font by candidate name at `size` px, falling back to Pillow's built-in scalable font."""
    from PIL import ImageFont

    if name == _FALLBACK_FONT:
        return ImageFont.load_default(size=size)
    return ImageFont.truetype(FONT_CANDIDATES[name], size=size)


def _draw_text(
    draw: Any, x: float, y: float, text: str, font: Any, fill: Any, tracking: float
) -> tuple[int, int, int, int]:
    """Draw `text` one character at a time with extra spacing `tracking` (px); return its bounding box."""
    x0 = x
    top = bottom = None
    for ch in text:
        if ch == " ":
            x += font.getlength("0") * 0.9 + tracking
            continue
        bb = draw.textbbox((x, y), ch, font=font)
        draw.text((x, y), ch, font=font, fill=fill)
        top = bb[1] if top is None else min(top, bb[1])
        bottom = bb[3] if bottom is None else max(bottom, bb[3])
        x += font.getlength(ch) + tracking
    return (int(x0), int(top or y), int(x), int(bottom or y))


def _draw_box(draw: Any, bb: tuple[int, int, int, int], font: Any, fill: Any, tracking: float) -> None:
    """Paint the rectangle that owners put around the check digit."""
    pad = max(3, font.size // 7)
    draw.rectangle(
        (bb[0] - pad, bb[1] - pad, bb[2] - tracking + pad, bb[3] + pad), outline=fill, width=max(2, font.size // 14)
    )


def _draw_code_line(
    draw: Any,
    x: float,
    y: float,
    parts: list[str],
    font: Any,
    fill: Any,
    tracking: float,
    boxed_last: bool,
    gap: float,
    last_gap: float | None = None,
) -> tuple[tuple[int, int, int, int], list[tuple[int, int, int, int]]]:
    """Draw groups of a code separated by `gap` (`last_gap` before the last one), optionally boxing the last
    group (the check digit); return the line's bounding box and each group's."""
    x_start = x
    bbox = None
    boxes = []
    for i, part in enumerate(parts):
        if i == len(parts) - 1 and last_gap is not None and i > 0:
            x += last_gap - gap
        bb = _draw_text(draw, x, y, part, font, fill, tracking)
        if boxed_last and i == len(parts) - 1:
            _draw_box(draw, bb, font, fill, tracking)
        boxes.append(bb)
        bbox = bb if bbox is None else (bbox[0], min(bbox[1], bb[1]), bb[2], max(bbox[3], bb[3]))
        x = bb[2] + gap
    assert bbox is not None
    return (int(x_start), bbox[1], bbox[2], bbox[3]), boxes


def _door_background(rng: random.Random, w: int, h: int, colour: tuple[int, int, int]) -> Any:
    """Paint a corrugated door: vertical corrugation shading, a door seam, locking bars, rust and dirt."""
    import numpy as np

    xs = np.arange(w, dtype=np.float32)
    period = rng.uniform(28, 60)
    amp = rng.uniform(0.06, 0.2)
    shade = 1.0 + amp * np.sign(np.sin(2 * np.pi * xs / period)) * np.abs(np.sin(2 * np.pi * xs / period)) ** 0.5
    if rng.random() < WORLD["corrugation_shadow_p"]:
        # Low side light: every corrugation casts a hard shadow over part of the next one.
        phase = (xs / period) % 1.0
        depth = rng.uniform(0.2, 0.45)
        shade = shade * np.where(phase < rng.uniform(0.2, 0.4), 1.0 - depth, 1.0).astype(np.float32)
    img = np.empty((h, w, 3), dtype=np.float32)
    img[:] = np.array(colour, dtype=np.float32)
    img *= shade[None, :, None]
    # A vertical illumination gradient (sun from above, shadow under the canopy).
    grad = np.linspace(rng.uniform(0.85, 1.1), rng.uniform(0.75, 1.05), h, dtype=np.float32)
    img *= grad[:, None, None]
    return np.clip(img, 0, 255)


def generate(seed: int, layout: str | None = None, *, font: str | None = None) -> SynthSample:  # noqa: C901 - one image's drawing steps in order
    """Generate one labelled gate image from `seed` (same seed, same image, on a machine with the same fonts)."""
    import cv2
    import numpy as np
    from PIL import Image, ImageDraw

    rng = random.Random(seed)
    layout = layout or rng.choice(LAYOUTS)
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; expected one of {LAYOUTS}")
    fonts = available_fonts() or (_FALLBACK_FONT,)
    font_name = font or rng.choice(fonts)
    code = random_code(rng)
    size_type = rng.choice(_SIZE_TYPES) if rng.random() < 0.75 else None
    door, ink = rng.choice(_DOORS)
    # The hard conditions, each drawn with its probability; a photo rarely has more than two at once (a dark,
    # blurred, worn, half-covered code at CCTV resolution is unreadable to anyone), so at most `max_hard` stay.
    hard = {k for k in _HARD if rng.random() < WORLD[k + "_p"]}
    if len(hard) > WORLD["max_hard"]:
        hard = set(rng.sample(sorted(hard), WORLD["max_hard"]))

    # Draw at 1.5x the output size, then warp and shrink: anti-aliasing like a real lens.
    scale = 1.5
    w, h = int(OUT_W * scale), int(OUT_H * scale)
    bg = _door_background(rng, w, h, door)
    canvas = Image.fromarray(bg.astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(canvas)
    ink_rgb = tuple(int(c * rng.uniform(0.85, 1.0)) for c in ink)

    char_px = rng.randint(46, 66)
    fnt = _font(font_name, char_px)
    tracking = rng.uniform(0.05, 0.35) * char_px
    boxed = rng.random() < WORLD["check_box_p"]
    far = rng.random() < WORLD["check_box_far_p"]
    own_line = layout == "horizontal" and boxed and rng.random() < WORLD["check_box_own_line_p"]
    owner, serial, check = code[:4], code[4:10], code[10]
    occupied: list[tuple[int, int, int, int]] = []
    # Where a locking bar may cross the code (the stencil gap between owner code and serial), and the code's
    # character boxes (for partial occlusion by a lock).
    gap_x: tuple[int, int] | None = None

    if layout == "horizontal":
        gap = rng.uniform(0.4, 1.0) * char_px
        last_gap = rng.uniform(1.0, 2.0) * char_px if far else gap
        same_line = size_type is not None and rng.random() < 0.5
        # Place the line so that all of it (and a size type after it) is painted on the door.
        width = sum(fnt.getlength(c) + tracking for c in code) + 2 * gap + last_gap + 0.3 * char_px
        if same_line and size_type:
            width += 1.5 * char_px + sum(fnt.getlength(c) + tracking for c in size_type)
        x = rng.uniform(0.06 * w, max(0.06 * w, 0.95 * w - width))
        y = rng.uniform(0.06, 0.22) * h
        parts = [owner, serial] if own_line else [owner, serial, check]
        bb, part_boxes = _draw_code_line(
            draw, x, y, parts, fnt, ink_rgb, tracking, boxed and not own_line, gap, last_gap
        )
        gap_x = (part_boxes[0][2], part_boxes[1][0])
        occupied.append(bb)
        below_y = bb[3] + 0.5 * char_px
        if own_line:
            # The boxed check digit on its own, under the serial's last character.
            cb = _draw_text(draw, bb[2] - fnt.getlength(check) - tracking, below_y, check, fnt, ink_rgb, tracking)
            _draw_box(draw, cb, fnt, ink_rgb, tracking)
            occupied.append((cb[0] - 8, cb[1] - 8, cb[2] + 8, cb[3] + 8))
            below_y = cb[3] + 0.6 * char_px
        if size_type:
            if same_line:
                bb2 = _draw_text(draw, bb[2] + 1.5 * char_px, y, size_type, fnt, ink_rgb, tracking)
            else:
                bb2 = _draw_text(draw, x, below_y, size_type, fnt, ink_rgb, tracking)
            occupied.append(bb2)
    elif layout == "two_line":
        x, y = rng.uniform(0.06, 0.5) * w, rng.uniform(0.06, 0.2) * h
        bb = _draw_text(draw, x, y, owner, fnt, ink_rgb, tracking)
        g = rng.uniform(0.4, 0.9) * char_px
        bb2, _ = _draw_code_line(
            draw,
            x,
            bb[3] + 0.45 * char_px,
            [serial, check],
            fnt,
            ink_rgb,
            tracking,
            boxed,
            g,
            rng.uniform(1.0, 2.0) * char_px if far else g,
        )
        occupied += [bb, bb2]
        if size_type:
            occupied.append(_draw_text(draw, x, bb2[3] + 0.6 * char_px, size_type, fnt, ink_rgb, tracking))
    else:
        # One character per row, centred on the column, near a door edge; the check digit may be boxed.
        left = rng.random() < 0.5
        cx = (rng.uniform(0.05, 0.1) if left else rng.uniform(0.9, 0.95)) * w
        y = rng.uniform(0.03, 0.06) * h
        col_top = y
        char_px = rng.randint(34, 44)
        fnt = _font(font_name, char_px)
        row = char_px * rng.uniform(1.1, 1.25)
        column = list(code) + ([" "] + list(size_type) if size_type else [])
        x0s, x1s = [], []
        for k, ch in enumerate(column):
            if ch != " ":
                cw = fnt.getlength(ch)
                if k == 10 and boxed:
                    y += 0.25 * char_px  # room for the box's top edge
                draw.text((cx - cw / 2, y), ch, font=fnt, fill=ink_rgb)
                if k == 10 and boxed:
                    tb = draw.textbbox((cx - cw / 2, y), ch, font=fnt)
                    _draw_box(draw, (int(tb[0]), int(tb[1]), int(tb[2]), int(tb[3])), fnt, ink_rgb, 0.0)
                    y += 0.25 * char_px
                x0s.append(cx - cw / 2)
                x1s.append(cx + cw / 2)
            y += row
        occupied.append((int(min(x0s)) - 6, int(col_top), int(max(x1s)) + 6, int(y)))

    # Locking bars and the door seam: long vertical dark structures in front of the door, which the detector
    # must ignore. Owners paint the code between the rods, so bars never cross the code (they may cross the rest).
    code_boxes = list(occupied)
    n_bars = rng.randint(2, 4)
    for _attempt in range(40):
        if n_bars == 0:
            break
        rod_x = rng.randint(int(0.15 * w), int(0.95 * w))
        rod_w = rng.randint(10, 18)
        if not any(_overlap((rod_x, 0, rod_x + rod_w, h), o, 6) for o in code_boxes):
            draw.rectangle((rod_x, 0, rod_x + rod_w, h), fill=(60, 60, 62))
            n_bars -= 1
    for _attempt in range(40):
        seam = rng.randint(int(0.4 * w), int(0.6 * w))
        if not any(_overlap((seam - 3, 0, seam + 3, h), o, 6) for o in code_boxes):
            draw.line((seam, 0, seam, h), fill=(20, 20, 20), width=6)
            break
    # Partial occlusion: a locking bar in the stencil gap between owner code and serial, a lock handle over the
    # edge of the code (at most a quarter of a character's height, or a fifth of a column's width).
    bar_in_gap = False
    if gap_x is not None and rng.random() < WORLD["bar_in_gap_p"] and gap_x[1] - gap_x[0] >= 16:
        rod_w = min(18, gap_x[1] - gap_x[0] - 6)
        mid = (gap_x[0] + gap_x[1]) // 2
        draw.rectangle((mid - rod_w // 2, 0, mid + rod_w // 2, h), fill=(60, 60, 62))
        bar_in_gap = True
    lock = "lock_occlusion" in hard
    if lock:
        cb = code_boxes[0] if layout != "two_line" else code_boxes[rng.randrange(2)]
        metal = (70, 72, 76)
        if layout == "vertical":
            lw, lh = int(rng.uniform(0.8, 1.4) * char_px), int(rng.uniform(1.0, 2.0) * char_px)
            over = int(rng.uniform(0.05, 0.15) * (cb[2] - cb[0] - 12))
            ly = rng.randint(cb[1], max(cb[1] + 1, cb[3] - lh))
            lx = cb[2] - 6 - over if cx < w / 2 else cb[0] + 6 + over - lw
        else:
            lw, lh = int(rng.uniform(0.6, 1.2) * char_px), int(rng.uniform(0.9, 1.6) * char_px)
            over = int(rng.uniform(0.05, 0.25) * (cb[3] - cb[1]))
            lx = rng.randint(cb[0], max(cb[0] + 1, cb[2] - lw))
            # Over the bottom edge (hanging down), or over the top edge; the owner line of a two-line code is
            # only ever covered from above, or the lock would hide the serial under it.
            from_below = rng.random() < 0.6 and not (layout == "two_line" and cb is code_boxes[0])
            ly = cb[3] - over if from_below else cb[1] + over - lh
        draw.rectangle((lx, ly, lx + lw, ly + lh), fill=metal, outline=(40, 40, 42), width=3)
        draw.rectangle((lx + lw // 4, ly + lh // 4, lx + 3 * lw // 4, ly + 3 * lh // 4), fill=(95, 97, 100))

    # Distractor blocks: the weight plate, cubic capacity, the operator's name. Placed where the code is not.
    blocks: list[list[str]] = []
    if rng.random() < 0.9:
        gross = rng.randint(30000, 32500)
        tare = rng.randint(2200, 4200)
        zero = "0" if rng.random() < 0.5 else "O"  # MAX.GR0SS with a zero is common, and a classic fake-code source
        blocks.append(
            [
                f"MAX.GR{zero}SS {gross:,} KG",
                f"{int(gross * 2.2046):,} LB",
                f"TARE {tare:,} KG",
                f"{int(tare * 2.2046):,} LB",
                f"NET {gross - tare:,} KG",
            ]
        )
    if rng.random() < 0.6:
        blocks.append([f"CU.CAP. {rng.uniform(33, 77):.1f} CU.M", f"{rng.randint(1170, 2700):,} CU.FT"])
    if rng.random() < 0.5:
        blocks.append([rng.choice(_COMPANIES)])
    small = _font(font_name, max(22, int(char_px * rng.uniform(0.45, 0.6))))
    for lines in blocks:
        for _attempt in range(20):
            bx = rng.uniform(0.15, 0.7) * w
            by = rng.uniform(0.3, 0.85) * h
            bw = max(small.getlength(t) for t in lines) * 1.15
            bh = len(lines) * small.size * 1.3
            rect = (int(bx), int(by), int(bx + bw), int(by + bh))
            if rect[2] < w and rect[3] < h and not any(_overlap(rect, o, 20) for o in occupied):
                for i, t in enumerate(lines):
                    _draw_text(draw, bx, by + i * small.size * 1.3, t, small, ink_rgb, small.size * 0.05)
                occupied.append(rect)
                break

    arr: Any = np.asarray(canvas).astype(np.float32)
    # Paint wear: the stencil and the door paint rubbed off in patches (low-frequency noise, blended back to
    # the bare door).
    wear = "paint_wear" in hard
    if wear:
        nrng_w = np.random.default_rng(seed + 7)
        low = nrng_w.random((max(2, h // 24), max(2, w // 24))).astype(np.float32)
        field_ = cv2.resize(low, (w, h), interpolation=cv2.INTER_CUBIC)
        level = rng.uniform(0.55, 0.75)
        alpha = np.clip((field_ - level) * 4.0, 0.0, 1.0) * rng.uniform(*WORLD["paint_wear_alpha"])
        arr = arr * (1 - alpha[:, :, None]) + bg * alpha[:, :, None]
    # Rust streaks running down from the top rail and rivets.
    n_rust = rng.randint(*WORLD["rust_streaks"])
    rust = np.array((120, 60, 25), dtype=np.float32)
    fade = np.linspace(1.0, 0.2, h, dtype=np.float32)[:, None]
    for _ in range(n_rust):
        rx, ry = rng.randrange(w), rng.randrange(int(0.6 * h))
        rw, rl = rng.randint(3, 15), rng.randint(int(0.1 * h), int(0.6 * h))
        sigma = max(1.0, rw / 2)
        opacity = rng.uniform(0.2, 0.6)
        # Blurred in its own neighbourhood only (a full-image blur per streak made the generator slow).
        m = int(3 * sigma) + 1
        x0, y0, x1, y1 = max(0, rx - m), max(0, ry - m), min(w, rx + rw + m + 1), min(h, ry + rl + m + 1)
        streak: Any = np.zeros((y1 - y0, x1 - x0), dtype=np.float32)
        cv2.rectangle(streak, (rx - x0, ry - y0), (rx + rw - x0, min(h - 1, ry + rl) - y0), 1.0, -1)
        streak = cv2.GaussianBlur(streak, (0, 0), sigma) * fade[y0:y1] * opacity
        roi = arr[y0:y1, x0:x1]
        arr[y0:y1, x0:x1] = roi * (1 - streak[:, :, None]) + rust * streak[:, :, None]
    # Dirt: soft dark blotches with random opacity.
    for _ in range(rng.randint(*WORLD["dirt_blotches"])):
        cx_, cy_ = rng.randrange(w), rng.randrange(h)
        rad = rng.randint(10, 60)
        m = 2 * rad
        x0, y0, x1, y1 = max(0, cx_ - m), max(0, cy_ - m), min(w, cx_ + m + 1), min(h, cy_ + m + 1)
        mask: Any = np.zeros((y1 - y0, x1 - x0), dtype=np.float32)
        cv2.circle(mask, (cx_ - x0, cy_ - y0), rad, 1.0, -1)
        mask = cv2.GaussianBlur(mask, (0, 0), rad / 2)
        arr[y0:y1, x0:x1] *= (1 - 0.35 * rng.random() * mask)[:, :, None]

    # Camera: perspective (corners jittered up to 5%), a small roll, then resize to the output size.
    # The gate camera is aimed so the code is in frame: warps that would push a corner of the code (or the
    # column) out of the picture are drawn again, and after ten tries the code is shot straight on.
    corners = np.array(
        [[x, y] for b in code_boxes for x, y in ((b[0], b[1]), (b[2], b[1]), (b[2], b[3]), (b[0], b[3]))],
        dtype=np.float32,
    ).reshape(-1, 1, 2)
    src = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float32)
    angle = 0.0
    mat: Any = np.eye(3)
    for _attempt in range(10):
        jit = WORLD["perspective_jitter"]
        dst = src + np.array(
            [[rng.uniform(-jit, jit) * w, rng.uniform(-jit, jit) * h] for _ in range(4)], dtype=np.float32
        )
        angle = rng.uniform(-WORLD["roll_deg"], WORLD["roll_deg"])
        rot = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
        dst = (np.hstack([dst, np.ones((4, 1), np.float32)]) @ rot.T).astype(np.float32)
        cand = cv2.getPerspectiveTransform(src, dst)
        moved = cv2.perspectiveTransform(corners, cand).reshape(-1, 2)
        if (
            moved[:, 0].min() >= 0.01 * w
            and moved[:, 0].max() <= 0.99 * w
            and moved[:, 1].min() >= 0.01 * h
            and moved[:, 1].max() <= 0.99 * h
        ):
            mat = cand
            break
    else:
        angle = 0.0
    # Where the warp leaves the frame uncovered, the camera sees more of the same door (not a mirror image of
    # its markings, which would put stray text at the image edges).
    arr = cv2.warpPerspective(arr, mat, (w, h), borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
    cover = cv2.warpPerspective(np.ones((h, w), np.float32), mat, (w, h), borderMode=cv2.BORDER_CONSTANT)
    arr = arr * cover[:, :, None] + bg.astype(np.float32) * (1.0 - cover[:, :, None])
    arr = cv2.resize(arr, (OUT_W, OUT_H), interpolation=cv2.INTER_AREA)
    blur = rng.uniform(0.0, 1.3)
    if blur > 0.3:
        arr = cv2.GaussianBlur(arr, (0, 0), blur)
    motion = 0
    if "motion_blur" in hard:
        # The truck moves while the shutter is open: a line kernel, mostly along the road.
        motion = rng.randint(*WORLD["motion_blur_px"])
        kernel: Any = np.zeros((motion, motion), dtype=np.float32)
        kernel[motion // 2, :] = 1.0
        rot_k = cv2.getRotationMatrix2D(((motion - 1) / 2, (motion - 1) / 2), rng.uniform(-25, 25), 1.0)
        kernel = cv2.warpAffine(kernel, rot_k, (motion, motion))
        arr = cv2.filter2D(arr, -1, kernel / max(float(kernel.sum()), 1e-6))
    light = 1.0
    if "low_light" in hard:
        light = rng.uniform(*WORLD["low_light_gain"])
        arr = arr * light
    glare = 0.0
    if "glare" in hard:
        # A reflection of the sun or a floodlight: a bright soft ellipse that washes the paint out.
        glare = rng.uniform(*WORLD["glare_gain"])
        gm: Any = np.zeros((OUT_H, OUT_W), dtype=np.float32)
        axes = (rng.randint(60, 260), rng.randint(40, 160))
        cv2.ellipse(gm, (rng.randrange(OUT_W), rng.randrange(OUT_H)), axes, rng.uniform(0, 180), 0, 360, 1.0, -1)
        gm = cv2.GaussianBlur(gm, (0, 0), max(axes) / 3)
        arr = arr + glare * gm[:, :, None]
    cctv = 1.0
    if "cctv" in hard:
        cctv = rng.uniform(*WORLD["cctv_scale"])
        small_img = cv2.resize(arr, (int(OUT_W * cctv), int(OUT_H * cctv)), interpolation=cv2.INTER_AREA)
        arr = cv2.resize(small_img, (OUT_W, OUT_H), interpolation=cv2.INTER_LINEAR)
    noise = rng.uniform(0, 9) / max(light, 0.5)  # sensor gain in the dark
    nrng = np.random.default_rng(seed)
    arr = arr + nrng.normal(0, noise, arr.shape).astype(np.float32)
    out = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")
    quality = rng.randint(*WORLD["jpeg_quality"])
    buf = io.BytesIO()
    out.save(buf, format="JPEG", quality=quality)
    params = {
        "door": door,
        "char_px": char_px,
        "boxed_check": boxed,
        "check_box_far": boxed and far and not own_line,
        "check_box_own_line": own_line,
        "motion_blur_px": motion,
        "paint_wear": wear,
        "rust_streaks": n_rust,
        "light_gain": light,
        "glare": glare,
        "lock": lock,
        "bar_in_gap": bar_in_gap,
        "cctv_scale": cctv,
        "angle": angle,
        "blur": blur,
        "noise": noise,
        "quality": quality,
        "distractors": len(blocks),
    }
    return SynthSample(seed, layout, code, size_type, font_name, buf.getvalue(), params)


def _overlap(a: tuple[int, ...], b: tuple[int, ...], margin: int) -> bool:
    """Whether rectangles a and b (x0, y0, x1, y1) come within `margin` px of each other."""
    return not (a[2] + margin < b[0] or b[2] + margin < a[0] or a[3] + margin < b[1] or b[3] + margin < a[1])


def generate_set(n: int, seed: int = 0) -> list[SynthSample]:
    """Generate `n` samples with layouts in equal turns, each from a seed derived from `seed`."""
    return [generate(seed * 1_000_003 + i, LAYOUTS[i % len(LAYOUTS)]) for i in range(n)]
