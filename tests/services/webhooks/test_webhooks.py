"""Webhooks: a trader's endpoint receives its declarations' events, signed (Standard Webhooks), retried on failure,
switched off by 410, and logged; on SQLite and PostgreSQL, delivered over real HTTP to a receiver on loopback."""

from __future__ import annotations

import datetime as dt
import http.server
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from services.kernel.database import unit_of_work
from services.kernel.errors import Unprocessable
from services.kernel.outbox import Event
from services.webhooks import service, signing
from services.webhooks.delivery import TargetRefused, check_target
from services.webhooks.models import WebhookDelivery
from tests.api.support import ORG_A, ORG_B

HOOKS = "/api/v1/webhooks"
DECLARATIONS = "/api/v1/declarations"


# ---------------------------------------------------------------------------------------------- a receiver


class Receiver:
    """An HTTP server on loopback that records every POST and answers from a script (then 204)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.script: list[tuple[int, float, dict[str, str], bytes]] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with receiver._lock:
                    receiver.requests.append({"path": self.path, "headers": dict(self.headers.items()), "body": body})
                    status, delay, headers, reply = receiver.script.pop(0) if receiver.script else (204, 0, {}, b"")
                time.sleep(delay)
                try:
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("content-length", str(len(reply)))
                    self.end_headers()
                    self.wfile.write(reply)
                except OSError:
                    pass  # the sender gave up waiting

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/smartgate"

    def answer(
        self, status: int, *, delay: float = 0, headers: dict[str, str] | None = None, body: bytes = b""
    ) -> None:
        self.script.append((status, delay, headers or {}, body))

    def events(self) -> list[dict[str, Any]]:
        with self._lock:
            return [json.loads(r["body"]) for r in self.requests]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def hooks(settings: Any, runtime: Any, keys: Any, declaration_body: dict[str, Any], monkeypatch: pytest.MonkeyPatch):
    """The platform with quick retries (two, 50 ms apart) and a 1 s timeout; a trader of ORG_A and of ORG_B."""
    from fastapi.testclient import TestClient

    from api.app import create_app

    monkeypatch.setenv("SMARTGATE_WEBHOOK_RETRY_SECONDS", "[0.05, 0.05]")
    monkeypatch.setenv("SMARTGATE_WEBHOOK_POLL_SECONDS", "0.05")
    monkeypatch.setenv("SMARTGATE_WEBHOOK_TIMEOUT_SECONDS", "1")
    app = create_app(settings, runtime=runtime)
    with TestClient(app) as client:
        yield Hooks(client, runtime, keys.make("trader", ORG_A), keys.make("trader", ORG_B), keys.make("officer"),
                    declaration_body)  # fmt: skip


class Hooks:
    def __init__(self, client: Any, runtime: Any, trader: dict[str, str], other: dict[str, str],
                 officer: dict[str, str], body: dict[str, Any]) -> None:  # fmt: skip
        self.client, self.runtime, self.trader, self.other, self.officer, self.body = (
            client, runtime, trader, other, officer, body)  # fmt: skip

    def register(self, url: str, headers: dict[str, str] | None = None, **fields: Any) -> dict[str, Any]:
        resp = self.client.post(HOOKS, json={"url": url, **fields}, headers=headers or self.trader)
        assert resp.status_code == 201, resp.text
        found: dict[str, Any] = resp.json()
        return found

    def file(self, headers: dict[str, str] | None = None) -> dict[str, Any]:
        resp = self.client.post(f"{DECLARATIONS}?submit=true", json=self.body,
                                headers={**(headers or self.trader), "Idempotency-Key": uuid.uuid4().hex})  # fmt: skip
        assert resp.status_code == 201, resp.text
        decl: dict[str, Any] = resp.json()
        return decl

    def deliveries(self, endpoint_id: str, **params: Any) -> list[dict[str, Any]]:
        resp = self.client.get(f"{HOOKS}/{endpoint_id}/deliveries", params=params, headers=self.trader)
        assert resp.status_code == 200, resp.text
        items: list[dict[str, Any]] = resp.json()["items"]
        return items

    def wait(self, what: Callable[[], Any], *, timeout: float = 15) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            self.runtime.relay.drain()
            found = what()
            if found:
                return found
            if time.monotonic() > deadline:
                pytest.fail("webhook deliveries did not settle in time")
            time.sleep(0.05)


def _verified(receiver: Receiver, secret: str) -> list[dict[str, Any]]:
    """Every request the receiver got, checked with the Standard Webhooks library a trader's system would use."""
    out = []
    for r in receiver.requests:
        out.append(Webhook(secret).verify(r["body"], r["headers"]))
    return out


