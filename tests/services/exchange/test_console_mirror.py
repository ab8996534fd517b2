"""The console's declaration page shows our figures beside the partner's, the differences highlighted."""

from __future__ import annotations

import re

from api.console.i18n import COOKIE as LANG_COOKIE
from tests.services.exchange.sides import certificate, pre_arrival


def _sign_in(side, lang: str) -> None:
    side.client.cookies.set(LANG_COOKIE, lang)
    key = side.officers[0]["Authorization"].removeprefix("Bearer ")
    assert side.client.post("/console/login", data={"key": key}, follow_redirects=False).status_code == 303


def test_declaration_page_shows_both_sides_with_differences_highlighted(side, import_body) -> None:
    side.receive("preArrival", pre_arrival(gross="14000"), "HK-2026-000042")
    side.receive("originCertificate", certificate(), "E263600001234567")
    decl = side.file(import_body)
    _sign_in(side, "en")
    html = side.client.get(f"/console/declarations/{decl['id']}").text
    section = html[html.index('id="partner"') :]
    assert "Consignment reference HK-2026-000042." in section
    flagged = re.findall(r'<tr class="differs">(.*?)</tr>', section, re.S)
    assert len(flagged) == 1
    assert "gross mass (kg)" in flagged[0]
    assert "13000" in flagged[0]
    assert "14000" in flagged[0]
    assert "Form E E263600001234567: verified." in section
    side.client.cookies.set(LANG_COOKIE, "vi")
    vi = side.client.get(f"/console/declarations/{decl['id']}").text
    assert "Dữ liệu của hải quan nước bạn" in vi
    assert "trọng lượng cả bì (kg)" in vi


def test_a_declaration_without_partner_reference_has_no_partner_section(side, import_body) -> None:
    body = {**import_body, "partner_reference": None, "preferential_origin": None}
    decl = side.file(body)
    _sign_in(side, "en")
    assert 'id="partner"' not in side.client.get(f"/console/declarations/{decl['id']}").text
