"""Gate holds in a real browser (headless Chromium through Playwright): an officer releases or escalates a held truck
with a reason, in Vietnamese (the default) and in English; a hold resolved meanwhile in another tab is refused."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from api.console.i18n import COOKIE as LANG_COOKIE
from tests.api.test_console import Console, clear_key
from tests.api.test_console_browser import CHROMIUM, CHROMIUM_ARGS, _need_browser
from tests.services.inspection.conftest import FakeReader, door, taken_at


def held_truck(client: httpx.Client, runtime: Any, keys: Any, decl: dict[str, Any]) -> dict[str, Any]:
    """The declaration's truck at the exit before its goods are released: held (declaration not cleared)."""
    container = decl["body"]["containers"][0]["number"]
    runtime.relay.drain()
    runtime.extras["inspection.ocr"].reader = FakeReader(container)
    posted = client.post(
        "/api/v1/gate/events",
        data={"lane": "OUT-1", "direction": "out", "camera_id": "KT-OUT-1", "taken_at": taken_at()},
        files=[("image", ("door.png", door(container), "image/png"))],
        headers=keys.make("gate"),
    )
    assert posted.status_code == 201, posted.text
    event: dict[str, Any] = posted.json()
    assert (event["decision"], event["reasons"]) == ("hold", ["declaration_not_cleared"])
    runtime.relay.drain()
    return event


def sign_in(page: Any, served: str, console: Console, button: str) -> None:
    page.goto(f"{served}/console/login")
    page.fill("#key", clear_key(console.officer))
    page.get_by_role("button", name=button).click()
    page.wait_for_url(f"{served}/console")


@pytest.mark.xdist_group("browser")
def test_officer_escalates_a_hold_in_vietnamese(served, runtime, keys, declaration_body):
    sync_playwright = _need_browser()
    client = httpx.Client(base_url=served)
    console = Console(client, runtime, keys, declaration_body)
    decl = console.file()
    event = held_truck(client, runtime, keys, decl)
    reason = "Niêm phong không khớp bản kê khai: kiểm tra thực tế hàng hóa"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()  # no language cookie: the console speaks Vietnamese
            sign_in(page, served, console, "Đăng nhập")
            page.get_by_role("link", name="Xe bị giữ tại cửa khẩu").click()
            page.wait_for_url(f"{served}/console/gate")
            row = page.locator(f"#event-{event['id']}")
            assert "tờ khai chưa được thông quan" in row.inner_text()
            escalate = row.get_by_role("button", name="Chuyển kiểm tra thực tế hàng hóa")
            assert row.get_by_role("button", name="Cho xe đi tiếp").count() == 1
            # The reason is required: the browser does not send the form without one.
            escalate.click()
            assert page.url == f"{served}/console/gate"
            assert row.locator("textarea").evaluate("e => e.validity.valueMissing") is True
            row.get_by_label("Lý do (bắt buộc", exact=False).fill(reason)
            escalate.click()
            page.wait_for_url("**/console/gate?done=hold_escalated")
            assert page.locator(".notice").inner_text().startswith("Đã chuyển xử lý")
            resolved = page.locator(f"#event-{event['id']} .resolution")
            assert "đã chuyển kiểm tra thực tế" in resolved.inner_text()
            assert reason in resolved.inner_text()
            assert page.locator(f"#event-{event['id']} form").count() == 0  # resolved once: no buttons any more

            runtime.relay.drain()  # the escalation reaches the declarations service
            page.goto(f"{served}/console/declarations/{decl['id']}")
            assert "xe bị giữ tại cổng: chuyển kiểm tra thực tế" in page.locator("#history").inner_text()
            assert page.locator("h1 .channel").inner_text() == "luồng đỏ"
        finally:
            browser.close()
    after = console.api(decl["id"])
    assert (after["status"], after["channel"]) == ("inspection", "red")
    client.close()


@pytest.mark.xdist_group("browser")
def test_officer_releases_a_hold_in_english_and_a_stale_tab_is_refused(served, runtime, keys, declaration_body):
    sync_playwright = _need_browser()
    client = httpx.Client(base_url=served)
    console = Console(client, runtime, keys, declaration_body)
    decl = console.file()
    event = held_truck(client, runtime, keys, decl)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context()
            context.add_cookies([{"name": LANG_COOKIE, "value": "en", "url": f"{served}/console"}])
            page = context.new_page()
            sign_in(page, served, console, "Sign in")
            page.goto(f"{served}/console/gate")
            stale = context.new_page()  # the same list open in a second tab
            stale.goto(f"{served}/console/gate")

            row = page.locator(f"#event-{event['id']}")
            assert "declaration not cleared" in row.inner_text()
            row.get_by_label("Reason (required", exact=False).fill("Driver waits in the parking area for clearance")
            row.get_by_role("button", name="Let the truck go on").click()
            page.wait_for_url("**/console/gate?done=hold_released")
            assert page.locator(".notice").inner_text() == "Hold lifted: the truck may go on."
            resolved = page.locator(f"#event-{event['id']} .resolution").inner_text()
            assert "hold lifted" in resolved
            assert "Driver waits in the parking area" in resolved

            other = stale.locator(f"#event-{event['id']}")
            other.get_by_label("Reason (required", exact=False).fill("escalating instead")
            with stale.expect_navigation():
                other.get_by_role("button", name="Escalate to physical inspection").click()
            alert = stale.locator(".error[role=alert]").inner_text()
            assert "Conflict (409)" in alert
            assert "already resolved (release)" in alert
            assert "hold lifted" in stale.locator(f"#event-{event['id']} .resolution").inner_text()
        finally:
            browser.close()
    runtime.relay.drain()
    after = console.api(decl["id"])
    assert after["status"] == "submitted"  # released at the gate: no state change; the raised channel stays
    client.close()
