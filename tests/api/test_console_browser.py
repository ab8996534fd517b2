"""The review console in a real browser (headless Chromium through Playwright): sign in, open, decide."""

from __future__ import annotations

import os
import shutil
from typing import Any

import httpx
import pytest

from api.console.i18n import COOKIE as LANG_COOKIE
from tests.api.test_console import Console, clear_key

CHROMIUM = os.environ.get("SMARTGATE_TEST_CHROMIUM", "/usr/bin/chromium")
# Chromium's own background traffic is refused by a closed network; these flags keep it quiet and fast.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip


def _need_browser() -> Any:
    reason = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        reason = "the playwright package is not installed (the dev extra has it)"
    if reason is None and not (os.access(CHROMIUM, os.X_OK) or shutil.which(CHROMIUM)):
        reason = f"Chromium not found at {CHROMIUM} (Debian package chromium; `make test` installs it)"
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true requires the browser tests: {reason}")
        pytest.skip(reason)
    return sync_playwright


@pytest.mark.xdist_group("browser")
def test_officer_signs_in_opens_and_clears_in_a_browser(served, runtime, keys, declaration_body):
    sync_playwright = _need_browser()
    # The API through the same server the browser uses (one lifespan: the server's).
    client = httpx.Client(base_url=served)
    console = Console(client, runtime, keys, declaration_body)
    decl = console.file()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            # This walk reads the English console (the language switch has its own test below).
            page.context.add_cookies([{"name": LANG_COOKIE, "value": "en", "url": f"{served}/console"}])
            page.goto(f"{served}/console")
            assert page.url.endswith("/console/login")
            page.fill("#key", clear_key(console.officer))
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(f"{served}/console")
            row = page.locator("table.queue tbody tr", has_text=decl["number"])
            assert row.count() == 1
            assert decl["channel"] in row.inner_text()  # yellow, or red by the 1 % random draw
            row.locator("a").click()
            page.wait_for_url(f"{served}/console/declarations/{decl['id']}")
            assert "new_trader" in page.inner_text("body")
            # The stylesheet loads under the console's Content-Security-Policy (no inline style, no script).
            assert page.eval_on_selector("header", "e => getComputedStyle(e).display") == "flex"
            page.check("input[name=outcome][value=clear]")
            page.fill("#reason", "phytosanitary certificate checked")
            page.get_by_role("button", name="Record decision").click()
            page.wait_for_url("**?done=clear")
            assert page.locator(".notice").inner_text() == "Cleared."
            assert "cleared" in page.locator("h1 .status").inner_text()
        finally:
            browser.close()
    assert console.api(decl["id"])["status"] == "cleared"
    client.close()


@pytest.mark.xdist_group("browser")
def test_officer_switches_language_and_it_is_remembered(served, runtime, keys, declaration_body):
    """Vietnamese first; English and Chinese on a click; the choice outlives the page, the session and the tab."""
    sync_playwright = _need_browser()
    client = httpx.Client(base_url=served)
    console = Console(client, runtime, keys, declaration_body)
    decl = console.file()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(locale="en-US")  # an English browser: the console still opens in Vietnamese
            page = context.new_page()
            page.goto(f"{served}/console/login")
            assert page.get_attribute("html", "lang") == "vi"
            page.fill("#key", clear_key(console.officer))
            page.get_by_role("button", name="Đăng nhập").click()
            page.wait_for_url(f"{served}/console")
            assert page.locator("h1").inner_text().startswith("Tờ khai chờ xử lý")
            page.locator("table.queue tbody tr", has_text=decl["number"]).locator("a").click()
            page.wait_for_url(f"{served}/console/declarations/{decl['id']}")

            page.get_by_role("button", name="English").click()  # back on the same declaration, in English
            page.wait_for_url(f"{served}/console/declarations/{decl['id']}")
            assert page.get_attribute("html", "lang") == "en"
            assert page.get_by_role("heading", name="Goods and duties").count() == 1
            page.get_by_role("link", name="Gate holds").click()
            assert page.get_attribute("html", "lang") == "en"  # remembered on the next page

            page.get_by_role("button", name="中文").click()
            page.wait_for_url(f"{served}/console/gate")
            assert page.get_attribute("html", "lang") == "zh-Hans"
            assert "卡口扣留车辆" in page.locator("h1").inner_text()
            assert page.locator('button[aria-current="true"]').inner_text() == "中文"
            page.get_by_role("button", name="退出登录").click()
            page.wait_for_url(f"{served}/console/login")
            assert page.get_by_role("heading", name="登录").count() == 1  # signed out, still Chinese

            again = context.new_page()  # a new tab of the same browser
            again.goto(f"{served}/console/login")
            assert again.get_attribute("html", "lang") == "zh-Hans"
        finally:
            browser.close()
    client.close()


