"""File names that came from a client, made safe to show and to send back: no control or bidi-override characters,
no path, and an RFC 6266 Content-Disposition whose ASCII fallback is safe for any browser."""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote

MAX_LENGTH = 255
DEFAULT = "document"
# Bidirectional embeddings, overrides and isolates, the directional marks and the Arabic letter mark: in a file
# name they make "invoice‮fdp.exe" read as "invoiceexe.pdf".
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")
# Line and paragraph separators break a listing or a header as CR and LF do.
_SEPARATORS = frozenset("\u2028\u2029")
_UNSAFE_ASCII = re.compile(r"[^A-Za-z0-9._()+\- ]+")


def _dropped(c: str) -> bool:
    return c in BIDI_CONTROLS or c in _SEPARATORS or unicodedata.category(c) == "Cc"


def display_name(name: str | None) -> str:
    """The name to store and show: control and bidi characters removed, any directory part (`/`, `\\`) made part
    of the name, trimmed, at most 255 characters; `document` if nothing is left."""
    cleaned = "".join(c for c in unicodedata.normalize("NFC", name or "") if not _dropped(c))
    cleaned = cleaned.replace("/", "_").replace("\\", "_").strip().strip(".")
    return cleaned[:MAX_LENGTH].strip() or DEFAULT


def ascii_fallback(name: str) -> str:
    """An ASCII-only stand-in for clients that ignore `filename*`: accents dropped, anything else unusual `_`."""
    plain = unicodedata.normalize("NFKD", display_name(name)).encode("ascii", "ignore").decode("ascii")
    plain = _UNSAFE_ASCII.sub("_", plain).strip(" ._")
    return plain[:MAX_LENGTH] or DEFAULT


def content_disposition(name: str | None) -> str:
    """`attachment` with both an ASCII `filename` and the UTF-8 `filename*` (RFC 6266, RFC 8187)."""
    shown = display_name(name)
    return f"attachment; filename=\"{ascii_fallback(shown)}\"; filename*=UTF-8''{quote(shown, safe='')}"
