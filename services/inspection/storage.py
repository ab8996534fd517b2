"""Gate images on disk, content-addressed: `<var_dir>/gate-images/ab/<sha256>`, written atomically."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from ocr.images import sniff_format
from services.kernel.blobs import write_once

SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
MEDIA_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}


class ImageStore:
    """Stores image bytes by their SHA-256; the same image posted twice is stored once."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, sha256: str) -> Path:
        """Where the image with this digest lives (whether or not it exists)."""
        if not SHA256_RE.match(sha256):
            raise ValueError("not a SHA-256 hex digest")
        return self.root / sha256[:2] / sha256

    def put(self, data: bytes) -> str:
        """Store `data` (if not already stored) and return its SHA-256."""
        digest = hashlib.sha256(data).hexdigest()
        # Atomic, and a disk that cannot take it is 503/507 problem+json (kernel/blobs.py), with nothing left behind.
        write_once(self.path(digest), data, what="gate image")
        return digest

    def get(self, sha256: str) -> bytes | None:
        """The stored bytes, or None if this digest is not stored."""
        try:
            return self.path(sha256).read_bytes()
        except (FileNotFoundError, ValueError):
            return None


def media_type(data: bytes) -> str:
    """The image's media type from its magic bytes (stored images were all decoded as one of these)."""
    return MEDIA_TYPES.get(sniff_format(data) or "", "application/octet-stream")
