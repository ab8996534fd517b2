"""The console in Vietnamese (default), Simplified Chinese and English: every page in each language, no English left
in vi or zh, the choice remembered, the API's problems shown in the officer's language, money and dates per locale."""

from __future__ import annotations

import datetime as dt
import re
from html import unescape
from pathlib import Path
from typing import Any

import pytest

from api.console.i18n import COOKIE as LANG_COOKIE
from tests.api.test_console import BASE, Console
from tests.i18n_support import PLACEHOLDER, template
from tests.services.inspection.conftest import FakeReader, door, taken_at

TEMPLATES = Path(__file__).resolve().parents[2] / "api" / "console" / "templates"
HTML_LANG = {"vi": "vi", "zh": "zh-Hans", "en": "en"}
COOKIE_OF = {"vi": None, "zh": "zh", "en": "en"}  # Vietnamese is what the console speaks without a choice
MISSING = "00000000-0000-4000-8000-000000000000"


def _visible(html: str) -> str:
    """What a reader sees: text nodes and the attributes read aloud (alt, aria-label), not markup or values."""
    spoken = " ".join(re.findall(r'\s(?:alt|aria-label)="([^"]*)"', html))
    # Commands, and data marked as not to translate (a rule set's own reasons, a chain's label), stay as they are.
    text = re.sub(r"<(code|title)\b.*?</\1>", " ", html, flags=re.S)
    text = re.sub(r'<(td|span)\b[^>]*translate="no"[^>]*>.*?</\1>', " ", text, flags=re.S)
    text = re.sub(r"<[^>]+>", " ", text)
    return unescape(f"{text} {spoken}")


def _english_fragments() -> list[str]:
    """Pieces of English the console or the API would show untranslated: each msgid's literal text between its
    placeholders, three letters or more."""
    out = set()
    for domain in ("console", "problems"):
        for message in template(domain):
            if not message.id:
                continue
            for msgid in message.id if isinstance(message.id, tuple) else (message.id,):
                for piece in PLACEHOLDER.split(msgid)[::2]:
                    piece = re.sub(r"<[^>]+>.*?</[^>]+>", " ", piece).strip(" .,:;()'→—-")
                    if sum(c.isalpha() for c in piece) >= 3:
                        out.add(piece)
    # The names of the languages on the switch are each in its own language on purpose.
    return sorted(out - {"English"}, key=len, reverse=True)


ENGLISH = _english_fragments()


def _english_in(text: str) -> list[str]:
    return [piece for piece in ENGLISH if re.search(rf"(?<![\w-]){re.escape(piece)}(?![\w-])", text)]


@pytest.fixture
def console(client: Any, runtime: Any, keys: Any, declaration_body: dict[str, Any]) -> Console:
    return Console(client, runtime, keys, declaration_body)


@pytest.fixture
def walked(console: Console, runtime: Any, keys: Any) -> dict[str, Any]:
    """A console with something on every page: a declaration at the gate and verified in the ledger, one with a
    document requested and uploaded, a truck held, and pages that end in an error."""
    at_gate = console.file()
    asked = console.file()
    camera = keys.make("gate")
    for plate_code in (at_gate["body"]["containers"][0]["number"], "MSCU1234566"):
        runtime.extras["inspection.ocr"].reader = FakeReader(plate_code)
        posted = console.client.post(
            "/api/v1/gate/events",
            data={"lane": "IN-1", "direction": "in", "camera_id": "KT-IN-1", "taken_at": taken_at()},
            files=[("image", ("door.png", door(plate_code), "image/png"))],
            headers=camera,
        )
        assert posted.status_code == 201, posted.text
    assert console.sign_in().status_code == 303
    html = console.page(f"/console/declarations/{asked['id']}").text
    done = console.client.post(
        f"/console/declarations/{asked['id']}/decide",
        data={"outcome": "request_documents", "reason": "C/O form E", "csrf": console.csrf(html),
              "if_match": console.if_match(html)},
    )  # fmt: skip
    assert done.status_code == 200
    up = console.client.post(
        f"{BASE}/{asked['id']}/documents", files={"file": ("co.pdf", b"%PDF-1.4", "application/pdf")},
        headers=console.trader,
    )  # fmt: skip
    assert up.status_code == 201, up.text
    runtime.relay.drain()
    runtime.extras["provenance.checkpointer"].checkpoint_now()
    return {"at_gate": at_gate, "asked": asked}