def _top(page: Any, selector: str) -> float:
    box = page.locator(selector).bounding_box()
    assert box is not None, selector
    return float(box["y"])


@pytest.mark.xdist_group("browser")
def test_facts_come_before_the_decision_in_vietnamese(served, runtime, keys, declaration_body):
    """The default language: found by the truck's plate from the header's search box, the declaration reads
    channel, goods and duties (rates), documents and gate above the decision form."""
    sync_playwright = _need_browser()
    client = httpx.Client(base_url=served)
    console = Console(client, runtime, keys, declaration_body)
    decl = console.file()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(f"{served}/console/login")
            page.fill("#key", clear_key(console.officer))
            page.get_by_role("button", name="Đăng nhập").click()
            page.wait_for_url(f"{served}/console")
            page.fill("#q", "24c 123 45")
            page.get_by_role("button", name="Tìm kiếm").click()
            page.wait_for_url("**/console/search?q=*")
            row = page.locator("table.results tbody tr", has_text=decl["number"])
            assert "biển số xe" in row.inner_text()  # matched by the truck plate
            row.locator("a").click()
            page.wait_for_url(f"{served}/console/declarations/{decl['id']}")
            assert page.get_attribute("html", "lang") == "vi"
            tops = [_top(page, f"#{s}") for s in ("channel", "goods", "documents", "gate", "decision", "history")]
            assert tops == sorted(tops), tops
            goods = page.locator("#goods").inner_text()
            assert "Thuế suất thuế GTGT" in goods
            assert "Tỷ giá áp dụng: 1 USD =" in goods
            assert page.get_by_role("heading", name="Quyết định").count() == 1
            page.check("input[name=outcome][value=clear]")
            page.get_by_role("button", name="Ghi nhận quyết định").click()
            page.wait_for_url("**?done=clear")
            assert page.locator(".notice").inner_text() == "Đã thông quan."
        finally:
            browser.close()
    assert console.api(decl["id"])["status"] == "cleared"
    client.close()


@pytest.mark.xdist_group("browser")
def test_facts_first_queue_page_and_unpaid_list_in_english(served, runtime, keys, declaration_body):
    """In English: the queue row says goods and plate; the declaration's facts sit above the form, camera images
    open from it; once cleared, it is on the cleared-but-unpaid list."""
    sync_playwright = _need_browser()
    client = httpx.Client(base_url=served)
    console = Console(client, runtime, keys, declaration_body)
    decl = console.file()
    runtime.relay.drain()
    from tests.services.inspection.conftest import FakeReader, door, taken_at

    runtime.extras["inspection.ocr"].reader = FakeReader(decl["body"]["containers"][0]["number"])
    posted = client.post(
        "/api/v1/gate/events",
        data={"lane": "OUT-1", "direction": "out", "camera_id": "KT-OUT-1", "taken_at": taken_at()},
        files=[("image", ("door.png", door(decl["body"]["containers"][0]["number"]), "image/png"))],
        headers=keys.make("gate"),
    )
    assert posted.status_code == 201, posted.text
    runtime.relay.drain()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.context.add_cookies([{"name": LANG_COOKIE, "value": "en", "url": f"{served}/console"}])
            page.goto(f"{served}/console/login")
            page.fill("#key", clear_key(console.officer))
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(f"{served}/console")
            row = page.locator("table.queue tbody tr", has_text=decl["number"])
            text = row.inner_text()
            assert "Fresh lychees, in cartons" in text
            assert "24C-123.45" in text
            row.locator("a").click()
            page.wait_for_url(f"{served}/console/declarations/{decl['id']}")
            tops = [_top(page, f"#{s}") for s in ("channel", "goods", "documents", "gate", "decision", "history")]
            assert tops == sorted(tops), tops
            assert "gate mismatch: risk reassessed" in page.locator("#history").inner_text()
            with page.expect_response("**/images/*") as image:
                page.locator("#gate a", has_text="camera image 1").click()
            assert image.value.status == 200
            assert image.value.headers["content-type"] == "image/png"
            page.go_back()
            page.check("input[name=outcome][value=clear]")
            page.get_by_role("button", name="Record decision").click()
            page.wait_for_url("**?done=clear")
            page.get_by_role("link", name="Cleared, not paid").click()
            page.wait_for_url(f"{served}/console/unpaid")
            owed = page.locator("table.unpaid tbody tr", has_text=decl["number"])
            assert owed.count() == 1
            assert "₫" in owed.inner_text()
        finally:
            browser.close()
    client.close()