# ---------------------------------------------------------------------------------------------- signatures, URLs


def test_signature_reproduces_the_standard_webhooks_test_vector() -> None:
    secret, msg_id, ts, body = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, \
        b'{"test": 2432232314}'  # fmt: skip
    assert signing.sign(secret, msg_id, ts, body) == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    headers = signing.headers([signing.new_secret(), secret], msg_id, ts, body)
    assert signing.verify(secret, headers, body, now=ts + 10)
    assert not signing.verify(secret, headers, body + b" ", now=ts)
    assert not signing.verify(secret, headers, body, now=ts + signing.TOLERANCE_SECONDS + 1)  # a replay, later


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.vn/x",
        "https://user:pw@example.vn/x",
        "https://example.vn/x#frag",
        "https:///nohost",
        "http://example.vn/x",  # plain http in production
        "https://127.0.0.1/x",
        "https://10.1.2.3/x",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/x",
        "https://localhost:8000/x",
        "https://printer.local/x",
        "https://example.vn:99999/x",
    ],
)
def test_production_refuses_urls_it_must_not_call(url: str) -> None:
    with pytest.raises(Unprocessable):
        service.check_url(url, allow_private=False)


def test_development_may_call_loopback_but_never_other_schemes() -> None:
    assert service.check_url("http://127.0.0.1:9000/hook", allow_private=True)
    assert service.check_url("https://erp.example.vn/hooks?x=1", allow_private=False)
    with pytest.raises(Unprocessable):
        service.check_url("file:///etc/passwd", allow_private=True)


def test_a_name_that_resolves_to_loopback_is_refused_at_delivery() -> None:
    with pytest.raises(TargetRefused, match="not a public address"):
        check_target("https://localhost/x", allow_private=False)
    check_target("https://localhost/x", allow_private=True)


# ---------------------------------------------------------------------------------------------- end to end


def test_trader_receives_its_declarations_events_signed_and_in_order(hooks: Hooks, receiver: Receiver) -> None:
    endpoint = hooks.register(receiver.url, description="ERP")
    assert endpoint["secret"].startswith("whsec_")
    assert endpoint["event_types"] == []
    assert endpoint["active"] is True
    listed = hooks.client.get(HOOKS, headers=hooks.trader).json()
    assert [e["id"] for e in listed["items"]] == [endpoint["id"]]
    assert "secret" not in listed["items"][0]
    assert "declaration.assigned" not in listed["event_types"]

    hooks.file(hooks.other)  # another organisation's declaration: not for this endpoint
    decl = hooks.file()
    got = hooks.wait(lambda: len(receiver.requests) >= 3 and receiver.events())
    types = [e["type"] for e in got]
    assert types[:3] == ["declaration.created", "declaration.submitted", "declaration.assessed"]

    messages = _verified(receiver, endpoint["secret"])  # every request passes a receiver's verification
    assert all(m["data"]["declaration_id"] == decl["id"] for m in messages)
    assessed = messages[2]["data"]
    assert assessed["channel"] == decl["channel"]
    assert assessed["number"] == decl["number"]
    assert assessed["links"]["declaration"] == f"{DECLARATIONS}/{decl['id']}"
    assert "actor" not in messages[1]["data"]  # no officer or key ids leave the platform
    assert receiver.requests[0]["headers"]["content-type"] == "application/json"
    with pytest.raises(WebhookVerificationError):
        Webhook(signing.new_secret()).verify(receiver.requests[0]["body"], receiver.requests[0]["headers"])

    log = hooks.wait(lambda: (d := hooks.deliveries(endpoint["id"])) and all(x["status"] == "delivered" for x in d)
                     and d)  # fmt: skip
    assert {d["event_type"] for d in log} >= {"declaration.created", "declaration.submitted", "declaration.assessed"}
    first = log[-1]
    assert first["attempts"] == 1
    assert first["last_status_code"] == 204
    assert first["last_error"] is None
    assert receiver.requests[0]["headers"]["webhook-id"] == first["id"]


def test_an_officer_decision_reaches_the_trader_with_its_reason(hooks: Hooks, receiver: Receiver) -> None:
    endpoint = hooks.register(receiver.url, event_types=["declaration.documents_requested", "declaration.cleared"])
    decl = hooks.file()
    assert decl["channel"] in ("yellow", "red")  # a new trader's fresh fruit is always reviewed
    asked = hooks.client.post(
        f"{DECLARATIONS}/{decl['id']}/decisions",
        headers=hooks.officer,
        json={"outcome": "request_documents", "reason": "phytosanitary certificate, please"},
    )
    assert asked.status_code == 200, asked.text
    got = hooks.wait(lambda: receiver.events())
    assert [e["type"] for e in got] == ["declaration.documents_requested"]  # the filter holds
    assert got[0]["data"]["reason"] == "phytosanitary certificate, please"
    assert got[0]["data"]["status"] == "awaiting_documents"
    assert Webhook(endpoint["secret"]).verify(receiver.requests[0]["body"], receiver.requests[0]["headers"])


