"""`smartgate ocr read`: one JSON line per image, errors on stderr and in the line, non-zero exit on a bad file."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from ocr.cli import app

DATA = Path(__file__).with_name("gate_images")


def test_read_prints_one_json_line_per_image(tmp_path: Path) -> None:
    labels = json.loads((DATA / "labels.json").read_text())
    name = sorted(n for n, v in labels.items() if v["layout"] == "horizontal")[0]
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    result = CliRunner().invoke(app, ["read", str(DATA / name), str(bad), "--no-barcodes"])
    assert result.exit_code == 1
    lines = [json.loads(x) for x in result.stdout.strip().splitlines()]
    assert [x["file"] for x in lines] == [str(DATA / name), str(bad)]
    assert lines[0]["container_codes"][0]["code"] == labels[name]["code"]
    assert set(lines[0]) >= {"file", "container_codes", "barcodes", "seconds"}
    assert "error" in lines[1]
    assert lines[1]["container_codes"] == []
    assert "Traceback" not in result.output


def test_missing_file_is_an_error_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["read", str(tmp_path / "nope.png")])
    assert result.exit_code == 1
    assert json.loads(result.stdout)["error"]
