"""Languages: catalogs complete and current, Accept-Language chosen right, every problem text localised, code stable."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel

from services.kernel.errors import NotFound, Unprocessable, install_error_handlers
from services.kernel.i18n import localise_problem, negotiate, problem_catalog, problem_texts, template_pattern
from tests.i18n_support import DOMAINS, PLACEHOLDER, TRANSLATED, extracted, placeholders, template, translations

# Reviewed customs terms: where an English text says the left, the translation must say the right.
GLOSSARY = {
    r"\bdeclarations?\b": ("tờ khai", "报关单"),
    r"\bphysical inspection\b": ("kiểm tra thực tế", "查验"),
    r"\b[Cc]lear(ed)?\b": ("thông quan", "通关"),
    r"\breleased?\b": ("giải phóng hàng", "放行"),
    r"\byellow\b": ("luồng vàng", "黄色"),
    r"\bred\b": ("luồng đỏ", "红色"),
    r"\bgreen\b": ("luồng xanh", "绿色"),
    r"\bchannel\b": ("luồng", "通道"),
    r"\bImport duty\b": ("thuế nhập khẩu", "关税"),
    r"\bVAT\b": ("thuế gtgt", "增值税"),
    r"\bHS\b": ("mã hs", "HS编码"),
    r"\bofficers?\b": ("cán bộ", "关员"),
    r"\bcustoms value\b": ("trị giá hải quan", "完税价格"),
}


def _sample(msgid: str) -> dict[str, str]:
    """Values for a template's placeholders, each distinct and recognisable."""
    return {name: f"V{n}x" for n, name in enumerate(sorted(placeholders(msgid)))}


@pytest.mark.parametrize("domain", sorted(DOMAINS))
def test_the_template_holds_what_the_code_says(domain: str) -> None:
    """A text added, changed or removed in the code without `make messages` fails here."""
    in_code = extracted(domain)
    in_pot = {m.id for m in template(domain) if m.id}
    assert in_code - in_pot == set(), "new texts: run `make messages` and translate them (docs/i18n.md)"
    assert in_pot - in_code == set(), "texts no longer in the code: run `make messages`"


@pytest.mark.parametrize("language", TRANSLATED)
@pytest.mark.parametrize("domain", sorted(DOMAINS))
def test_every_text_is_translated(domain: str, language: str) -> None:
    po = translations(domain, language)
    wanted = {m.id for m in template(domain) if m.id}
    have = {m.id: m for m in po if m.id}
    assert wanted - set(have) == set(), f"{language}: missing from the .po (run `make messages`)"
    assert set(have) - wanted == set(), f"{language}: obsolete entries in the .po (run `make messages`)"
    for msgid, message in have.items():
        singular = msgid[0] if isinstance(msgid, tuple) else msgid
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        assert not message.fuzzy, f"{language}: fuzzy {singular!r}"
        for text in strings:
            assert text, f"{language}: untranslated {singular!r}"
            assert text != singular, f"{language}: {singular!r} left in English"
            every = placeholders(singular) | (placeholders(msgid[1]) if isinstance(msgid, tuple) else set())
            assert placeholders(text) <= every, f"{language}: {singular!r} → {text!r} has unknown placeholders"
            if not isinstance(msgid, tuple):
                assert placeholders(text) == placeholders(singular), f"{language}: {singular!r} drops a value"
        for pattern, (vi, zh) in GLOSSARY.items():
            if re.search(pattern, PLACEHOLDER.sub("", singular)):
                term = vi if language == "vi" else zh
                assert all(term in t.lower() or term in t for t in strings), f"{language}: {singular!r} needs {term}"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, "en"),
        ("", "en"),
        ("vi", "vi"),
        ("vi-VN,vi;q=0.9,en;q=0.8", "vi"),
        ("zh-CN", "zh_Hans"),
        ("zh-Hans-CN;q=0.8, en;q=0.5", "zh_Hans"),
        ("zh-TW", "zh_Hans"),
        ("en-US,en;q=0.9", "en"),
        ("fr-FR, vi;q=0.4", "vi"),  # ours, even when not first
        ("en;q=0.5, zh;q=0.9", "zh_Hans"),  # quality wins over order
        ("vi;q=0, en", "en"),  # q=0 means "not this"
        ("de, fr", "en"),
        ("*", "en"),
        ("vi;q=abc, en;q=0.1", "en"),
    ],
)
def test_accept_language_is_negotiated(header: str | None, expected: str) -> None:
    assert negotiate(header, "en") == expected


