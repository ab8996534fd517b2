"""Seal barcodes and declaration QR codes through pyzbar (Debian's libzbar0)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = ["Barcode", "BarcodeUnavailable", "read_barcodes"]


@dataclass(frozen=True, slots=True)
class Barcode:
    """One decoded symbol: its type as zbar names it (QRCODE, CODE128, ...) and its text."""

    type: str
    data: str


class BarcodeUnavailable(RuntimeError):
    """libzbar is not installed (apt-get install libzbar0)."""


def read_barcodes(bgr: NDArray[np.uint8]) -> list[Barcode]:
    """Decode every QR code and 1-D barcode in an image, deduplicated, in reading order (top to bottom)."""
    import cv2

    try:
        from pyzbar import pyzbar
    except ImportError as exc:  # pyzbar raises ImportError when the shared library is missing
        raise BarcodeUnavailable(f"pyzbar/libzbar0 not available: {exc}") from None

    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY) if bgr.ndim == 3 else bgr
    seen: set[tuple[str, str]] = set()
    out: list[tuple[int, Barcode]] = []
    # Only the symbologies a gate sees (seals: Code 128 / 39 / interleaved 2 of 5 / EAN; declarations: QR).
    # Limiting them is faster and keeps zbar's DataBar decoder from printing assertion noise on corrugation.
    wanted = [getattr(pyzbar.ZBarSymbol, n) for n in ("QRCODE", "CODE128", "CODE39", "I25", "EAN13", "EAN8")]
    for sym in pyzbar.decode(gray, symbols=wanted):
        data = sym.data.decode("utf-8", errors="replace")
        key = (sym.type, data)
        if key in seen:
            continue
        seen.add(key)
        out.append((sym.rect.top, Barcode(sym.type, data)))
    return [b for _, b in sorted(out, key=lambda t: t[0])]
