"""Keyset pagination cursors: an opaque token for "after this (time, id)" in newest-first order."""

from __future__ import annotations

import base64
import datetime as dt
import json

from services.kernel.errors import Unprocessable


def encode_cursor(at: dt.datetime, row_id: str) -> str:
    """An opaque cursor pointing after the row at (`at`, `row_id`)."""
    raw = json.dumps([at.isoformat(), row_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[dt.datetime, str]:
    """Parse a cursor, or 422 if it was not made by us (never a database error further on)."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        at_text, row_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
        at = dt.datetime.fromisoformat(at_text)
        if at.tzinfo is None:
            raise ValueError("naive")
        at.astimezone(dt.UTC)  # out-of-range times fail here, not in the database driver
        if not isinstance(row_id, str) or "\x00" in row_id:
            raise ValueError("id")
        return at, row_id
    except (ValueError, TypeError, OverflowError) as exc:
        raise Unprocessable("invalid cursor; pass back the next_cursor of a previous page") from exc