@pytest.mark.parametrize("language", TRANSLATED)
def test_every_problem_text_renders_localised(language: str) -> None:
    """Walk every title and detail of the problems catalog: the English text as the code renders it comes out in
    the language, with the values it carried."""
    texts = problem_catalog(language)
    po = translations("problems", language)
    for message in template("problems"):
        if not message.id:
            continue
        values = _sample(message.id)
        english = message.id % values if values else message.id
        expected = po.get(message.id).string % values if values else po.get(message.id).string
        assert texts.localise(english) == expected, message.id
        for value in values.values():
            assert value in texts.localise(english)


def test_templates_are_matched_whole_and_placeholders_repeat() -> None:
    pattern = template_pattern("payment %(id)s is %(status)s, not claimed")
    assert pattern is not None
    found = pattern.fullmatch("payment 7 is confirmed, not claimed")
    assert found is not None
    assert found.groupdict() == {"id": "7", "status": "confirmed"}
    assert pattern.fullmatch("payment 7 is confirmed, not claimed!") is None
    assert template_pattern("no placeholder") is None
    assert template_pattern("%(a)s and %(a)s").fullmatch("x and y") is None  # type: ignore[union-attr]


def test_a_long_text_is_not_matched_so_matching_stays_cheap() -> None:
    texts = problem_catalog("vi")
    assert (
        texts.localise("payment 7 is claimed, not claimed")
        == "khoản nộp 7 đang ở trạng thái claimed, không phải chờ xác nhận"
    )
    hostile = "payment " + " is " * 1000 + ", not claimed"
    assert texts.localise(hostile) == hostile


def test_a_text_no_template_matches_stays_english() -> None:
    body = {"title": "Not found", "detail": "something the catalog never saw", "code": "x.y", "status": 404}
    out = localise_problem(dict(body), "vi")
    assert out["title"] == "Không tìm thấy"
    assert out["detail"] == body["detail"]
    assert out["code"] == "x.y"


def test_the_extractor_reads_raises_classes_and_constants() -> None:
    source = """
ENDED = "the session has ended"
class Gone(NotFound):
    title = "Gone for good"
    def __init__(self, what):
        super().__init__(f"{what[:10]} is gone")
def f(x, n):
    raise Unprocessable(f"{x.name} has {len(n)} items over {100}%", code="c")
def g():
    raise Unauthorized(ENDED)
def h():
    raise ValueError("not a problem")
"""
    texts = {t for _, t in problem_texts(source)}
    assert texts == {
        "Gone for good",
        "%(what)s is gone",
        "%(name)s has %(n)s items over %(value)s%%",
        "the session has ended",
    }


class Thing(BaseModel):
    size: int


@pytest.fixture
def client() -> Iterator[TestClient]:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/declarations/{ident}")
    def missing(ident: str) -> None:
        raise NotFound(f"declaration {ident} not found")

    @app.get("/reject")
    def reject() -> None:
        raise Unprocessable("a rejection needs a reason", code="decision.reason_required")

    @app.post("/things")
    def things(thing: Thing) -> dict[str, Any]:
        return thing.model_dump()

    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.mark.parametrize(
    ("accept", "language", "title", "detail"),
    [
        (None, "en", "Not found", "declaration KT-1 not found"),
        ("en-GB", "en", "Not found", "declaration KT-1 not found"),
        ("vi-VN", "vi", "Không tìm thấy", "không tìm thấy tờ khai KT-1"),
        ("zh-CN,zh;q=0.9", "zh-Hans", "未找到", "未找到报关单 KT-1"),
    ],
)
def test_problems_follow_accept_language(
    client: TestClient, accept: str | None, language: str, title: str, detail: str
) -> None:
    resp = client.get("/declarations/KT-1", headers={"Accept-Language": accept} if accept else {})
    assert resp.status_code == 404
    assert resp.headers["content-type"] == "application/problem+json"
    body = resp.json()
    assert (body["title"], body["detail"]) == (title, detail)
    assert body["type"] == "https://smartgate.example/problems/not-found"  # the type never changes
    assert resp.headers.get("content-language") == language
    assert resp.headers.get("vary") == "Accept-Language"


def test_codes_stay_and_framework_problems_are_localised(client: TestClient) -> None:
    rejected = client.get("/reject", headers={"Accept-Language": "zh"}).json()
    assert rejected["code"] == "decision.reason_required"
    assert rejected["detail"] == "拒绝必须说明理由"
    assert rejected["title"] == "内容无法处理"
    nowhere = client.get("/nowhere", headers={"Accept-Language": "vi"}).json()
    assert (nowhere["title"], nowhere["detail"]) == ("Không tìm thấy", "Không tìm thấy")
    invalid = client.post("/things", json={"size": "big"}, headers={"Accept-Language": "vi"}).json()
    assert invalid["title"] == "Dữ liệu không hợp lệ"
    assert invalid["detail"] == "Yêu cầu có 1 lỗi"
    assert invalid["errors"][0]["code"] == "int_parsing"  # per-field codes are the contract, untouched