def test_failures_are_retried_then_given_up_and_sent_again_by_hand(hooks: Hooks, receiver: Receiver) -> None:
    endpoint = hooks.register(receiver.url)
    receiver.answer(503)  # then 204: delivered on the second attempt
    ping = hooks.client.post(f"{HOOKS}/{endpoint['id']}/test", headers=hooks.trader)
    assert ping.status_code == 202
    done = hooks.wait(lambda: (d := hooks.deliveries(endpoint["id"], status="delivered")) and d)
    assert done[0]["attempts"] == 2
    assert done[0]["event_type"] == "webhook.test"
    ids = {r["headers"]["webhook-id"] for r in receiver.requests}
    assert ids == {ping.json()["id"]}  # the same id on every attempt: receivers dedupe by it

    for _ in range(3):
        receiver.answer(500, body=b"database down")
    failing = hooks.client.post(f"{HOOKS}/{endpoint['id']}/test", headers=hooks.trader).json()
    failed = hooks.wait(lambda: (d := hooks.deliveries(endpoint["id"], status="failed")) and d)
    assert failed[0]["id"] == failing["id"]
    assert failed[0]["attempts"] == 3  # the first attempt and one per retry delay
    assert failed[0]["last_error"] == "HTTP 500: database down"
    assert failed[0]["next_attempt_at"] is None

    again = hooks.client.post(f"{HOOKS}/{endpoint['id']}/deliveries/{failing['id']}/retry", headers=hooks.trader)
    assert again.status_code == 202
    path = f"{HOOKS}/{endpoint['id']}/deliveries/{failing['id']}"
    ok = hooks.wait(lambda: (d := hooks.client.get(path, headers=hooks.trader).json())["status"] == "delivered" and d)
    assert ok["attempts"] == 1
    assert ok["last_status_code"] == 204


def test_timeouts_and_redirects_are_failed_attempts(hooks: Hooks, receiver: Receiver) -> None:
    endpoint = hooks.register(receiver.url)
    receiver.answer(302, headers={"location": "https://elsewhere.example/"})
    receiver.answer(200, delay=1.5)
    hooks.client.post(f"{HOOKS}/{endpoint['id']}/test", headers=hooks.trader)
    done = hooks.wait(lambda: (d := hooks.deliveries(endpoint["id"], status="delivered")) and d)
    assert done[0]["attempts"] == 3
    assert len(receiver.requests) == 3  # the redirect was not followed
    first_two = [r["path"] for r in receiver.requests[:2]]
    assert first_two == ["/hooks/smartgate"] * 2


def test_timeout_is_reported(hooks: Hooks, receiver: Receiver) -> None:
    endpoint = hooks.register(receiver.url)
    for _ in range(3):
        receiver.answer(200, delay=1.5)
    hooks.client.post(f"{HOOKS}/{endpoint['id']}/test", headers=hooks.trader)
    failed = hooks.wait(lambda: (d := hooks.deliveries(endpoint["id"], status="failed")) and d)
    assert failed[0]["last_error"] == "no answer within 1 s"
    assert failed[0]["last_status_code"] is None


def test_gone_switches_the_endpoint_off_until_the_trader_switches_it_on(hooks: Hooks, receiver: Receiver) -> None:
    endpoint = hooks.register(receiver.url, event_types=["declaration.created"])
    receiver.answer(410)
    hooks.file()
    hooks.wait(lambda: hooks.deliveries(endpoint["id"], status="failed"))
    off = hooks.client.get(f"{HOOKS}/{endpoint['id']}", headers=hooks.trader).json()
    assert off["active"] is False
    assert "410" in off["disabled_reason"]

    hooks.file()  # while it is off, nothing is sent or queued
    hooks.runtime.relay.drain()
    assert len(hooks.deliveries(endpoint["id"])) == 1

    on = hooks.client.patch(f"{HOOKS}/{endpoint['id']}", json={"active": True}, headers=hooks.trader)
    assert on.status_code == 200
    assert on.json()["disabled_reason"] is None
    assert on.json()["active"] is True
    decl = hooks.file()
    hooks.wait(lambda: hooks.deliveries(endpoint["id"], status="delivered"))
    assert len(receiver.requests) == 2
    assert receiver.events()[1]["data"]["declaration_id"] == decl["id"]


