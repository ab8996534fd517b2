"""Documents in the console: names shown without bidi or control characters, downloads as the API serves them."""

from __future__ import annotations

from typing import Any

import pytest

from services.kernel.filenames import BIDI_CONTROLS
from tests.api.test_console import BASE, Console


@pytest.fixture
def console(client: Any, runtime: Any, keys: Any, declaration_body: dict[str, Any]) -> Console:
    return Console(client, runtime, keys, declaration_body)


def test_document_names_are_shown_and_downloaded_clean(console: Console) -> None:
    decl = console.file()
    console.sign_in()
    html = console.page(f"/console/declarations/{decl['id']}").text
    form = {"outcome": "request_documents", "reason": "the invoice, please", "csrf": console.csrf(html),
            "if_match": console.if_match(html)}  # fmt: skip
    asked = console.client.post(f"/console/declarations/{decl['id']}/decide", data=form)
    assert asked.status_code == 200
    up = console.client.post(
        f"{BASE}/{decl['id']}/documents",
        files={"file": ("invoice\u202eexe.pdf\u2067", b"%PDF-1.7", "application/pdf")},
        headers=console.trader,
    )
    assert up.status_code == 201, up.text
    html = console.page(f"/console/declarations/{decl['id']}").text
    assert "invoiceexe.pdf" in html
    assert not any(c in html for c in BIDI_CONTROLS)
    got = console.page(f"/console/declarations/{decl['id']}/documents/{up.json()['id']}")
    assert got.status_code == 200
    assert got.headers["content-type"] == "application/octet-stream"
    assert got.headers["x-content-type-options"] == "nosniff"
    assert got.headers["content-disposition"] == (
        "attachment; filename=\"invoiceexe.pdf\"; filename*=UTF-8''invoiceexe.pdf"
    )
