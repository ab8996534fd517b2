"""The seeded generator: reproducible, labelled with valid codes, all layouts."""

from __future__ import annotations

import random

from ocr import iso6346, synth
from ocr.images import load_image


def test_same_seed_same_image() -> None:
    a = synth.generate(42, "vertical")
    b = synth.generate(42, "vertical")
    assert a.jpeg == b.jpeg
    assert a.code == b.code


def test_labels_are_valid_codes_and_images_load() -> None:
    for i, layout in enumerate(synth.LAYOUTS):
        s = synth.generate(100 + i, layout)
        assert s.layout == layout
        assert iso6346.is_valid(s.code)
        assert load_image(s.jpeg).shape == (synth.OUT_H, synth.OUT_W, 3)


def test_random_codes_avoid_check_value_ten() -> None:
    rng = random.Random(0)
    for _ in range(500):
        code = synth.random_code(rng)
        assert iso6346.is_valid(code)
        assert iso6346.check_value(code[:10]) != 10


def test_fonts_fall_back_when_missing(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    synth.available_fonts.cache_clear()
    monkeypatch.setattr(synth, "FONT_CANDIDATES", {"Nope-Bold": "/nonexistent/font.ttf"})
    try:
        s = synth.generate(7, "horizontal")
        assert s.font == "pillow-default"
    finally:
        synth.available_fonts.cache_clear()
