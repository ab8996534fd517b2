"""The console's drift page (supervisors and admins): the learned model's weekly precision beside the rules', the
exploration hit rate, PSI and the alarm, in Vietnamese by default; through the app on SQLite and PostgreSQL, and
in a real browser (headless Chromium through Playwright)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import pytest

from api.console.i18n import COOKIE as LANG_COOKIE
from services.declarations.assessment import VN_TZ
from services.declarations.tariff import DEMO_RATES, post_rate
from services.kernel.database import unit_of_work
from tests.api.test_console import clear_key
from tests.api.test_console_browser import CHROMIUM, CHROMIUM_ARGS, _need_browser
from tests.api.test_risk_models import MODELLED, MODELS, _decide, foreign, model_file, upload  # noqa: F401
from tests.api.test_selectivity import Gate

pytest.importorskip("lightgbm")


def _drifting(client: Any, runtime: Any, keys: Any, body: dict[str, Any], model: bytes) -> Gate:
    """An active model whose five selections were all compliant, while the rules' five picks were violations: the
    precision alarm of this week."""
    with unit_of_work(runtime.sessions) as session:
        for currency, rate in DEMO_RATES.items():
            post_rate(session, currency=currency, day=dt.datetime.now(VN_TZ).date(), vnd_per_unit=rate, source="t",
                      actor="t")  # fmt: skip
    officers = [keys.make("officer")]
    assert client.put("/api/v1/review/duty", json={"on_duty": True}, headers=officers[0]).status_code == 200
    g = Gate(client, runtime, keys.make("trader", "Drift Co"), officers, keys.make("admin"), body)
    g.supervisor = keys.make("supervisor")
    g.rule_set(MODELLED)
    assert upload(g, model, "d1").status_code == 201
    assert client.post(f"{MODELS}/d1/dry-run", headers=g.admin).status_code == 200
    assert client.post(f"{MODELS}/d1/activate", headers=g.admin).status_code == 200
    for _ in range(5):
        _decide(g, g.file(g.goods("26011110", "Iron ore"))["id"], violation=True)
        _decide(g, g.file(foreign(g))["id"], violation=False)
    return g


def test_drift_page_shows_the_alarm_to_supervisors_only(
    client: Any,
    runtime: Any,
    keys: Any,
    declaration_body: dict[str, Any],
    model_file: bytes,  # noqa: F811
) -> None:
    g = _drifting(client, runtime, keys, declaration_body, model_file)
    week = g.client.get(f"{MODELS}/drift", headers=g.supervisor).json()["models"][0]["weeks"][-1]
    assert week["alarm"] is True

    def signed_in(headers: dict[str, str]) -> None:
        client.cookies.clear()
        resp = client.post("/console/login", data={"key": clear_key(headers)}, follow_redirects=False)
        assert resp.status_code == 303

    signed_in(g.supervisor)
    page = client.get("/console/drift")
    assert page.status_code == 200
    html = page.text
    assert 'lang="vi"' in html  # Vietnamese by default
    assert "Độ lệch của mô hình học máy" in html
    assert f"Tuần {week['week']}: độ chính xác của các lô hàng do mô hình chọn kiểm tra 0.00 thấp hơn" in html
    assert 'role="alert"' in html
    assert "Mô hình d1" in html
    client.cookies.set(LANG_COOKIE, "zh-Hans", path="/console")
    assert "模型漂移" in client.get("/console/drift").text
    client.cookies.set(LANG_COOKIE, "en", path="/console")
    english = client.get("/console/drift?weeks=4").text
    assert "precision of the model's inspections 0.00 below the rules' 1.00" in english
    assert '<option value="4" selected>' in english

    # An officer signs in to the console but does not see the drift report.
    signed_in(g.officers[0])
    assert client.get("/console/drift").status_code == 403


@pytest.mark.xdist_group("browser")
def test_supervisor_reads_the_drift_alarm_in_a_browser(
    served: str,
    runtime: Any,
    keys: Any,
    declaration_body: dict[str, Any],
    model_file: bytes,  # noqa: F811
) -> None:
    sync_playwright = _need_browser()
    api = httpx.Client(base_url=served)
    g = _drifting(api, runtime, keys, declaration_body, model_file)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(f"{served}/console/login")
            page.fill("#key", clear_key(g.supervisor))
            page.get_by_role("button", name="Đăng nhập").click()
            page.wait_for_url(f"{served}/console")
            page.get_by_role("link", name="Độ lệch mô hình").click()
            page.wait_for_url(f"{served}/console/drift")
            assert page.get_attribute("html", "lang") == "vi"
            alarm = page.get_by_role("alert").inner_text()
            assert "thấp hơn" in alarm
            row = page.locator("table.drift tbody tr").last
            assert "alarm" in (row.get_attribute("class") or "")
            cells = [c.strip() for c in row.locator("td").all_inner_texts()]
            # week, mode, scored, model inspected, model precision, rules inspected, rules precision, ...
            assert cells[3:7] == ["5", "0.00", "5", "1.00"]
            page.select_option("#weeks", "4")
            page.get_by_role("button", name="Hiển thị").click()
            page.wait_for_url("**/console/drift?weeks=4")
            assert page.locator("table.drift tbody tr").count() >= 1
        finally:
            browser.close()
    api.close()
