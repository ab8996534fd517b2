"""Safe image loading: JPEG/PNG/WebP only, byte and pixel limits, reduction on decode, EXIF orientation."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = [
    "ALLOWED_FORMATS",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_READ_MAX_SIDE",
    "ImageError",
    "ImageInfo",
    "ImageTooLarge",
    "load_image",
    "probe",
    "sniff_format",
]

#: 20 MB is several times a 12-megapixel gate camera JPEG.
DEFAULT_MAX_BYTES = 20 * 1024 * 1024
#: 16 megapixels: a 12 MP gate camera (4000 x 3000) with room to spare. A 40 MP "photo" of a few tens of kB is a
#: decompression bomb, not a camera: decoding one took 34 s and 2.8 GB of memory that the process kept.
DEFAULT_MAX_PIXELS = 16_000_000
#: The longest side OCR works on. A container code's characters are at least 100 mm high (ISO 6346); a door
#: filling 1600 px shows them about 60 px high, and the recogniser reads 48 px lines. Larger images are reduced
#: while decoding (JPEG: by the decoder itself, at 1/2, 1/4 or 1/8 scale), so their cost stays that of this size.
DEFAULT_READ_MAX_SIDE = 1600
ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP")


class ImageError(ValueError):
    """An image that cannot or must not be decoded (bad format, too big, corrupt)."""


class ImageTooLarge(ImageError):
    """An image over the pixel limit (its header says so; nothing was decoded)."""


@dataclass(frozen=True, slots=True)
class ImageInfo:
    """What the header says: format and size, known before any pixel is decoded."""

    format: str
    width: int
    height: int

    @property
    def pixels(self) -> int:
        """Width times height."""
        return self.width * self.height


def sniff_format(data: bytes) -> str | None:
    """Return "JPEG", "PNG" or "WEBP" from the file's magic bytes, or None for anything else."""
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def probe(data: bytes) -> ImageInfo:
    """Format and size from the magic bytes and the header only (cheap: no pixel is decoded); `ImageError` if not
    a JPEG, PNG or WebP whose header can be read."""
    fmt = sniff_format(bytes(data[:16]))
    if fmt is None:
        raise ImageError("not a JPEG, PNG or WebP image")
    img = _open(bytes(data), fmt)
    width, height = img.size
    if width <= 0 or height <= 0:
        raise ImageError("image has no pixels")
    return ImageInfo(fmt, width, height)


def _open(data: bytes, fmt: str) -> Any:
    """Pillow's lazy image (header parsed, pixels not decoded), with its errors turned into `ImageError`."""
    from PIL import Image, UnidentifiedImageError

    try:
        # Pillow's own bomb guard warns at MAX_IMAGE_PIXELS and raises at twice that; our limit is checked
        # explicitly by the callers, so the warning is silenced and the exception treated like any other bad image.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(data), formats=[fmt])
    except Image.DecompressionBombError as exc:
        raise ImageTooLarge(f"image is over the limit of pixels (decompression bomb): {exc}") from None
    except UnidentifiedImageError as exc:
        raise ImageError(f"cannot decode {fmt} image: {exc}") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(f"corrupt {fmt} image: {exc}") from None


def load_image(
    data: bytes,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_side: int | None = None,
) -> NDArray[np.uint8]:
    """Decode `data` into an upright BGR uint8 array (OpenCV's layout) or raise `ImageError` with a clear message.

    The format is checked from the magic bytes before any decoder runs, the pixel count from the header before
    the pixels are decoded (a small file that claims 100k x 100k pixels is refused, not inflated), and EXIF
    orientation is applied so a phone or camera photo taken sideways is read upright. With `max_side`, an image
    whose longer side exceeds it is reduced to it: a JPEG by its decoder (never inflated at full size), others
    right after decoding, so only one full-size copy ever exists.
    """
    import numpy as np
    from PIL import Image, ImageOps

    if not isinstance(data, bytes | bytearray | memoryview):
        raise ImageError(f"image must be bytes, got {type(data).__name__}")
    data = bytes(data)
    if not data:
        raise ImageError("empty image")
    if len(data) > max_bytes:
        raise ImageError(f"image is {len(data)} bytes, over the limit of {max_bytes}")
    fmt = sniff_format(data)
    if fmt is None:
        raise ImageError("not a JPEG, PNG or WebP image")
    img = _open(data, fmt)
    width, height = img.size
    if width <= 0 or height <= 0:
        raise ImageError("image has no pixels")
    if width * height > max_pixels:
        raise ImageTooLarge(f"image is {width}x{height} pixels, over the limit of {max_pixels}")
    scale = min(1.0, max_side / max(width, height)) if max_side else 1.0
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            if scale < 1.0 and fmt == "JPEG":
                # The JPEG decoder skips the fine DCT coefficients: at most 1/8 of the pixels are ever produced.
                img.draft("RGB", (max(1, int(width * scale)), max(1, int(height * scale))))
            img.load()
            rgb = img if img.mode == "RGB" else img.convert("RGB")
            if max_side and max(rgb.size) > max_side:
                ratio = max_side / max(rgb.size)
                size = (max(1, round(rgb.size[0] * ratio)), max(1, round(rgb.size[1] * ratio)))
                # reducing_gap: a box reduction by an integer factor first, then Lanczos on the rest (fast, sharp).
                rgb = rgb.resize(size, Image.Resampling.LANCZOS, reducing_gap=2.0)
            upright = ImageOps.exif_transpose(rgb, in_place=False) if _rotated(img) else rgb
    except Image.DecompressionBombError as exc:
        raise ImageTooLarge(f"image is over the limit of {max_pixels} pixels (decompression bomb): {exc}") from None
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError) as exc:
        # Truncated or corrupt files surface as OSError ("image file is truncated"), SyntaxError (bad PNG chunk)
        # or ValueError, depending on the plugin.
        raise ImageError(f"corrupt {fmt} image: {exc}") from None
    arr = np.asarray(upright, dtype=np.uint8)
    # RGB -> BGR without importing cv2 here: a reversed view, made contiguous for OpenCV.
    return np.ascontiguousarray(arr[:, :, ::-1])


def _rotated(img: Any) -> bool:
    """Whether the EXIF orientation asks for a turn or a flip (1, or none, means upright)."""
    try:
        return int(img.getexif().get(0x0112, 1) or 1) != 1
    except (OSError, ValueError, TypeError, SyntaxError):
        return False
