"""Images the reader once missed (benchmark seed 0, `synth.generate(i, layout)`), read with the real models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ocr.reader import GateReader

DATA = Path(__file__).with_name("regression_images")
LABELS = json.loads((DATA / "labels.json").read_text())


@pytest.fixture(scope="module")
def reader() -> GateReader:
    """One reader for the module."""
    r = GateReader(intra_op_threads=1, barcodes=False)
    r.warm_up()
    return r


@pytest.mark.parametrize("name", sorted(LABELS))
def test_row_split_by_overlapping_boxes_is_read_again_as_one_line(reader: GateReader, name: str) -> None:
    """The detector cut the code into overlapping boxes and a box edge sliced a digit into an extra letter; the
    row read again as one crop gives the code, verified by its own check digit (nothing was substituted)."""
    label = LABELS[name]
    codes = reader.read((DATA / name).read_bytes()).container_codes
    assert codes, f"{name}: no code read"
    assert (codes[0].code, codes[0].status, codes[0].layout) == (label["code"], "verified", label["layout"])
    assert not [c for c in codes if c.status == "verified" and c.code != label["code"]]