def _pages(walked: dict[str, Any]) -> list[str]:
    a, b = walked["at_gate"]["id"], walked["asked"]["id"]
    return [
        "/console",
        "/console?channel=red&status=inspection",  # empty
        "/console?done=on_duty",
        "/console/gate",
        "/console/gate?decision=all",
        "/console/gate?decision=proceed",
        f"/console/declarations/{a}",
        f"/console/declarations/{a}?done=taken",
        f"/console/declarations/{b}?done=request_documents",
        f"/console/declarations/{MISSING}",  # the API's 404 problem
        "/console/declarations/not-an-id",  # the console's own 404
        f"/console/declarations/{a}/documents/not-an-id",
        "/console/search",
        "/console/search?q=Lao+Cai",  # the trader's name: both declarations
        "/console/search?q=zzzz",  # nothing found
        "/console/unpaid",
    ]


def _use(console: Console, language: str) -> None:
    console.client.cookies.delete(LANG_COOKIE)
    if COOKIE_OF[language]:
        console.client.cookies.set(LANG_COOKIE, COOKIE_OF[language])


@pytest.mark.parametrize("language", ["vi", "zh"])
def test_every_page_is_in_the_language_with_no_english_left(console: Console, walked: Any, language: str) -> None:
    _use(console, language)
    for path in _pages(walked):
        got = console.page(path)
        assert got.status_code in (200, 404), (path, got.status_code)
        assert f'<html lang="{HTML_LANG[language]}">' in got.text, path
        assert got.headers["content-language"] == HTML_LANG[language]
        assert _english_in(_visible(got.text)) == [], path
    console.client.post("/console/logout")
    login = console.page("/console/login")
    assert _english_in(_visible(login.text)) == []
    assert f'<html lang="{HTML_LANG[language]}">' in login.text


def test_the_english_console_shows_its_texts(console: Console, walked: Any) -> None:
    """The check above can see English: in English the same pages are full of it."""
    _use(console, "en")
    html = console.page(f"/console/declarations/{walked['at_gate']['id']}").text
    assert '<html lang="en">' in html
    assert len(_english_in(_visible(html))) > 40


def test_money_dates_and_terms_per_language(console: Console, walked: Any) -> None:
    decl = walked["at_gate"]
    path = f"/console/declarations/{decl['id']}"
    _use(console, "vi")
    vi = console.page(path).text
    assert "89.001.600\xa0₫" in vi  # duties on the lychees: VND without decimals, Vietnamese separators
    assert "Thuế GTGT" in vi
    assert "Mã HS" in vi
    assert "luồng" in vi
    assert "tờ khai" in _visible(vi).lower()
    assert "giờ Hà Nội" in vi
    _use(console, "zh")
    zh = console.page(path).text
    assert "₫89,001,600" in zh
    assert "增值税" in zh
    assert "通道" in zh
    _use(console, "en")
    en = console.page(path).text
    assert "₫89,001,600" in en
    # The submission time in Hanoi time (UTC+7, whatever the server's zone), written the language's way.
    at = dt.datetime.fromisoformat(decl["submitted_at"].replace("Z", "+00:00")).astimezone(
        dt.timezone(dt.timedelta(hours=7))
    )
    assert f"{at:%H:%M} {at.day}/{at.month}/{at:%y}" in vi
    assert f"{at.year}/{at.month}/{at.day} {at:%H:%M}" in zh
    assert f"{at.month}/{at.day}/{at:%y}, {at.hour % 12 or 12}:{at:%M}\u202f{'AM' if at.hour < 12 else 'PM'}" in en
    _use(console, "vi")
    assert re.search(r"\d+ phút", console.page("/console").text)  # the waiting time, in Vietnamese


