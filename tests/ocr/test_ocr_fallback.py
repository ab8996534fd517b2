"""The fallback chain, the boxed check digit and the parser's box-edge rule, with the real models where it matters."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ocr.parse import Line, boxed_digit, find_codes, group_rows
from ocr.reader import GateReader

DATA = Path(__file__).with_name("fallback_images")
LABELS = json.loads((DATA / "labels.json").read_text())


def _codes(text: str, *, vertical: bool = False) -> list[tuple[str, str]]:
    line = Line(text, tuple([0.95] * len(text)), (0.0, 0.0, 400.0, 40.0), vertical)
    return [(c.code, c.status) for c in find_codes(group_rows([line]))]


@pytest.mark.parametrize(
    ("chars", "digit"),
    [("I7I", "7"), ("171", "7"), ("1I1", "1"), ("L7I", "7"), ("I7", "7"), ("7I", "7"), ("IOI", "0")],
)
def test_a_boxed_digit_is_read_through_its_edges(chars: str, digit: str) -> None:
    assert boxed_digit(chars) == digit


@pytest.mark.parametrize("chars", ["17", "71", "11", "77", "I7I7", "IAI", "7"])
def test_an_ambiguous_box_reading_gives_no_digit(chars: str) -> None:
    """ "17" is an edge and a 7, or a 1 and an edge: nothing is guessed (the box is then read on its own)."""
    assert boxed_digit(chars) is None


def test_box_edges_no_longer_make_a_wrong_check_digit() -> None:
    # MSCU1234566 is valid: its boxed 6 read with both edges, with one, or with the size type after it.
    assert _codes("MSCU 123456 I6I") == [("MSCU1234566", "verified")]
    assert _codes("MSCU123456I6I") == [("MSCU1234566", "verified")]
    assert _codes("MSCU 123456 I6I 45G1") == [("MSCU1234566", "verified")]
    # Ambiguous: never verified, whatever the check digit would say.
    assert all(status != "verified" for _, status in _codes("MSCU 123456 16"))
    # A wrong digit inside the box is still caught by the check digit.
    assert _codes("MSCU 123456 I5I") == [("MSCU1234565", "failed")]


def test_a_column_is_read_again_without_a_leading_stray_stroke() -> None:
    assert _codes("IMSCU1234566", vertical=True) == [("MSCU1234566", "verified")]
    # A column that parses as it is read is not re-read from another start.
    assert _codes("LMSCU1234566", vertical=True) == [("MSCU1234566", "verified")]


@pytest.fixture(scope="module")
def reader() -> GateReader:
    """The default budget: it counts the reading thread's CPU time, so a loaded machine reaches the same stages."""
    r = GateReader(intra_op_threads=1, barcodes=False)
    r.warm_up()
    return r


@pytest.mark.parametrize("name", sorted(LABELS))
def test_the_fallback_chain_reads_what_the_fast_path_does_not(reader: GateReader, name: str) -> None:
    label = LABELS[name]
    codes = reader.read((DATA / name).read_bytes()).container_codes
    assert codes, f"{name}: nothing read"
    top = codes[0]
    assert (top.code, top.layout, top.path) == (label["code"], label["layout"], label["path"]), codes
    assert top.status in ("verified", "corrected", "check_digit_computed")
    assert not [c for c in codes if c.status == "verified" and c.code != label["code"]]
    # The path is for the Python API only: the JSON record keeps the keys integrators read.
    assert set(top.to_dict()) == {
        "code", "status", "confidence", "owner", "category", "serial", "check_digit", "size_type", "layout", "changes"
    }  # fmt: skip


@pytest.mark.parametrize("name", sorted(n for n, v in LABELS.items() if v["path"] in ("plain", "widened")))
def test_without_the_fallback_the_same_image_is_not_read(reader: GateReader, name: str) -> None:
    fast_only = GateReader(intra_op_threads=1, barcodes=False, fallback_budget=0)
    fast_only._engine = reader.engine  # same sessions, no second model load
    codes = fast_only.read((DATA / name).read_bytes()).container_codes
    assert (
        not codes
        or codes[0].code != LABELS[name]["code"]
        or codes[0].status != reader.read((DATA / name).read_bytes()).container_codes[0].status
    )


def test_the_box_is_found_beside_the_serial_and_read_on_its_own(reader: GateReader) -> None:
    """A painted box a character away from the serial, slightly rolled: found by contour, its digit read alone."""
    import cv2
    import numpy as np

    from ocr.checkbox import find_check_box, one_digit

    img = np.full((200, 700, 3), (40, 60, 130), np.uint8)
    font = cv2.FONT_HERSHEY_DUPLEX
    cv2.putText(img, "MSCU 123456", (20, 110), font, 1.8, (240, 240, 240), 4)
    cv2.putText(img, "6", (520, 110), font, 1.8, (240, 240, 240), 4)
    cv2.rectangle(img, (508, 60), (562, 124), (240, 240, 240), 3)
    rot = cv2.getRotationMatrix2D((350, 100), 3, 1.0)
    img = cv2.warpAffine(img, rot, (700, 200), borderMode=cv2.BORDER_REPLICATE)
    box = find_check_box(img, (20.0, 65.0, 440.0, 120.0), 55.0)
    assert box is not None
    assert 490 <= box.rect[0] <= 520
    rd = reader.engine.recognise([box.inside])[0]
    assert one_digit(rd.text, rd.probs) is not None
    assert one_digit(rd.text, rd.probs)[0] == "6"  # type: ignore[index]


def test_the_fallback_stops_at_its_budget(reader: GateReader) -> None:
    """A budget already spent when the fast path ends: the chain starts no stage, the read still returns."""
    import time

    fast_only = GateReader(intra_op_threads=1, barcodes=False, fallback_budget=1e-9)
    fast_only._engine = reader.engine
    name = next(n for n, v in LABELS.items() if v["path"] == "widened")
    t = time.perf_counter()
    codes = fast_only.read((DATA / name).read_bytes()).container_codes
    assert all(c.path in ("fast", "box") for c in codes)
    assert time.perf_counter() - t < 30


def test_a_passing_reading_read_without_confidence_is_not_evidence() -> None:
    from ocr.parse import Candidate, trustworthy

    def cand(code: str, probs: list[float], status: str = "verified") -> Candidate:
        return Candidate(code, status, min(probs), 0, "vertical", None, code, None, tuple(probs))

    assert trustworthy(cand("GESU7540664", [0.99] * 11))
    # Garbage that passed its check digit by chance (seen on a dark, blurred column).
    assert not trustworthy(cand("GESU7382846", [0.48, 0.38, 0.34, 0.47, 0.34, 0.23, 0.14, 0.24, 0.32, 0.6, 0.53]))
    # M and W are 11 apart in ISO 6346's values: the check digit passes either way, so an unsure M is no proof.
    assert not trustworthy(cand("MZBU4486243", [0.56, 0.99, 0.54, 1.0] + [0.99] * 7))
    assert trustworthy(cand("MZBU4486243", [0.95, 0.99, 0.9, 1.0] + [0.99] * 7))
    # Readings that do not pass are reported whatever their confidence: they go to an officer anyway.
    assert trustworthy(cand("GESU7382845", [0.2] * 11, status="failed"))