def test_a_redelivered_event_makes_one_delivery(hooks: Hooks, receiver: Receiver) -> None:
    endpoint = hooks.register(receiver.url)
    with unit_of_work(hooks.runtime.sessions) as session:
        org = session.get(service.WebhookEndpoint, endpoint["id"]).organisation_id
    event = Event(id=str(uuid.uuid4()), type="declaration.cleared", subject="d",
                  payload={"declaration_id": str(uuid.uuid4()), "organisation_id": org, "status": "cleared"},
                  occurred_at=dt.datetime.now(dt.UTC))  # fmt: skip
    handler = service.make_consumer(hooks.runtime.sessions, lambda: None)
    handler(event)
    handler.handle_batch([event, event])  # type: ignore[attr-defined]
    with unit_of_work(hooks.runtime.sessions) as session:
        count = session.query(WebhookDelivery).filter_by(event_id=event.id).count()
    assert count == 1


def test_rotation_signs_with_both_secrets_for_a_day(hooks: Hooks, receiver: Receiver) -> None:
    endpoint = hooks.register(receiver.url)
    rotated = hooks.client.post(f"{HOOKS}/{endpoint['id']}/secret", headers=hooks.trader)
    assert rotated.status_code == 200
    new = rotated.json()
    assert new["secret"] != endpoint["secret"]
    assert new["previous_secret_valid_until"]
    hooks.client.post(f"{HOOKS}/{endpoint['id']}/test", headers=hooks.trader)
    hooks.wait(lambda: receiver.requests)
    req = receiver.requests[0]
    assert len(req["headers"]["webhook-signature"].split()) == 2
    Webhook(endpoint["secret"]).verify(req["body"], req["headers"])  # the old side still verifies
    Webhook(new["secret"]).verify(req["body"], req["headers"])  # and the new one


def test_only_the_owner_sees_and_changes_an_endpoint(hooks: Hooks, receiver: Receiver) -> None:
    endpoint = hooks.register(receiver.url)
    path = f"{HOOKS}/{endpoint['id']}"
    assert hooks.client.get(path, headers=hooks.other).status_code == 404
    assert hooks.client.patch(path, json={"active": False}, headers=hooks.other).status_code == 404
    assert hooks.client.delete(path, headers=hooks.other).status_code == 404
    assert hooks.client.get(HOOKS, headers=hooks.officer).status_code == 403
    assert hooks.client.get(HOOKS).status_code == 401
    assert hooks.client.get(f"{HOOKS}/not-an-id", headers=hooks.trader).status_code == 404
    assert hooks.client.get(f"{path}/deliveries/not-an-id", headers=hooks.trader).status_code == 404
    bad_cursor = hooks.client.get(f"{path}/deliveries?cursor=xyz", headers=hooks.trader)
    assert bad_cursor.status_code == 422
    assert bad_cursor.headers["content-type"] == "application/problem+json"

    assert hooks.client.delete(path, headers=hooks.trader).status_code == 204
    assert hooks.client.get(path, headers=hooks.trader).status_code == 404


def test_bad_registrations_are_problems_and_the_limit_holds(hooks: Hooks, receiver: Receiver) -> None:
    for body, code in (
        ({"url": "ftp://example.vn/x"}, "webhook.url"),
        ({"url": receiver.url, "event_types": ["declaration.assigned"]}, "webhook.event_types"),
        ({"url": receiver.url, "secret": "mine"}, None),
        ({"url": receiver.url + "\x00"}, None),
    ):
        resp = hooks.client.post(HOOKS, json=body, headers=hooks.trader)
        assert resp.status_code == 422, body
        assert resp.headers["content-type"] == "application/problem+json"
        if code:
            assert resp.json()["code"] == code
    for n in range(10):
        hooks.register(f"{receiver.url}/{n}")
    over = hooks.client.post(HOOKS, json={"url": receiver.url}, headers=hooks.trader)
    assert over.status_code == 409
    assert over.json()["code"] == "webhook.limit"
    assert hooks.client.post(HOOKS, json={"url": receiver.url}, headers=hooks.other).status_code == 201


def test_delivery_log_pages(hooks: Hooks, receiver: Receiver) -> None:
    endpoint = hooks.register(receiver.url)
    for _ in range(5):
        hooks.client.post(f"{HOOKS}/{endpoint['id']}/test", headers=hooks.trader)
    hooks.wait(lambda: len(hooks.deliveries(endpoint["id"], status="delivered")) == 5)
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = hooks.client.get(f"{HOOKS}/{endpoint['id']}/deliveries", params=params, headers=hooks.trader).json()
        seen += [d["id"] for d in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) == 5
