"""ISO 6346 container codes: check digit, validation, position-aware repair of OCR confusions."""

from __future__ import annotations

import re
from dataclasses import dataclass

from stdnum import iso6346 as _stdnum

__all__ = [
    "CATEGORIES",
    "MAX_CHANGES",
    "TO_DIGIT",
    "Repair",
    "calc_check_digit",
    "check_value",
    "differs_by_one_substitution",
    "is_size_type",
    "is_valid",
    "repair",
    "split",
]

#: Equipment category identifiers: freight container, detachable chassis equipment, trailer/chassis.
CATEGORIES = frozenset("UJZ")

#: The largest number of character substitutions `repair` will make. Two covers the realistic case (one confused
#: letter in the owner code and one in the serial) while keeping a wrong read from drifting into another real code.
MAX_CHANGES = 2

# The confusion pairs OCR makes on stencilled container text, as "what the model read" -> "what it must be here".
# Only these substitutions are ever made, and only where the position's class (letter or digit) demands it:
# a character is never changed because the check digit would then pass.
TO_DIGIT = _TO_DIGIT = {"O": "0", "Q": "0", "D": "0", "I": "1", "L": "1", "S": "5", "B": "8", "Z": "2", "G": "6"}
_TO_LETTER = {"0": "O", "1": "I", "5": "S", "8": "B", "2": "Z", "6": "G"}

_CODE_RE = re.compile(r"^[A-Z]{3}[UJZ][0-9]{6}[0-9]$")
# Size-type (ISO 6346:1995): length, height/width, type group letter, detail digit. e.g. 22G1, 45G1, 42R1, L5G1.
_SIZE_TYPE_RE = re.compile(r"^[1-9ABCDEFGHKLMNP][0-9CDEFLMNP][A-Z][0-9]$")


_ALPHABET = "0123456789A BCDEFGHIJK LMNOPQRSTU VWXYZ"  # letters skip multiples of 11, as ISO 6346 specifies


def check_value(first10: str) -> int:
    """Return the raw check value 0..10 (10 is written as 0, which owners are told to avoid)."""
    return sum(_ALPHABET.index(c) * 2**i for i, c in enumerate(first10.upper())) % 11


def calc_check_digit(first10: str) -> str:
    """Return the ISO 6346 check digit (as one character) for an owner code + category + serial."""
    return str(_stdnum.calc_check_digit(first10))


def is_valid(code: str) -> bool:
    """Tell whether `code` is an 11-character ISO 6346 code whose check digit is right."""
    return bool(_CODE_RE.match(code)) and calc_check_digit(code[:10]) == code[10]


def is_size_type(text: str) -> bool:
    """Tell whether `text` has the shape of an ISO 6346 size-type code (e.g. 45G1)."""
    return bool(_SIZE_TYPE_RE.match(text))


def split(code: str) -> tuple[str, str, str, str]:
    """Split an 11-character code into (owner, category, serial, check digit)."""
    return code[:3], code[3], code[4:10], code[10]


@dataclass(frozen=True, slots=True)
class Repair:
    """One candidate reading of a raw OCR string as a container code.

    `code` has 11 characters; `changes` counts the substitutions made to the raw text; `check_read` is False when
    the raw text had no usable check digit and the digit in `code` was computed (so it verifies nothing).
    """

    code: str
    changes: int
    check_read: bool

    @property
    def check_ok(self) -> bool:
        """Whether the check digit that was read agrees with the one computed from the first ten characters.

        A check value of 10 (printed as 0) never agrees here: the standard tells owners to avoid such serials
        because a 0 then also "confirms" one in eleven misreads, so such a read cannot be verified by OCR.
        """
        first10 = self.code[:10]
        return self.check_read and check_value(first10) != 10 and calc_check_digit(first10) == self.code[10]


def _fix(ch: str, want_digit: bool, category: bool = False) -> tuple[str, int] | None:
    """Map one character to the class its position needs; return (char, changed) or None if impossible."""
    if category:
        if ch in CATEGORIES:
            return ch, 0
        return ("Z", 1) if ch == "2" else None
    if want_digit:
        if ch.isdigit():
            return ch, 0
        return (_TO_DIGIT[ch], 1) if ch in _TO_DIGIT else None
    if "A" <= ch <= "Z":
        return ch, 0
    return (_TO_LETTER[ch], 1) if ch in _TO_LETTER else None


def repair(raw: str, *, max_changes: int = MAX_CHANGES) -> Repair | None:
    """Read `raw` (10 or 11 characters once spaces are removed) as a container code, or return None.

    The repair is deterministic and position-aware: letters are expected in the owner code, U/J/Z in the category
    and digits in the serial and check digit; a character of the wrong class is replaced through the confusion
    table (O/0, I/1, S/5, B/8, Z/2, G/6 and a few more) or the read is rejected. At most `max_changes` characters
    change. The check digit is never consulted to choose a substitution, so a wrong read is not turned into a
    "valid" one: with 10 characters the check digit is computed and reported as such (`check_read=False`).
    """
    text = "".join(raw.split()).upper()
    if len(text) not in (10, 11):
        return None
    out: list[str] = []
    changes = 0
    for i, ch in enumerate(text):
        fixed = _fix(ch, want_digit=i >= 4, category=i == 3)
        if fixed is None:
            return None
        out.append(fixed[0])
        changes += fixed[1]
        if changes > max_changes:
            return None
    code = "".join(out)
    if len(code) == 10:
        return Repair(code + calc_check_digit(code), changes, check_read=False)
    return Repair(code, changes, check_read=True)


def differs_by_one_substitution(a: str, b: str) -> bool:
    """Tell whether two codes of equal length differ in exactly one position (a likely misread, not a new code)."""
    a = "".join(a.split()).upper()
    b = "".join(b.split()).upper()
    return len(a) == len(b) and sum(x != y for x, y in zip(a, b, strict=True)) == 1
