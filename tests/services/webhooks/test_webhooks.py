"""Webhooks: a trader's endpoint receives its declarations' events, signed (Standard Webhooks), retried on failure,
switched off by 410, and logged; on SQLite and PostgreSQL, delivered over real HTTP to a receiver on loopback."""

from __future__ import annotations

import datetime as dt
import http.server
import ipaddress
import json
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from services.kernel.auth import get_or_create_organisation
from services.kernel.database import unit_of_work
from services.kernel.errors import Unprocessable
from services.kernel.outbox import Event
from services.webhooks import schemas, service, signing
from services.webhooks.delivery import TargetRefused, pinned_request, resolve_target
from services.webhooks.endpoints import DISPATCHER_KEY
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
            def do_POST(self) -> None:
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
    """The platform with quick retries (two, 50 ms apart); a trader of ORG_A and of ORG_B. The 5 s timeout leaves
    room for a loaded machine; the tests of timeouts shorten it (`short_timeout`)."""
    from fastapi.testclient import TestClient

    from api.app import create_app

    monkeypatch.setenv("SMARTGATE_WEBHOOK_RETRY_SECONDS", "[0.05, 0.05]")
    monkeypatch.setenv("SMARTGATE_WEBHOOK_POLL_SECONDS", "0.05")
    monkeypatch.setenv("SMARTGATE_WEBHOOK_TIMEOUT_SECONDS", "5")
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
        message = Webhook(secret).verify(r["body"], r["headers"])
        # ... and it is what the OpenAPI document's `webhooks` section says (EventData forbids other fields).
        model = schemas.TestMessage if message["type"] == service.TEST_EVENT else schemas.EventMessage
        model.model_validate(message)
        out.append(message)
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
        "https://intranet/x",
        "https://example.vn:99999/x",
    ],
)
def test_production_refuses_urls_it_must_not_call(url: str) -> None:
    with pytest.raises(Unprocessable):
        service.check_url(url, allow_private=False)


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2606:4700:4700::1111", True),
        ("10.0.0.1", False),
        ("::127.0.0.1", False),  # IPv4-compatible
        ("::ffff:10.0.0.1", False),  # IPv4-mapped
        ("64:ff9b::a00:1", False),  # NAT64 of 10.0.0.1
        ("64:ff9b::808:808", True),  # NAT64 of 8.8.8.8
        ("2002:7f00:1::1", False),  # 6to4 of 127.0.0.1
        ("2002:808:808::1", True),  # 6to4 of 8.8.8.8
        ("fe80::1", False),
        ("fd00::1", False),
        ("224.0.0.1", False),
    ],
)
def test_addresses_inside_ipv6_forms_are_checked_too(address: str, public: bool) -> None:
    assert service.is_public_address(ipaddress.ip_address(address)) is public
    url = f"https://[{address}]/x" if ":" in address else f"https://{address}/x"
    if public:
        assert service.check_url(url, allow_private=False)
    else:
        with pytest.raises(Unprocessable):
            service.check_url(url, allow_private=False)


def test_the_request_goes_to_the_address_that_was_checked() -> None:
    import httpx

    with httpx.Client() as client:
        req = pinned_request(client, "https://erp.example.vn:8443/hooks?x=1", "203.0.113.7", {"a": "b"}, b"{}")
        assert req.url.host == "203.0.113.7"
        assert req.url.port == 8443
        assert req.url.raw_path == b"/hooks?x=1"
        assert req.headers["host"] == "erp.example.vn:8443"
        assert req.extensions["sni_hostname"] == "erp.example.vn"  # TLS checks the certificate against the name
        v6 = pinned_request(client, "https://erp.example.vn/h", "2606:4700::1", {}, b"{}")
        assert v6.url.host == "2606:4700::1"
        plain = pinned_request(client, "http://127.0.0.1:9/h", None, {}, b"{}")
        assert plain.url.host == "127.0.0.1"
        assert "sni_hostname" not in plain.extensions


