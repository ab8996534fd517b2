"""From recognised text lines to container-code candidates: layout-aware, token-aligned, never a sliding window."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from ocr import iso6346

__all__ = [
    "LOOKALIKES",
    "MIN_VERIFY_PROB",
    "Candidate",
    "Line",
    "boxed_digit",
    "find_codes",
    "group_rows",
    "rank",
    "size_type_in",
    "status_of",
    "trustworthy",
    "with_check_digit",
]

STATUSES = ("verified", "corrected", "check_digit_computed", "failed")
# How much a status lowers the reported confidence: anything not verified goes to an officer anyway, and a failed
# check digit means at least one character is wrong.
_STATUS_FACTOR = {"verified": 1.0, "corrected": 0.85, "check_digit_computed": 0.6, "failed": 0.25}
# Inside a code, the recogniser may put a space only where stencils leave one: MSC U 123456 7 / MSCU 123456 7.
_ALLOWED_BREAKS = frozenset({3, 4, 10})


@dataclass
class Line:
    """A recognised text line: its text (A-Z, 0-9, spaces), per-character probabilities and axis-aligned box."""

    text: str
    probs: tuple[float, ...]
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in image pixels
    vertical: bool = False
    #: Text height measured across the (possibly tilted) box, and the line's tilt dy/dx; the axis-aligned box
    #: of a long tilted line is much taller than its text.
    th: float | None = None
    slope: float = 0.0
    #: For a row joined from several boxes: (characters so far, right edge x) after each box.
    ends: tuple[tuple[int, float], ...] = ()

    def x_after(self, n_chars: int) -> float:
        """Right edge of the `n_chars`-th character: the edge of the detector box that holds it, or, inside a box
        holding more characters (a code run on into its size type), that box's edge interpolated by characters."""
        if self.vertical:
            return self.box[2]
        prev_count, prev_x = 0, self.box[0]
        ends = self.ends or ((len(self.text.replace(" ", "")), self.box[2]),)
        for count, x in ends:
            if count >= n_chars:
                if count == n_chars or count <= prev_count:
                    return x
                return prev_x + (x - prev_x) * (n_chars - prev_count) / (count - prev_count)
            prev_count, prev_x = count, x
        return self.box[2]

    @property
    def height(self) -> float:
        """Character height: the tilted box's short side when known, else the short side of the bounds."""
        if self.th is not None:
            return self.th
        x0, y0, x1, y1 = self.box
        return min(x1 - x0, y1 - y0)

    @property
    def centre(self) -> tuple[float, float]:
        """Centre of the bounds."""
        x0, y0, x1, y1 = self.box
        return (x0 + x1) / 2, (y0 + y1) / 2

    def offset_of(self, other: Line) -> float:
        """How far `other`'s centre lies below this line's axis (negative: above), in pixels."""
        cx, cy = self.centre
        ox, oy = other.centre
        return oy - (cy + self.slope * (ox - cx))

    def tokens(self) -> list[tuple[str, tuple[float, ...]]]:
        """Split into (characters, probabilities) at spaces."""
        out: list[tuple[str, tuple[float, ...]]] = []
        cur, cur_p = "", cast(tuple[float, ...], ())
        for ch, p in zip(self.text, self.probs, strict=False):
            if ch == " ":
                if cur:
                    out.append((cur, cur_p))
                cur, cur_p = "", ()
            else:
                cur, cur_p = cur + ch, (*cur_p, p)
        if cur:
            out.append((cur, cur_p))
        return out


@dataclass(frozen=True)
class Candidate:
    """A code found in the text, with how it was read."""

    code: str
    status: str
    confidence: float
    changes: int
    layout: str
    size_type: str | None
    raw: str
    #: Box of the line that holds the serial (where a missing check digit would follow), image pixels.
    box: tuple[float, float, float, float] | None = None
    probs: tuple[float, ...] = ()
    #: Which stage of the reader produced it (see `ocr.reader.PATHS`).
    path: str = "fast"


#: A reading that passes its check digit is evidence only if it was read with some confidence: a garbage read of a
#: dark image passes by chance about one time in eleven (seen: GESU7382846 "verified" for GESU7540664, every
#: character below 0.6). One unsure character is covered by the check digit (a single wrong digit, or a wrong
#: letter other than the look-alikes below, always fails it); two or more below this probability are not.
MIN_VERIFY_PROB = 0.4
#: Owner letters the check digit cannot tell apart (their values differ by 11) that also look alike: misreading
#: one as the other leaves the check digit right (seen: MZBU4486243 "verified" for WZBU4486243). Read below
#: `MIN_LOOKALIKE_PROB`, a reading with one of them is not reported as passing.
LOOKALIKES = {"M": "W", "W": "M", "G": "Q", "Q": "G", "F": "P", "P": "F"}
MIN_LOOKALIKE_PROB = 0.8


