"""`/docs` and `/redoc` in a real browser (headless Chromium through Playwright) cut off from everything but the
platform: every request to another host is aborted and recorded. Swagger UI renders every operation and, after
"Authorize" with an API key, runs one with "Try it out"; ReDoc renders. Both in the embedded app and behind the
gateway of the distributed deployment."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from services.kernel.settings import SERVICES, KernelSettings
from tests.api.test_console import clear_key
from tests.api.test_console_browser import CHROMIUM, CHROMIUM_ARGS, _need_browser
from tests.conftest import _free_port


def serve(app: Any) -> tuple[Any, threading.Thread, str]:
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=_free_port(), log_config=None, access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("the gateway did not start")
        time.sleep(0.05)
    return server, thread, f"http://127.0.0.1:{server.config.port}"


@pytest.fixture
def served_gateway(served: str, settings: KernelSettings) -> Iterator[str]:
    from api.gateway import create_gateway

    server, thread, url = serve(create_gateway(settings, dict.fromkeys(SERVICES, served)))
    yield url
    server.should_exit = True
    thread.join(timeout=15)


def operations_of(base: str) -> set[str]:
    # The gateway builds its document from every service's on first request: slow on a loaded machine, not wrong.
    document = httpx.get(f"{base}/openapi.json", timeout=60).json()
    # Webhooks (what a receiver gets) are shown like operations, under their event type.
    items = {**document["paths"], **document.get("webhooks", {})}
    return {f"{method.upper()} {path}" for path, item in items.items() for method in item}


# Each operation Swagger UI shows (once per tag it has): "METHOD /path".
SHOWN = """() => [...document.querySelectorAll('.opblock-summary')].map(
    s => s.querySelector('.opblock-summary-method').textContent + ' ' +
         s.querySelector('.opblock-summary-path').getAttribute('data-path'))"""


def browse_docs(base: str, api_key: str) -> None:
    """Open both pages with only 127.0.0.1 reachable; fail on any request elsewhere or any script error."""
    sync_playwright = _need_browser()
    operations = operations_of(base)
    outside: list[str] = []
    errors: list[str] = []

    def only_here(route: Any) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1" or route.request.url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context()
            context.route("**/*", only_here)
            page = context.new_page()
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)

            # Swagger UI: every operation, then Authorize and one call through "Try it out".
            page.goto(f"{base}/docs")
            page.wait_for_selector(".opblock")
            assert set(page.evaluate(SHOWN)) == operations
            assert "smartgate" in page.locator(".info .title").inner_text()
            page.click("button.authorize")
            dialog = page.locator(".dialog-ux")
            assert "Bearer" in dialog.inner_text()
            dialog.locator("input").fill(api_key)
            dialog.locator("button.authorize").click()
            dialog.locator("button.btn-done").click()
            listing = page.locator(".opblock-get", has=page.locator("[data-path='/api/v1/declarations']"))
            listing.locator(".opblock-summary").first.click()
            listing.locator("button.try-out__btn").click()
            listing.locator("button.execute").click()
            status = listing.locator(".live-responses-table tr.response .response-col_status").first
            status.wait_for()
            assert status.inner_text().strip() == "200"
            curl = listing.locator(".curl-command").inner_text()
            assert f"Authorization: Bearer {api_key}" in curl

            # ReDoc: the document's title, its operations in the menu, the security of an operation.
            page.goto(f"{base}/redoc")
            page.wait_for_selector("h1")
            assert "smartgate" in page.locator("h1").first.inner_text()
            page.wait_for_selector("[data-section-id*='operation/']", state="attached")
            sections = page.eval_on_selector_all("[data-section-id*='operation/']",
                                                 "all => all.map(e => e.getAttribute('data-section-id'))")  # fmt: skip
            assert len({s.rsplit("operation/", 1)[1] for s in sections}) == len(operations)
            assert "authorizations:" in page.inner_text("body").lower()  # an operation names its scheme
        finally:
            browser.close()
    assert outside == []
    # ReDoc always tries Redocly's logo in its sidebar (and hides it when it does not load): the page's
    # Content-Security-Policy refuses it inside the browser, so the request never leaves. Nothing else may fail.
    logo = "https://cdn.redoc.ly/redoc/logo-mini.svg"
    assert [e for e in errors if not (logo in e and "Content Security Policy" in e)] == []


@pytest.mark.xdist_group("browser")
def test_the_docs_work_offline_in_a_browser(served: str, keys: Any) -> None:
    browse_docs(served, clear_key(keys.make("officer")))


@pytest.mark.xdist_group("browser")
def test_the_gateways_docs_work_offline_in_a_browser(served_gateway: str, keys: Any) -> None:
    browse_docs(served_gateway, clear_key(keys.make("officer")))