def test_a_pass_that_lost_its_lease_records_nothing(runtime: Any, keys: Any) -> None:
    """A manual retry (or another dispatcher) while a pass is out: the stale pass's result must not overwrite it."""
    from services.webhooks.delivery import Dispatcher, Result
    from services.webhooks.settings import WebhookSettings

    keys.make("trader", ORG_A)
    with unit_of_work(runtime.sessions) as session:
        org = get_or_create_organisation(session, name=ORG_A).id
        row = service.create_endpoint(session, organisation_id=org, url="http://127.0.0.1:9/h", event_types=[],
                                      description="", actor="t", allow_private=True, max_endpoints=10)  # fmt: skip
        service.enqueue_test(session, row)
    dispatcher = Dispatcher(runtime.sessions, WebhookSettings(**runtime.settings.model_dump()))
    (job,) = dispatcher._claim()
    assert dispatcher._claim() == []  # leased: not claimed twice
    with unit_of_work(runtime.sessions) as session:
        delivery = session.get(WebhookDelivery, job.delivery_id)
        delivery.attempts = 1  # as if attempted once before
        service.retry_delivery(session, session.get(service.WebhookEndpoint, row.id), delivery)
    dispatcher._record([Result(job, job.lease, 500, "HTTP 500", 3)])
    with unit_of_work(runtime.sessions) as session:
        after = session.get(WebhookDelivery, job.delivery_id)
        assert (after.status, after.attempts, after.last_error) == ("pending", 0, None)


def test_development_may_call_loopback_but_never_other_schemes() -> None:
    assert service.check_url("http://127.0.0.1:9000/hook", allow_private=True)
    assert service.check_url("https://erp.example.vn/hooks?x=1", allow_private=False)
    with pytest.raises(Unprocessable):
        service.check_url("file:///etc/passwd", allow_private=True)


def test_a_name_that_resolves_to_loopback_is_refused_at_delivery() -> None:
    with pytest.raises(TargetRefused, match="does not resolve to a public address"):
        resolve_target("https://localhost/x", allow_private=False)
    with pytest.raises(TargetRefused, match="does not resolve to a public address"):
        resolve_target("https://127.0.0.1/x", allow_private=False)
    with pytest.raises(TargetRefused, match="cannot resolve"):
        resolve_target("https://a..b/x", allow_private=False)
    assert resolve_target("https://localhost/x", allow_private=True) is None


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
    # Nobody is on duty: the officer takes it, then decides on the version it read (If-Match).
    officer_id = hooks.officer["Authorization"].removeprefix("Bearer sg_").split("_")[0]
    taken = hooks.client.post(
        f"{DECLARATIONS}/{decl['id']}/assignment", headers=hooks.officer, json={"officer_key_id": officer_id}
    )
    assert taken.status_code == 200, taken.text
    asked = hooks.client.post(
        f"{DECLARATIONS}/{decl['id']}/decisions",
        headers={**hooks.officer, "If-Match": taken.headers["ETag"]},
        json={"outcome": "request_documents", "reason": "phytosanitary certificate, please"},
    )
    assert asked.status_code == 200, asked.text
    got = hooks.wait(lambda: receiver.events())
    assert [e["type"] for e in got] == ["declaration.documents_requested"]  # the filter holds
    assert got[0]["data"]["reason"] == "phytosanitary certificate, please"
    assert got[0]["data"]["status"] == "awaiting_documents"
    assert _verified(receiver, endpoint["secret"])


