"""The buyer's path in a real browser (headless Chromium through Playwright, JavaScript off): a pallet label's QR
code, printed as an image, read by the gate's barcode reader (pyzbar), opened through the gateway, and the page
says in Vietnamese that every record is verified against the log."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.test_api_docs_browser import served_gateway  # noqa: F401 - the fixture, used by name below
from tests.api.test_console_browser import CHROMIUM, CHROMIUM_ARGS, _need_browser
from tests.services.traceability.test_resolver import SSCC, seed
from tests.support import wait_for


def _qr_label(uri: str, path: Path) -> Path:
    """A pallet label's QR code as a PNG (qrcode, error correction M, as GS1 recommends for Digital Link)."""
    qrcode = pytest.importorskip("qrcode")
    image = qrcode.make(uri, error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=8, border=4)
    image.save(path)
    return path


def _read_qr(path: Path) -> str:
    """What the gate's reader (ocr.barcodes, pyzbar) decodes from the image."""
    import cv2

    from ocr.barcodes import BarcodeUnavailable, read_barcodes

    try:
        codes = read_barcodes(cv2.imread(str(path)))
    except BarcodeUnavailable as exc:
        pytest.skip(str(exc))
    assert [c.type for c in codes] == ["QRCODE"]
    return codes[0].data


@pytest.mark.xdist_group("browser")
def test_a_buyer_scans_the_pallet_and_sees_it_verified(
    served: str,
    served_gateway: str,  # noqa: F811 - the fixture imported above
    keys: Any,
    tmp_path: Path,
) -> None:
    sync_playwright = _need_browser()
    client = httpx.Client(base_url=served, timeout=30)
    seed(client, keys)

    def verified() -> bool:
        got = client.get(f"/00/{SSCC}", headers={"Accept": "application/json"})
        return got.status_code == 200 and got.json()["verified"]

    assert wait_for(verified, 60)
    uri = _read_qr(_qr_label(f"{served_gateway}/00/{SSCC}", tmp_path / "label.png"))
    assert uri == f"{served_gateway}/00/{SSCC}"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(
                locale="vi-VN", java_script_enabled=False, viewport={"width": 390, "height": 844}
            )
            page = context.new_page()
            response = page.goto(uri)
            assert response is not None
            assert response.status == 200
            assert page.locator("html").get_attribute("lang") == "vi"
            summary = page.locator("#summary")
            assert summary.get_attribute("data-status") == "verified"
            assert "8 bản ghi truy xuất này đã được xác minh với sổ cái" in summary.inner_text()
            badges = page.locator('[data-status="verified"]')
            assert badges.count() >= 9
            assert "đã xác minh với sổ cái" in badges.nth(1).inner_text()
            body = page.inner_text("body")
            for shown in ("Mã số vùng trồng", "VN-LCOR-0012", "Giấy chứng nhận kiểm dịch thực vật", "VN-PC-2026-0001"):
                assert shown in body
            # The inline stylesheet applies under the page's CSP (its hash), on a phone-sized screen.
            assert page.eval_on_selector("header", "e => getComputedStyle(e).backgroundColor") == "rgb(11, 93, 59)"
            assert page.eval_on_selector("main", "e => e.scrollWidth <= window.innerWidth") is True
            # The language switch is a plain link.
            page.get_by_role("link", name="中文").click()
            assert "已通过账本验证" in page.inner_text("#summary")
        finally:
            browser.close()
    client.close()
