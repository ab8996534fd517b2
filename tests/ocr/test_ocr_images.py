"""Safe image loading: formats, limits, EXIF orientation, corrupt input."""

import io

import pytest
from PIL import Image

from ocr.images import ImageError, load_image


def encode(img: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_allowed_formats_decode_to_bgr(fmt: str) -> None:
    arr = load_image(encode(Image.new("RGB", (40, 30), (255, 0, 0)), fmt))
    assert arr.shape == (30, 40, 3)
    assert arr[15, 20, 2] > 200
    assert arr[15, 20, 0] < 60


@pytest.mark.parametrize("fmt", ["GIF", "BMP", "TIFF"])
def test_other_formats_are_refused(fmt: str) -> None:
    with pytest.raises(ImageError, match="not a JPEG, PNG or WebP"):
        load_image(encode(Image.new("RGB", (8, 8)), fmt))


def test_empty_and_garbage_are_refused() -> None:
    with pytest.raises(ImageError, match="empty"):
        load_image(b"")
    with pytest.raises(ImageError):
        load_image(b"<html>not an image</html>")


def test_byte_limit() -> None:
    data = encode(Image.new("RGB", (64, 64)), "PNG")
    with pytest.raises(ImageError, match="over the limit"):
        load_image(data, max_bytes=len(data) - 1)


def test_pixel_limit_is_checked_before_decoding() -> None:
    # A tiny PNG that declares 20000 x 20000 pixels: refused from the header, never inflated.
    bomb = encode(Image.new("1", (12000, 12000)), "PNG", optimize=True)
    assert len(bomb) < 200_000
    with pytest.raises(ImageError, match="pixels, over the limit"):
        load_image(bomb, max_pixels=10_000_000)


def test_pillow_scale_bomb_is_a_clear_error() -> None:
    bomb = encode(Image.new("1", (20000, 20000)), "PNG", optimize=True)
    with pytest.raises(ImageError, match="over the limit"):
        load_image(bomb)


def test_truncated_jpeg_is_a_clear_error() -> None:
    data = encode(Image.new("RGB", (200, 200), (10, 200, 30)), "JPEG")
    with pytest.raises(ImageError, match="corrupt|cannot decode"):
        load_image(data[: len(data) // 3])


def test_exif_orientation_is_applied() -> None:
    img = Image.new("RGB", (60, 20), (0, 0, 255))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    arr = load_image(encode(img, "JPEG", exif=exif.tobytes()))
    assert arr.shape[:2] == (60, 20)


def test_image_error_is_a_value_error() -> None:
    assert issubclass(ImageError, ValueError)


def test_probe_reads_the_size_from_the_header_only() -> None:
    from ocr.images import probe

    bomb = encode(Image.new("RGB", (6000, 6600), (30, 60, 120)), "PNG", optimize=True)
    info = probe(bomb)
    assert (info.format, info.width, info.height, info.pixels) == ("PNG", 6000, 6600, 39_600_000)
    with pytest.raises(ImageError, match="not a JPEG"):
        probe(b"GIF89a....")


def test_the_default_pixel_limit_refuses_a_40_megapixel_image() -> None:
    from ocr.images import ImageTooLarge

    bomb = encode(Image.new("RGB", (6000, 6600), (30, 60, 120)), "PNG", optimize=True)
    with pytest.raises(ImageTooLarge, match="6000x6600 pixels, over the limit of 16000000"):
        load_image(bomb)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_large_images_are_reduced_while_decoding(fmt: str) -> None:
    img = Image.new("RGB", (3200, 2400), (0, 0, 255))
    arr = load_image(encode(img, fmt), max_side=1600)
    assert arr.shape == (1200, 1600, 3)
    assert arr[600, 800, 0] > 200  # still blue (BGR)
    # Smaller than max_side: untouched.
    assert load_image(encode(Image.new("RGB", (800, 600)), fmt), max_side=1600).shape == (600, 800, 3)


def test_exif_orientation_is_applied_after_reduction() -> None:
    img = Image.new("RGB", (4000, 1000), (0, 0, 255))
    exif = Image.Exif()
    exif[0x0112] = 6
    arr = load_image(encode(img, "JPEG", exif=exif.tobytes()), max_side=1000)
    assert arr.shape[:2] == (1000, 250)
