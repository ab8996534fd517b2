"""Client file names made safe to show and to send back in Content-Disposition."""

from __future__ import annotations

import pytest

from services.kernel.filenames import BIDI_CONTROLS, ascii_fallback, content_disposition, display_name


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        ("invoice.pdf", "invoice.pdf"),
        ("Hóa đơn.pdf", "Hóa đơn.pdf"),
        ("report\u202efdp.exe", "reportfdp.exe"),
        ("a\r\nb\tc\x00d\x1b[31m\x7f\x85.pdf", "abcd[31m.pdf"),
        ("line\u2028break.pdf", "linebreak.pdf"),
        ("../../etc/passwd", "_.._etc_passwd"),
        ("C:\\Users\\x\\scan.png", "C:_Users_x_scan.png"),
        ("\u202e\u2066", "document"),
        ("", "document"),
        (None, "document"),
        ("x" * 300 + ".pdf", "x" * 255),
    ],
)
def test_display_names_have_no_controls_bidi_or_directories(given: str | None, shown: str) -> None:
    assert display_name(given) == shown
    assert not any(c in BIDI_CONTROLS for c in display_name(given))


def test_content_disposition_is_rfc_6266_with_a_safe_ascii_fallback() -> None:
    value = content_disposition('Tờ khai "số 1";\u202e.pdf')
    assert value == (
        "attachment; filename=\"To khai _so 1_.pdf\"; filename*=UTF-8''T%E1%BB%9D%20khai%20%22s%E1%BB%91%201%22%3B.pdf"
    )
    assert value.isascii()
    assert ascii_fallback("漢字") == "document"
