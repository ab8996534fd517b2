"""Seal barcodes (Code 128) and declaration QR codes read back through pyzbar."""

import io

import pytest
from PIL import Image

from ocr.barcodes import read_barcodes
from ocr.images import load_image

qrcode = pytest.importorskip("qrcode")


def png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def test_declaration_qr_code() -> None:
    payload = "SGDECL:VN-2025-000123;sha256=9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
    img = qrcode.make(payload).get_image().convert("RGB")
    found = read_barcodes(load_image(png(img)))
    assert [(b.type, b.data) for b in found] == [("QRCODE", payload)]


def test_code128_seal_on_a_door_photo_with_a_qr() -> None:
    barcode = pytest.importorskip("barcode")
    from barcode.writer import ImageWriter

    buf = io.BytesIO()
    barcode.get("code128", "CN0048213", writer=ImageWriter()).write(
        buf, options={"write_text": False, "module_width": 0.3, "module_height": 10, "quiet_zone": 4}
    )
    seal = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    qr = qrcode.make("SGDECL:VN-2025-000777").get_image().convert("RGB")
    door = Image.new("RGB", (900, 700), (150, 30, 28))
    door.paste(seal, (40, 40))
    door.paste(qr, (400, 300))
    found = {(b.type, b.data) for b in read_barcodes(load_image(png(door)))}
    assert found == {("CODE128", "CN0048213"), ("QRCODE", "SGDECL:VN-2025-000777")}


def test_no_barcode_no_result() -> None:
    assert read_barcodes(load_image(png(Image.new("RGB", (100, 100), (200, 200, 200))))) == []