def test_trader_receives_its_trucks_gate_events_and_nothing_of_the_camera(
    hooks: Hooks, receiver: Receiver, keys: Any
) -> None:
    from services.declarations import repository as declarations_repository
    from services.declarations import service as declarations_service
    from tests.services.inspection.conftest import FakeReader, door, taken_at

    endpoint = hooks.register(receiver.url, event_types=["gate.read", "gate.mismatch", "gate.exited"])
    elsewhere = Receiver()  # another organisation's endpoint for every event type
    try:
        theirs = hooks.register(elsewhere.url, headers=hooks.other)
        decl = hooks.file()
        with unit_of_work(hooks.runtime.sessions) as session:
            row = declarations_repository.get(session, decl["id"])
            assert row is not None
            for action in ("clear", "release"):
                declarations_service.transition(session, decl=row, action=action, actor="officer:test")
        hooks.runtime.relay.drain()  # the gate learns the declaration is released
        camera = keys.make("gate")
        code = decl["body"]["containers"][0]["number"]
        pool = hooks.runtime.extras["inspection.ocr"]
        for read, name in ((code, "ours"), ("MSKU1234565", "a stray truck")):
            pool.reader = FakeReader(read)
            resp = hooks.client.post(
                "/api/v1/gate/events", headers=camera,
                data={"lane": "OUT-1", "direction": "out", "camera_id": "KT-OUT-1", "taken_at": taken_at()},
                files=[("image", (f"{name}.png", door(name), "image/png"))],
            )  # fmt: skip
            assert resp.status_code == 201, resp.text
        got = hooks.wait(lambda: len(receiver.requests) >= 2 and receiver.events())
        messages = _verified(receiver, endpoint["secret"])  # signed, and what the OpenAPI webhooks say
        assert [m["type"] for m in messages] == ["gate.read", "gate.exited"]  # the stray truck is no one's
        read = messages[0]["data"]
        assert read["declaration_id"] == decl["id"]
        assert (read["lane"], read["direction"], read["decision"], read["reasons"]) == ("OUT-1", "out", "proceed", [])
        assert (read["match"], read["container"], read["codes_read"]) == ("exact", code, [code])
        assert read["links"]["gate_events"] == f"/api/v1/gate/declarations/{decl['id']}/events"
        body = b"".join(r["body"] for r in receiver.requests)
        assert b"KT-OUT-1" not in body  # no camera,
        assert resp.json()["reads"][0]["image_sha256"].encode() not in body  # no image digests
        assert got[1]["data"]["gate_event_id"] == read["gate_event_id"]
        # Every event was offered once the relay drained (deliveries are written as events arrive): the other
        # organisation's endpoint has its own declaration events only, none of this truck.
        from sqlalchemy import select

        with unit_of_work(hooks.runtime.read_sessions) as session:
            offered = set(session.scalars(select(WebhookDelivery.event_type)
                                          .where(WebhookDelivery.endpoint_id == theirs["id"])))  # fmt: skip
        assert not [t for t in offered if t.startswith("gate.")]
    finally:
        elsewhere.close()


def test_a_rejected_payment_reaches_the_trader_and_a_claim_is_not_paid(
    hooks: Hooks, receiver: Receiver, keys: Any
) -> None:
    endpoint = hooks.register(receiver.url, event_types=["declaration.paid", "declaration.payment_rejected"])
    decl = hooks.file()
    treasury = keys.make("treasury")
    claim = hooks.client.post(f"{DECLARATIONS}/{decl['id']}/payments", headers=hooks.trader,
                              json={"bank_reference": "VCB-HOOK-1", "amount_vnd": 1000})  # fmt: skip
    assert claim.status_code == 201, claim.text
    rejected = hooks.client.post(f"/api/v1/payments/{claim.json()['id']}/reject", headers=treasury,
                                 json={"reason": "no credit with this reference"})  # fmt: skip
    assert rejected.status_code == 200, rejected.text
    got = hooks.wait(lambda: receiver.events())
    # The claim itself sent no `paid`: only the treasury's confirmation does.
    assert [e["type"] for e in got] == ["declaration.payment_rejected"]
    data = got[0]["data"]
    assert (data["payment_id"], data["amount_vnd"], data["reason"]) == (
        claim.json()["id"],
        1000,
        "no credit with this reference",
    )
    assert "actor" not in data  # no treasury key id leaves the platform
    assert _verified(receiver, endpoint["secret"])


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


