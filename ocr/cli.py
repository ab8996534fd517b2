"""`smartgate ocr ...`: read container codes, barcodes and QR codes from gate images."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import typer

app = typer.Typer(
    help="Gate OCR: container codes (ISO 6346), seal barcodes, declaration QR codes.", no_args_is_help=True
)


@app.callback()
def _main() -> None:
    """Gate OCR commands."""


@app.command("read")
def read(
    images: list[Path] = typer.Argument(..., help="JPEG, PNG or WebP images of container doors."),
    threads: int = typer.Option(1, "--threads", min=1, help="onnxruntime intra-op threads per inference."),
    no_barcodes: bool = typer.Option(False, "--no-barcodes", help="Skip barcode and QR code decoding."),
) -> None:
    """Print one JSON object per image: container codes (best first), barcodes, seconds for that image."""
    from ocr.images import DEFAULT_MAX_BYTES, ImageError
    from ocr.reader import GateReader

    reader = GateReader(intra_op_threads=threads, barcodes=not no_barcodes)
    failed = 0
    for path in images:
        start = time.perf_counter()
        out: dict[str, object] = {"file": str(path)}
        try:
            if path.stat().st_size > DEFAULT_MAX_BYTES:
                raise ImageError(f"file is {path.stat().st_size} bytes, over the limit of {DEFAULT_MAX_BYTES}")
            data = path.read_bytes()
            result = reader.read(data)
        except (OSError, ImageError) as exc:
            failed += 1
            msg = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            typer.echo(f"error: {path}: {msg}", err=True)
            out.update(
                {"error": msg, "container_codes": [], "barcodes": [], "seconds": round(time.perf_counter() - start, 4)}
            )
        else:
            out.update(result.to_dict())
        print(json.dumps(out, ensure_ascii=False), flush=True)
    if failed:
        raise typer.Exit(code=1)


def main() -> None:
    """Entry point for `python -m ocr.cli`."""
    app(prog_name="smartgate ocr")


if __name__ == "__main__":
    main()
    sys.exit(0)
