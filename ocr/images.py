"""Safe image loading: JPEG/PNG/WebP only, byte and pixel limits, EXIF orientation, clear errors."""

from __future__ import annotations

import io
import warnings
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = ["ALLOWED_FORMATS", "DEFAULT_MAX_BYTES", "DEFAULT_MAX_PIXELS", "ImageError", "load_image", "sniff_format"]

#: 20 MB is several times a 12-megapixel gate camera JPEG.
DEFAULT_MAX_BYTES = 20 * 1024 * 1024
#: 40 megapixels: larger than any gate camera, far below a decompression bomb's hundreds of megapixels.
DEFAULT_MAX_PIXELS = 40_000_000
ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP")


class ImageError(ValueError):
    """An image that cannot or must not be decoded (bad format, too big, corrupt)."""


def sniff_format(data: bytes) -> str | None:
    """Return "JPEG", "PNG" or "WEBP" from the file's magic bytes, or None for anything else."""
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def load_image(
    data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES, max_pixels: int = DEFAULT_MAX_PIXELS
) -> NDArray[np.uint8]:
    """Decode `data` into an upright BGR uint8 array (OpenCV's layout) or raise `ImageError` with a clear message.

    The format is checked from the magic bytes before any decoder runs, the pixel count from the header before
    the pixels are decoded (a small file that claims 100k x 100k pixels is refused, not inflated), and EXIF
    orientation is applied so a phone or camera photo taken sideways is read upright.
    """
    import numpy as np
    from PIL import Image, ImageOps, UnidentifiedImageError

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
    try:
        # Pillow's own bomb guard warns at MAX_IMAGE_PIXELS and raises at twice that; our limit is checked
        # explicitly below, so the warning is silenced and the exception treated like any other bad image.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=[fmt])
            width, height = img.size
            if width <= 0 or height <= 0:
                raise ImageError("image has no pixels")
            if width * height > max_pixels:
                raise ImageError(f"image is {width}x{height} pixels, over the limit of {max_pixels}")
            img.load()
            rgb = ImageOps.exif_transpose(img).convert("RGB")
    except ImageError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageError(f"image is over the limit of {max_pixels} pixels (decompression bomb): {exc}") from None
    except UnidentifiedImageError as exc:
        raise ImageError(f"cannot decode {fmt} image: {exc}") from None
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError) as exc:
        # Truncated or corrupt files surface as OSError ("image file is truncated"), SyntaxError (bad PNG chunk)
        # or ValueError, depending on the plugin.
        raise ImageError(f"corrupt {fmt} image: {exc}") from None
    arr = np.asarray(rgb, dtype=np.uint8)
    # RGB -> BGR without importing cv2 here: a reversed view, made contiguous for OpenCV.
    return np.ascontiguousarray(arr[:, :, ::-1])