def short_timeout(hooks: Hooks, seconds: float) -> None:
    dispatcher = hooks.runtime.extras[DISPATCHER_KEY]
    dispatcher.settings = dispatcher.settings.model_copy(update={"webhook_timeout_seconds": seconds})


def test_redirects_are_not_followed(hooks: Hooks, receiver: Receiver) -> None:
    endpoint = hooks.register(receiver.url)
    receiver.answer(302, headers={"location": "https://elsewhere.example/"})
    hooks.client.post(f"{HOOKS}/{endpoint['id']}/test", headers=hooks.trader)
    done = hooks.wait(lambda: (d := hooks.deliveries(endpoint["id"], status="delivered")) and d)
    assert done[0]["attempts"] == 2
    assert [r["path"] for r in receiver.requests] == ["/hooks/smartgate"] * 2  # both to us, none elsewhere


def test_a_receiver_that_does_not_answer_in_time_fails_the_attempt(hooks: Hooks, receiver: Receiver) -> None:
    short_timeout(hooks, 0.3)
    endpoint = hooks.register(receiver.url)
    for _ in range(3):
        receiver.answer(200, delay=1.0)
    hooks.client.post(f"{HOOKS}/{endpoint['id']}/test", headers=hooks.trader)
    failed = hooks.wait(lambda: (d := hooks.deliveries(endpoint["id"], status="failed")) and d)
    assert failed[0]["last_error"] == "no answer within 0.3 s"
    assert failed[0]["last_status_code"] is None


def test_an_unreachable_receiver_costs_one_attempt_per_pass_not_one_per_delivery(hooks: Hooks) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}/hook"  # nothing listens there once the socket closes
    endpoint = hooks.register(closed)
    for _ in range(4):
        hooks.client.post(f"{HOOKS}/{endpoint['id']}/test", headers=hooks.trader)
    failed = hooks.wait(lambda: len(d := hooks.deliveries(endpoint["id"], status="failed")) == 4 and d)
    assert all(d["attempts"] == 3 for d in failed)
    assert all("ConnectError" in d["last_error"] for d in failed)
    assert any(d["last_error"].startswith("not sent: ConnectError") for d in failed)


def test_a_receivers_odd_answer_is_kept_as_text(hooks: Hooks, receiver: Receiver) -> None:
    endpoint = hooks.register(receiver.url)
    for _ in range(3):
        receiver.answer(500, body=b"crash\x00\x1b[31m" + "lỗi".encode() + b"\xff" * 2000)
    hooks.client.post(f"{HOOKS}/{endpoint['id']}/test", headers=hooks.trader)
    failed = hooks.wait(lambda: (d := hooks.deliveries(endpoint["id"], status="failed")) and d)
    error = failed[0]["last_error"]
    assert error.startswith("HTTP 500: crash?")
    assert "lỗi" in error
    assert "\x00" not in error
    assert len(error) <= 600


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
                  payload={"declaration_id": str(uuid.uuid4()), "number": None, "organisation_id": org,
                           "status": "cleared", "version": 1, "body_sha256": "a" * 64, "actor": "customs officer",
                           "reason": None, "at": "2026-12-03T08:00:00Z", "containers": [], "truck_plate": None},
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
    ping = hooks.client.post(f"{path}/test", headers=hooks.trader).json()
    hooks.wait(lambda: hooks.deliveries(endpoint["id"], status="delivered"))
    for method, sub in (("GET", ""), ("PATCH", ""), ("DELETE", ""), ("POST", "/secret"), ("POST", "/test"),
                        ("GET", "/deliveries"), ("GET", f"/deliveries/{ping['id']}"),
                        ("POST", f"/deliveries/{ping['id']}/retry")):  # fmt: skip
        kwargs: dict[str, Any] = {"json": {"active": False}} if method == "PATCH" else {}
        resp = hooks.client.request(method, path + sub, headers=hooks.other, **kwargs)
        assert resp.status_code == 404, (method, sub, resp.text)
    assert hooks.client.get(path, headers=hooks.trader).json()["active"] is True
    assert hooks.client.get(HOOKS, headers=hooks.officer).status_code == 403
    assert hooks.client.get(HOOKS).status_code == 401
    assert hooks.client.get(f"{HOOKS}/not-an-id", headers=hooks.trader).status_code == 404
    assert hooks.client.get(f"{path}/deliveries/not-an-id", headers=hooks.trader).status_code == 404
    bad_cursor = hooks.client.get(f"{path}/deliveries?cursor=xyz", headers=hooks.trader)
    assert bad_cursor.status_code == 422
    assert bad_cursor.headers["content-type"] == "application/problem+json"

    assert hooks.client.delete(path, headers=hooks.trader).status_code == 204
    assert hooks.client.get(path, headers=hooks.trader).status_code == 404