def trustworthy(c: Candidate) -> bool:
    """Whether a candidate may be reported: any reading that failed or was not checked, and a passing one only
    when at most one character was read below MIN_VERIFY_PROB and no owner letter that has an undetectable
    look-alike was read below MIN_LOOKALIKE_PROB."""
    if c.status not in ("verified", "corrected"):
        return True
    if not c.probs or sum(p < MIN_VERIFY_PROB for p in c.probs) > 1:
        return False
    return all(
        not (ch in LOOKALIKES and p < MIN_LOOKALIKE_PROB) for ch, p in zip(c.code[:4], c.probs[:4], strict=False)
    )


def status_of(rep: iso6346.Repair) -> str:
    """Map a repair to one of the four statuses."""
    if not rep.check_read:
        return "check_digit_computed"
    if rep.check_ok:
        return "verified" if rep.changes == 0 else "corrected"
    return "failed"


def _candidate(
    raw_parts: list[tuple[str, tuple[float, ...]]], layout: str, size_type: str | None, box: tuple[float, ...] | None
) -> Candidate | None:
    """Turn consecutive tokens into a candidate when they read as a code with breaks only where stencils have them."""
    pos = 0
    for text, _ in raw_parts[:-1]:
        pos += len(text)
        if pos not in _ALLOWED_BREAKS:
            return None
    raw = "".join(t for t, _ in raw_parts)
    rep = iso6346.repair(raw)
    if rep is None:
        return None
    probs = [p for _, ps in raw_parts for p in ps]
    status = status_of(rep)
    conf = (min(probs) if probs else 0.0) * _STATUS_FACTOR[status]
    bx = (box[0], box[1], box[2], box[3]) if box is not None else None
    return Candidate(rep.code, status, round(conf, 4), rep.changes, layout, size_type, raw, bx, tuple(probs))


def with_check_digit(c: Candidate, digit: str, prob: float, path: str | None = None) -> Candidate | None:
    """The candidate completed with a check digit read separately (a boxed digit the detector missed)."""
    rep = iso6346.repair(c.raw[:10] + digit)
    if rep is None:
        return None
    status = status_of(rep)
    probs = (*c.probs[:10], prob)
    conf = min(probs) * _STATUS_FACTOR[status]
    return Candidate(
        rep.code,
        status,
        round(conf, 4),
        rep.changes,
        c.layout,
        c.size_type,
        c.raw[:10] + digit,
        c.box,
        probs,
        path or c.path,
    )


def size_type_in(token: str) -> str | None:
    """Read a token as an ISO size-type code, allowing only the digit->letter fix in the type-group position."""
    if len(token) != 4:
        return None
    fixed = token[:2] + {"6": "G", "0": "U", "8": "B", "5": "S"}.get(token[2], token[2]) + token[3]
    fixed = fixed[:3] + {"I": "1", "L": "1", "O": "0"}.get(fixed[3], fixed[3])
    return fixed if iso6346.is_size_type(fixed) else None


def _codes_in_tokens(  # noqa: C901 - one scan over the tokens, each case commented
    toks: list[tuple[str, tuple[float, ...]]], layout: str, below: Line | None, line: Line | None = None
) -> list[tuple[Candidate, int]]:
    """Candidates starting at each token; returns (candidate, index of the first token after the code)."""
    found: list[tuple[Candidate, int]] = []
    offsets = [0]
    for t, _ in toks:
        offsets.append(offsets[-1] + len(t))
    for i in range(len(toks)):
        length = 0
        for j in range(i, len(toks)):
            prev = length
            length += len(toks[j][0])
            box = None
            if line is not None:
                # The code's box ends where its last character's detector box ends (not at a size type after it).
                x0, y0, _x1, y1 = line.box
                box = (x0, y0, line.x_after(offsets[j + 1]), y1)
            if prev < 10 <= length and layout != "vertical":
                boxed = _boxed_code(toks, i, j, 10 - prev, layout, below, box)
                if boxed is not None:
                    found.append(boxed)
                    break
            if length in (10, 11):
                after = toks[j + 1][0] if j + 1 < len(toks) else None
                if length == 10 and after is not None and len(after) == 1 and (after.isdigit() or after in "OQDILSBZG"):
                    # The check digit was read: never drop it to compute one that passes instead.
                    continue
                st = size_type_in(after) if after else None
                if st is None and below is not None and below.tokens():
                    st = size_type_in(below.tokens()[0][0])
                cand = _candidate(toks[i : j + 1], layout, st, box)
                if cand is not None:
                    found.append((cand, j + 1))
            if length > 11:
                # A code run together with the size type ("MSCU1234565 45G1" read without the space).
                tok, probs = toks[j]
                cut = len(tok) - (length - 11)
                rest = tok[cut:]
                if j == i or cut > 0:
                    st = size_type_in(rest)
                    nxt = toks[j + 1][0] if j + 1 < len(toks) else ""
                    if st is None and len(rest) + len(nxt) == 4:
                        st = size_type_in(rest + nxt)  # the size type's first characters ran into the code
                    # A vertical column runs on into the size type, which may be cut off by the image edge; on a
                    # line, only a short run-on is accepted. The eleven characters kept include the check digit
                    # as read, so validation stays honest.
                    if st is not None or layout == "vertical" or (len(rest) <= 3 and cut >= 2):
                        if line is not None and box is not None:
                            box = (box[0], box[1], line.x_after(offsets[j] + cut), box[3])
                        cand = _candidate([*toks[i:j], (tok[:cut], probs[:cut])], layout, st, box)
                        if cand is not None:
                            found.append((cand, j + 1))
                break
    return found


