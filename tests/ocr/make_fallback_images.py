"""Regenerate the fallback test images: `.venv/bin/python tests/ocr/make_fallback_images.py` (seeded, deterministic).

Images of the benchmark's seed-0 set (`synth.generate_set(90, seed=0)`) that the fast path alone does not verify,
each labelled with the stage that reads it (`CodeRead.path`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from ocr import synth

OUT = Path(__file__).with_name("fallback_images")
#: seed, layout, the stage expected to produce the verified (or corrected) code.
CASES = [
    (0, "horizontal", "box"),
    (29, "vertical", "box"),
    (52, "two_line", "box"),
    (87, "horizontal", "widened"),
]


def main() -> None:
    """Write the images and labels.json."""
    OUT.mkdir(exist_ok=True)
    labels = {}
    for seed, layout, path in CASES:
        s = synth.generate(seed, layout)
        name = f"{layout}_seed0_{seed}.jpg"
        (OUT / name).write_bytes(s.jpeg)
        labels[name] = {"code": s.code, "layout": layout, "path": path, "seed": seed, "params": s.params}
    (OUT / "labels.json").write_text(json.dumps(labels, indent=1, sort_keys=True, default=str) + "\n")
    print(f"{len(labels)} images in {OUT}")  # noqa: T201


if __name__ == "__main__":
    main()