def test_null_in_a_change_leaves_the_field_as_it_is(hooks: Hooks, receiver: Receiver) -> None:
    endpoint = hooks.register(receiver.url, event_types=["declaration.released"], description="ERP")
    nulls = {"url": None, "event_types": None, "description": None, "active": None}
    resp = hooks.client.patch(f"{HOOKS}/{endpoint['id']}", json=nulls, headers=hooks.trader)
    assert resp.status_code == 200, resp.text
    assert resp.json()["event_types"] == ["declaration.released"]
    assert resp.json()["description"] == "ERP"
    cleared = hooks.client.patch(f"{HOOKS}/{endpoint['id']}", json={"event_types": []}, headers=hooks.trader)
    assert cleared.json()["event_types"] == []


def test_a_switched_off_endpoint_is_not_retried_by_hand(hooks: Hooks, receiver: Receiver) -> None:
    endpoint = hooks.register(receiver.url, event_types=["declaration.created"])
    receiver.answer(410)
    hooks.file()
    failed = hooks.wait(lambda: hooks.deliveries(endpoint["id"], status="failed"))
    again = hooks.client.post(f"{HOOKS}/{endpoint['id']}/deliveries/{failed[0]['id']}/retry", headers=hooks.trader)
    assert again.status_code == 409
    assert again.json()["code"] == "webhook.inactive"