def test_language_switch_is_remembered_and_safe(console: Console, walked: Any) -> None:
    console.client.cookies.delete(LANG_COOKIE)
    assert '<html lang="vi">' in console.page("/console/gate").text  # the default
    switched = console.client.post(
        "/console/language", data={"lang": "zh", "next": "/console/gate?decision=all"}, follow_redirects=False
    )
    assert switched.status_code == 303
    assert switched.headers["location"] == "/console/gate?decision=all"
    cookie = switched.headers["set-cookie"]
    assert cookie.startswith(f"{LANG_COOKIE}=zh;")
    assert "Path=/console" in cookie
    assert "HttpOnly" in cookie
    assert "Max-Age=31536000" in cookie
    page = console.page("/console/gate?decision=all").text
    assert '<html lang="zh-Hans">' in page
    assert "卡口事件" in page
    assert 'aria-current="true">中文' in page
    # Elsewhere, the switch goes back to the console only.
    for target in ("https://evil.example/", "//evil.example/console", "/console/../api/v1", "javascript:alert(1)"):
        back = console.client.post("/console/language", data={"lang": "en", "next": target}, follow_redirects=False)
        assert back.headers["location"] == "/console", target
    forged = console.client.post(
        "/console/language", data={"lang": "en"}, headers={"Sec-Fetch-Site": "cross-site"}, follow_redirects=False
    )
    assert forged.status_code == 403
    unknown = console.client.post("/console/language", data={"lang": "xx"}, follow_redirects=False)
    assert unknown.headers["set-cookie"].startswith(f"{LANG_COOKIE}=vi;")


def test_the_apis_refusal_is_shown_in_the_officers_language(console: Console) -> None:
    decl = console.file()
    console.sign_in()
    _use(console, "vi")
    html = console.page(f"/console/declarations/{decl['id']}").text
    refused = console.client.post(
        f"/console/declarations/{decl['id']}/decide",
        data={"outcome": "reject", "csrf": console.csrf(html), "if_match": console.if_match(html)},
    )
    assert refused.status_code == 422
    assert "từ chối phải nêu lý do" in refused.text  # the API's detail, asked in Vietnamese
    assert "Nội dung không xử lý được" in refused.text
    _use(console, "zh")
    refused = console.client.post(
        f"/console/declarations/{decl['id']}/decide",
        data={"outcome": "reject", "csrf": console.csrf(html), "if_match": console.if_match(html)},
    )
    assert "拒绝必须说明理由" in refused.text
    _use(console, "vi")
    switch_back = re.search(r'name="next" value="([^"]*)"', refused.text)
    assert switch_back is not None
    assert unescape(switch_back.group(1)) == f"/console/declarations/{decl['id']}"  # not the POST-only URL


@pytest.mark.parametrize("path", sorted(p.name for p in TEMPLATES.glob("*.html")))
def test_templates_have_no_text_outside_the_catalog(path: str) -> None:
    """Every word a template shows goes through gettext: strip what is translated or data, nothing with letters may
    remain (but the product name, commands in <code> and the fixed symbols)."""
    source = (TEMPLATES / path).read_text()
    for attribute in re.findall(r'\s(?:alt|aria-label|title|placeholder)="([^"]*)"', source):
        assert re.fullmatch(r"\s*(\{\{.*?\}\}|\{%.*?%\})*\s*", attribute), (path, attribute)
    text = re.sub(r"\{%-?\s*trans\b.*?endtrans\s*-?%\}", " ", source, flags=re.S)
    text = re.sub(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", " ", text, flags=re.S)
    text = re.sub(r"<code>.*?</code>", " ", text, flags=re.S)
    text = re.sub(r"<[^>]*>", " ", text)
    words = set(re.findall(r"[^\W\d_][\w-]*", text)) - {"smartgate", "SHA-256"}
    assert words == set(), path