#: How the edges of the painted box around a check digit read: "[" and "]" become separators (spaces) in the
#: decoder, but the recogniser also reads an edge as I, L or 1.
_BOX_EDGES = frozenset("IL1")
_EDGE_LETTERS = frozenset("IL")


def boxed_digit(chars: str) -> str | None:
    """The check digit in `chars`, the characters read after the serial, when they are a boxed digit read with
    its box edges: "I7I", "171", "1I1" or "L7I" give 7; "I7" and "7I" too (a letter cannot be a check digit, so a
    letter beside a digit is an edge). Ambiguous readings ("17", "71": an edge and a digit, or a digit 1 and an
    edge) give None, as does anything else: nothing is guessed, and the caller then reads the box on its own.
    """
    if len(chars) == 3 and chars[0] in _BOX_EDGES and chars[2] in _BOX_EDGES:
        mid = chars[1]
        if mid.isdigit():
            return mid
        return iso6346.TO_DIGIT.get(mid)
    if len(chars) == 2:
        a, b = chars[0], chars[1]
        if a in _EDGE_LETTERS and b.isdigit() and b != "1":
            return b
        if b in _EDGE_LETTERS and a.isdigit() and a != "1":
            return a
    return None


def _boxed_code(
    toks: list[tuple[str, tuple[float, ...]]],
    i: int,
    j: int,
    cut: int,
    layout: str,
    below: Line | None,
    box: tuple[float, ...] | None,
) -> tuple[Candidate, int] | None:
    """A code whose check digit was read with its box: the first ten characters end `cut` characters into token
    `j`; what follows, to a token boundary and at most three characters, must read as a boxed digit."""
    rest, rest_p = toks[j][0][cut:], toks[j][1][cut:]
    k = j + 1
    while len(rest) < 3 and k < len(toks) and len(rest) + len(toks[k][0]) <= 3:
        rest, rest_p = rest + toks[k][0], (*rest_p, *toks[k][1])
        k += 1
    if len(rest) < 2:
        return None
    digit = boxed_digit(rest)
    if digit is None:
        return None
    # The raw character goes to the repair (a boxed O is a change to 0, counted as such).
    pos = 1 if len(rest) == 3 or rest[0] in _EDGE_LETTERS else 0
    digit = rest[pos]
    parts = [*toks[i:j], (toks[j][0][:cut], toks[j][1][:cut])] if cut else list(toks[i:j])
    parts = [p for p in parts if p[0]]
    after = toks[k][0] if k < len(toks) else None
    st = size_type_in(after) if after else None
    if st is None and below is not None and below.tokens():
        st = size_type_in(below.tokens()[0][0])
    cand = _candidate([*parts, (digit, (rest_p[pos],))], layout, st, box)
    return (cand, k) if cand is not None else None


def find_codes(lines: list[Line]) -> list[Candidate]:
    """Find container codes in grouped lines: one-line, two-line (owner above serial) and vertical columns."""
    out: list[Candidate] = []
    below_of = {id(ln): _line_below(ln, lines) for ln in lines}
    for ln in lines:
        toks = ln.tokens()
        if ln.vertical and toks:
            # A column has no word breaks; a gap only separates the size type, which the run-on rule handles.
            toks = [("".join(t for t, _ in toks), tuple(p for _, ps in toks for p in ps))]
        layout = "vertical" if ln.vertical else "horizontal"
        found = _codes_in_tokens(toks, layout, None if ln.vertical else below_of[id(ln)], ln)
        if ln.vertical and not found and toks:
            # A column often starts with a stray stroke read as I, 1 or L (a rivet, the door's top rail, the
            # edge of a lock): when the column as read gives no code, it is read again without it.
            text, probs = toks[0]
            for skip in (1, 2):
                if len(text) > skip + 9 and all(ch in _BOX_EDGES for ch in text[:skip]):
                    found = _codes_in_tokens([(text[skip:], probs[skip:])], layout, None, ln)
                    if found:
                        break
        out += [cand for cand, _ in found]
        # Two-line: the line's last token is an owner code + category, the next line down starts with the serial.
        nxt = below_of[id(ln)]
        if not ln.vertical and toks and len(toks[-1][0]) == 4 and nxt is not None:
            ntoks = nxt.tokens()
            if ntoks:
                third = _line_below(nxt, lines)
                for cand, _ in _codes_in_tokens([toks[-1], *ntoks], "two_line", third, _shifted(nxt, len(toks[-1][0]))):
                    if cand.raw.startswith(toks[-1][0]):
                        out.append(cand)
    return rank(out)