def test_bad_registrations_are_problems_and_the_limit_holds(hooks: Hooks, receiver: Receiver) -> None:
    for body, code in (
        ({"url": "ftp://example.vn/x"}, "webhook.url"),
        ({"url": "https://a..b/x"}, "webhook.url"),
        ({"url": "https://-/x"}, "webhook.url"),
        ({"url": f"https://{'a' * 64}.vn/x"}, "webhook.url"),
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


# ---------------------------------------------------------------------------------------------- audit (issue 12)


def test_concurrent_registrations_never_pass_the_limit(runtime: Any, keys: Any) -> None:
    """16 registrations at once against a limit of 10, each in its own session: the database holds the limit."""
    from services.kernel.errors import Conflict

    keys.make("trader", ORG_A)
    with unit_of_work(runtime.sessions) as session:
        org = get_or_create_organisation(session, name=ORG_A).id
    start = threading.Barrier(16)
    outcomes: list[str] = []
    lock = threading.Lock()

    def register(n: int) -> None:
        start.wait(timeout=30)
        try:
            with unit_of_work(runtime.sessions) as session:
                service.create_endpoint(session, organisation_id=org, url=f"https://erp.example.vn/h/{n}",
                                        event_types=[], description="", actor="t", allow_private=False,
                                        max_endpoints=10)  # fmt: skip
            outcome = "created"
        except Conflict as exc:
            outcome = exc.extra.get("code", "?")
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=register, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(outcomes) == ["created"] * 10 + ["webhook.limit"] * 6
    with unit_of_work(runtime.sessions) as session:
        rows = service.list_endpoints(session, org)
    assert len(rows) == 10
    assert sorted(r.slot for r in rows) == list(range(10))


def test_a_deleted_endpoint_frees_its_slot(hooks: Hooks, receiver: Receiver) -> None:
    made = [hooks.register(f"{receiver.url}/{n}") for n in range(10)]
    assert hooks.client.post(HOOKS, json={"url": receiver.url}, headers=hooks.trader).status_code == 409
    assert hooks.client.delete(f"{HOOKS}/{made[3]['id']}", headers=hooks.trader).status_code == 204
    hooks.register(receiver.url)
    over = hooks.client.post(HOOKS, json={"url": receiver.url}, headers=hooks.trader)
    assert over.status_code == 409
    assert over.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("bad", ["\r\nX-Injected: 1", "\n", "\t", "\x7f", "\x85", "\x1b[31m"])
def test_urls_with_control_characters_are_refused(hooks: Hooks, receiver: Receiver, bad: str) -> None:
    url = f"{receiver.url}/a{bad}b"
    resp = hooks.client.post(HOOKS, json={"url": url}, headers=hooks.trader)
    assert resp.status_code == 422, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    assert resp.json()["code"] == "webhook.url"
    endpoint = hooks.register(receiver.url)
    patched = hooks.client.patch(f"{HOOKS}/{endpoint['id']}", json={"url": url}, headers=hooks.trader)
    assert patched.status_code == 422
    assert patched.json()["code"] == "webhook.url"


def test_a_stored_url_with_control_characters_fails_the_attempt_quietly(
    runtime: Any, keys: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A row from before the rule: each attempt is a recorded failure, never a logged traceback."""
    from services.webhooks.delivery import Dispatcher
    from services.webhooks.settings import WebhookSettings

    keys.make("trader", ORG_A)
    with unit_of_work(runtime.sessions) as session:
        org = get_or_create_organisation(session, name=ORG_A).id
        row = service.create_endpoint(session, organisation_id=org, url="http://127.0.0.1:9/h", event_types=[],
                                      description="", actor="t", allow_private=True, max_endpoints=10)  # fmt: skip
        row.url = "http://127.0.0.1:9/h\r\nX-Injected: 1"
        delivery_id = service.enqueue_test(session, row).id
    dispatcher = Dispatcher(runtime.sessions, WebhookSettings(**runtime.settings.model_dump()))
    with caplog.at_level("WARNING", logger="smartgate.webhooks"):
        assert dispatcher.run_once() == 1
    assert [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL") or r.exc_info] == []
    with unit_of_work(runtime.sessions) as session:
        after = session.get(WebhookDelivery, delivery_id)
        assert after.attempts == 1
        assert after.last_status_code is None
        assert "control characters" in (after.last_error or "")


def test_concurrent_registrations_over_http_get_201_or_409(served: str, keys: Any) -> None:
    """The same race through the served app: 10 created, the rest 409 problem+json, whatever the backend."""
    import httpx

    trader = keys.make("trader", ORG_A)
    start = threading.Barrier(16)
    answers: list[httpx.Response] = []
    lock = threading.Lock()

    def register(n: int) -> None:
        with httpx.Client(base_url=served, timeout=60) as client:
            start.wait(timeout=30)
            resp = client.post(HOOKS, json={"url": f"http://127.0.0.1:9/h/{n}"}, headers=trader)
        with lock:
            answers.append(resp)

    threads = [threading.Thread(target=register, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=90)
    assert sorted(r.status_code for r in answers) == [201] * 10 + [409] * 6
    for refused in (r for r in answers if r.status_code == 409):
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["code"] == "webhook.limit"
    with httpx.Client(base_url=served) as client:
        assert len(client.get(HOOKS, headers=trader).json()["items"]) == 10


def test_the_slot_migration_numbers_existing_endpoints(database_url: str) -> None:
    """Endpoints made before slots existed get 0, 1, ... per organisation, in the order they were made."""
    from alembic import command
    from sqlalchemy import create_engine, text

    from services.kernel.migrate import alembic_config, upgrade

    cfg = alembic_config(database_url)
    command.downgrade(cfg, "w0001")
    engine = create_engine(database_url)
    try:
        with engine.begin() as conn:
            for n, (org, at) in enumerate([("o1", "2026-12-01 10:00:02"), ("o1", "2026-12-01 10:00:01"),
                                           ("o2", "2026-12-01 10:00:00"), ("o1", "2026-12-01 10:00:03")]):  # fmt: skip
                conn.execute(
                    text("INSERT INTO webhook_endpoints (id, organisation_id, url, description, event_types, secret, "
                         "active, created_by, created_at, updated_at) VALUES (:id, :org, 'https://x.vn/h', '', '[]', "
                         "'whsec_x', true, 't', :at, :at)"),
                    {"id": f"e{n}", "org": org, "at": at},
                )  # fmt: skip
        upgrade(database_url)
        with engine.connect() as conn:
            slots = dict(conn.execute(text("SELECT id, slot FROM webhook_endpoints")).all())
    finally:
        engine.dispose()
    assert slots == {"e1": 0, "e0": 1, "e3": 2, "e2": 0}


# Every field a producer sends, per payload model: what event_data picks from.
_FULL = {
    "declaration_id": "d-1", "number": "KT-2026-000001", "organisation_id": "o-1", "status": "cleared",
    "version": 2, "body_sha256": "a" * 64, "actor": "customs officer", "reason": "documents in order",
    "at": "2026-12-03T08:00:00Z", "containers": [], "truck_plate": None, "channel": "yellow",
    "assessment_sha256": "b" * 64, "duties_total_vnd": 1_250_000, "duties_assessed": True, "payment_id": "p-1",
    "amount_vnd": 1_250_000, "bank_reference_sha256": "c" * 64, "paid_vnd": 1_250_000, "due_vnd": 0,
    "recorded_by": "treasury", "gate_event_id": "g-1", "lane": "OUT-1", "direction": "out",
    "camera_id": "KT-OUT-1", "taken_at": "2026-12-03T08:00:00+00:00", "declaration_number": "KT-2026-000001",
    "codes": [{"code": "CSQU3054383", "status": "verified"}], "match": "exact", "matched_container": "CSQU3054383",
    "decision": "hold", "reasons": ["seal_mismatch"], "image_sha256s": ["d" * 64],
}  # fmt: skip


@pytest.mark.parametrize("event_type", service.EVENT_TYPES)
def test_what_each_type_sends_is_what_the_openapi_webhooks_say(event_type: str) -> None:
    from services.kernel import catalogue

    model = catalogue.CATALOGUE[event_type]
    payload = {k: v for k, v in _FULL.items() if k in model.model_fields}
    catalogue.check(event_type, payload)  # a payload a producer could send
    event = Event(id="e-1", type=event_type, subject="d-1", payload=payload, occurred_at=dt.datetime.now(dt.UTC))
    sent = schemas.EventMessage.model_validate(
        service.message(event_type, event.occurred_at, service.event_data(event))
    )
    assert sent.data.declaration_id == "d-1"
    assert "actor" not in sent.data.model_dump()  # no officer or key ids
    if event_type.startswith("gate."):
        # Where the truck is, never the camera, the images or their digests (EventData forbids other fields).
        assert sent.data.lane == "OUT-1"
        assert sent.data.number == "KT-2026-000001"
        assert sent.data.links.gate_events == "/api/v1/gate/declarations/d-1/events"
        assert not {"camera_id", "image_sha256s", "organisation_id"} & set(service.event_data(event))


def test_the_gate_hold_reasons_webhooks_document_are_the_gates() -> None:
    import typing

    from services.inspection.matching import REASONS

    assert typing.get_args(schemas.GateReason) == REASONS
