"""The real PP-OCRv4 models on the committed labelled gate images: every code read exactly, none wrongly verified."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ocr.reader import GateReader

DATA = Path(__file__).with_name("gate_images")
LABELS = json.loads((DATA / "labels.json").read_text())


@pytest.fixture(scope="module")
def reader() -> GateReader:
    """One reader (one set of ONNX sessions) for the whole module, as in a service process."""
    r = GateReader(intra_op_threads=1)
    r.warm_up()
    return r


def test_the_set_is_large_enough_and_small_on_disk() -> None:
    assert len(LABELS) >= 30
    assert {v["layout"] for v in LABELS.values()} == {"horizontal", "two_line", "vertical"}
    assert sum(p.stat().st_size for p in DATA.iterdir()) < 3_000_000


@pytest.mark.parametrize("name", sorted(LABELS))
def test_gate_image_is_read_exactly(reader: GateReader, name: str) -> None:
    label = LABELS[name]
    result = reader.read((DATA / name).read_bytes())
    codes = result.container_codes
    assert codes, f"{name}: no code read"
    assert codes[0].code == label["code"], f"{name}: read {[(c.code, c.status) for c in codes]}"
    # A wrong code must never come out verified, anywhere in the list.
    assert not [c for c in codes if c.status == "verified" and c.code != label["code"]]
    assert codes[0].status in ("verified", "corrected", "check_digit_computed")
    assert codes[0].layout == label["layout"]


def test_one_reader_serves_threads(reader: GateReader) -> None:
    """`read` is thread-safe: two threads on the same reader give the sequential results."""
    from concurrent.futures import ThreadPoolExecutor

    names = sorted(LABELS)[::9]
    blobs = [(DATA / n).read_bytes() for n in names]
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(reader.read, blobs))
    assert [r.container_codes[0].code for r in results] == [LABELS[n]["code"] for n in names]


def test_bad_image_is_an_image_error_not_a_crash(reader: GateReader) -> None:
    from ocr.images import ImageError

    with pytest.raises(ImageError):
        reader.read(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)


@pytest.mark.parametrize("name", sorted(LABELS)[::12])
def test_a_12_megapixel_photo_is_reduced_on_decode_and_read_the_same(reader: GateReader, name: str) -> None:
    """A 4000x3000 camera JPEG is decoded at a reduced scale (to 1600 px) and read as the original is."""
    import io

    from PIL import Image

    from ocr.images import load_image

    small = (DATA / name).read_bytes()
    out = io.BytesIO()
    Image.open(io.BytesIO(small)).resize((4000, 3000), Image.Resampling.BICUBIC).save(out, "JPEG", quality=92)
    big = out.getvalue()
    assert load_image(big, max_side=reader.max_side).shape == (1200, 1600, 3)
    codes = reader.read(big).container_codes
    assert [c.code for c in codes[:1]] == [LABELS[name]["code"]], [(c.code, c.status) for c in codes]
    assert codes[0].status == reader.read(small).container_codes[0].status


def test_a_read_past_its_deadline_stops(reader: GateReader) -> None:
    import time

    from ocr.reader import DeadlineExceeded

    blob = (DATA / sorted(LABELS)[0]).read_bytes()
    with pytest.raises(DeadlineExceeded):
        reader.read(blob, deadline=time.monotonic())