def _shifted(ln: Line, n: int) -> Line:
    """`ln` with its character counts moved by `n` (the owner token of a two-line code comes before it)."""
    return Line(ln.text, ln.probs, ln.box, ln.vertical, ln.th, ln.slope, tuple((c + n, x) for c, x in ln.ends))


def rank(cands: list[Candidate]) -> list[Candidate]:
    """Deduplicate by code (keeping the best reading) and sort best first: status, then confidence."""
    best: dict[str, Candidate] = {}
    for c in cands:
        cur = best.get(c.code)
        if cur is None or _key(c) < _key(cur) or (cur.size_type is None and c.size_type and _key(c) == _key(cur)):
            best[c.code] = c
    return sorted(best.values(), key=_key)


def _key(c: Candidate) -> tuple[int, float]:
    """Sort key: status order, then higher confidence first."""
    return STATUSES.index(c.status), -c.confidence


def _line_below(ln: Line, lines: list[Line]) -> Line | None:
    """The nearest horizontal line directly under `ln` (overlapping in x, about one to three heights down)."""
    if ln.vertical:
        return None
    x0, _, x1, _ = ln.box
    h = ln.height
    best, best_off = None, None
    for other in lines:
        if other is ln or other.vertical:
            continue
        ox0, _, ox1, _ = other.box
        off = ln.offset_of(other)
        overlap = min(x1, ox1) - max(x0, ox0)
        if 0.7 * h <= off <= 3.2 * h and overlap > 0 and 0.6 * h <= other.height <= 1.6 * h:
            if best_off is None or off < best_off:
                best, best_off = other, off
    return best


def group_rows(lines: list[Line]) -> list[Line]:
    """Join horizontal boxes that sit on one row (a code the detector cut into owner / serial / check digit).

    Boxes that overlap are the detector finding the same characters twice: the overlapped characters are
    dropped from the left box's text. A much smaller box on the row (a boxed check digit) is joined too.
    """
    horiz = sorted((ln for ln in lines if not ln.vertical), key=lambda ln: ln.box[0])
    used: set[int] = set()
    out: list[Line] = [ln for ln in lines if ln.vertical]
    for i, a in enumerate(horiz):
        if i in used:
            continue
        used.add(i)
        cur = a
        for j in range(i + 1, len(horiz)):
            if j in used:
                continue
            b = horiz[j]
            cx0, cy0, cx1, cy1 = cur.box
            bx0, by0, bx1, by1 = b.box
            th = max(cur.height, b.height)
            ratio = b.height / max(cur.height, 1e-6)
            if abs(cur.offset_of(b)) > 0.45 * th or not 0.25 <= ratio <= 1.6:
                continue
            gap = bx0 - cx1
            if gap > (2.5 if ratio >= 0.6 else 1.5) * th:
                continue
            used.add(j)
            if bx1 <= cx1 + 0.2 * (bx1 - bx0):
                continue  # inside the current box: the same characters detected twice
            text, probs = cur.text, cur.probs
            if gap < 0:
                n_chars = len(text.replace(" ", ""))
                char_w = (cx1 - cx0) / max(n_chars, 1)
                dup = round(-gap / max(char_w, 1e-6))
                # Boxes also overlap by their margins alone: drop characters only when both boxes read them.
                if 0 < dup < n_chars and text.replace(" ", "")[-dup:] == b.text.replace(" ", "")[:dup]:
                    text, probs = text[:-dup].rstrip(), probs[: len(text[:-dup].rstrip())]
            ends = cur.ends or ((len(cur.text.replace(" ", "")), cx1),)
            ends = (*ends[:-1], (len(text.replace(" ", "")), cx1))
            cur = Line(
                text + " " + b.text,
                (*probs, 1.0, *b.probs),
                (cx0, min(cy0, by0), max(cx1, bx1), max(cy1, by1)),
                th=max(cur.height, b.height) if ratio >= 0.6 else cur.height,
                slope=cur.slope,
                ends=(*ends, (len(text.replace(" ", "")) + len(b.text.replace(" ", "")), bx1)),
            )
        out.append(cur)
    return out
