"""Regenerate the committed CI image set: `.venv/bin/python tests/ocr/make_gate_images.py` (seeded, deterministic)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from ocr import synth

OUT = Path(__file__).with_name("gate_images")
SEED = 2025
COUNT = 36  # 12 per layout


def main() -> None:
    """Write the images and labels.json."""
    OUT.mkdir(exist_ok=True)
    labels = {}
    for s in synth.generate_set(COUNT, seed=SEED):
        name = f"{s.layout}_{s.seed}.jpg"
        (OUT / name).write_bytes(s.jpeg)
        labels[name] = {"code": s.code, "size_type": s.size_type, "layout": s.layout, "seed": s.seed, "font": s.font}
    (OUT / "labels.json").write_text(json.dumps(labels, indent=1, sort_keys=True) + "\n")
    size = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"{len(labels)} images, {size / 1e6:.2f} MB in {OUT}")  # noqa: T201


if __name__ == "__main__":
    main()
