"""The exchange between two administrations over real HTTP (issue 14, §2, §3, §5): signed messages, receipts,
delivery through a partner's outage in order, one effect per message id, and every refusal the inbox must make
(each recorded, nothing stored from it). Both sides run the same code, each with its own database and key."""

from __future__ import annotations

import base64
import datetime as dt
import json
import time
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from services.exchange import envelope, jws, service
from services.exchange.endpoints import pull_token
from services.exchange.jws import Signer
from services.kernel.database import unit_of_work, utcnow
from services.kernel.outbox import Event
from services.kernel.ratelimit import RateLimiter
from tests.services.exchange.conftest import Side

INBOX = "/api/v1/exchange/inbox"


def message(vn: Side, cn: Side, **changes: Any) -> dict[str, Any]:
    """A controlResult message from vn to cn, with `changes` applied."""
    body = envelope.make(sender=vn.code, recipient=cn.code, type="controlResult", correlation_id="VN-KT-1",
                         payload={"note": "hello"}, created_at=utcnow())  # fmt: skip
    body.update(changes)
    return body


def sign(signer: Signer, body: dict[str, Any]) -> str:
    return signer.sign(envelope.canonical(body))


def post(side: Side, token: str, **kwargs: Any) -> httpx.Response:
    return httpx.post(side.url + INBOX, content=token, headers={"content-type": "application/jose"}, timeout=10,
                      **kwargs)  # fmt: skip


def until(check: Any, timeout: float = 20.0) -> Any:
    """Wait for background work (relay, consumers) to reach a state: poll `check` until truthy, or fail."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail("the expected state was not reached")
        time.sleep(0.05)


def test_a_message_is_signed_pushed_acknowledged_and_both_ledgers_get_its_hash(pair: tuple[Side, Side]) -> None:
    vn, cn = pair
    (message_id,) = vn.queue("VN-KT-2026-000001", "inspected, no findings")
    vn.push()
    (sent,) = vn.messages("out")
    assert (sent.message_id, sent.state, sent.receipt_status, sent.attempts) == (message_id, "acknowledged",
                                                                                   "accepted", 1)  # fmt: skip
    (got,) = cn.messages("in")
    assert (got.message_id, got.state, got.jws_sha256) == (message_id, "accepted", sent.jws_sha256)
    assert got.receipt_jws == sent.receipt_jws  # the receipt cn answered and kept is the one vn holds
    (effect,) = cn.effects
    assert (effect.sender, effect.correlation_id, effect.payload) == (
        "vn-kimthanh",
        "VN-KT-2026-000001",
        {"note": "inspected, no findings", "n": 0},
    )
    # The receipt is signed by cn and names the exact bytes vn sent.
    receipt = json.loads(jws.verify(sent.receipt_jws or "", jws.public_key(cn.ex.signer.public_jwk())))
    assert receipt["payload"] == {"refMessageId": message_id, "status": "accepted", "reasons": [],
                                  "messageHash": sent.jws_sha256}  # fmt: skip
    # Hashes only, on both sides, and the same hashes.
    (sent_event,) = vn.events("exchange.message_sent")
    (received_event,) = cn.events("exchange.message_received")
    assert sent_event["jws_sha256"] == received_event["jws_sha256"] == sent.jws_sha256
    assert "payload" not in sent_event
    assert "note" not in json.dumps(sent_event)
    (receipt_sent,) = cn.events("exchange.receipt_sent")
    (receipt_received,) = vn.events("exchange.receipt_received")
    assert receipt_sent["jws_sha256"] == receipt_received["jws_sha256"] == jws.token_hash(sent.receipt_jws or "")
    assert receipt_received["ref_message_id"] == message_id
    assert receipt_received["status"] == "accepted"

    # provenance appends them to each side's ledger
    def in_ledger(side: Side, kinds: tuple[str, ...]) -> bool:
        with side.runtime.engine.connect() as conn:
            ids = [r[0] for r in conn.execute(text("SELECT id FROM outbox_events WHERE type IN ('"
                                                   + "','".join(kinds) + "')"))]  # fmt: skip
            stored = {r[0] for r in conn.execute(text("SELECT event_id FROM ledger_entries"))}
        return bool(ids) and set(ids) <= stored

    vn.runtime.relay.notify()
    cn.runtime.relay.notify()
    until(lambda: in_ledger(vn, ("exchange.message_sent", "exchange.receipt_received")))
    until(lambda: in_ledger(cn, ("exchange.message_received", "exchange.receipt_sent")))


def test_partner_down_messages_queue_retry_and_arrive_all_in_order_per_consignment(pair_factory: Any) -> None:
    vn, cn = pair_factory(serve_cn=False)
    plan = [("VN-A", "a1"), ("VN-B", "b1"), ("VN-A", "a2"), ("VN-A", "a3"), ("VN-B", "b2")]
    for consignment, note in plan:
        vn.queue(consignment, note)
    vn.push(rounds=3)  # cn is down: every attempt fails, nothing is lost
    out = vn.messages("out")
    # only the head of each consignment was tried (and is retrying); the later ones wait for it
    assert {(m.correlation_id, m.sequence): (m.state, m.attempts > 0) for m in out} == {
        ("VN-A", 1): ("retrying", True), ("VN-B", 1): ("retrying", True), ("VN-A", 2): ("queued", False),
        ("VN-A", 3): ("queued", False), ("VN-B", 2): ("queued", False)}  # fmt: skip
    assert all("ConnectError" in (m.last_error or "") for m in out if m.attempts)
    assert [m.sequence for m in out] == [1, 1, 2, 3, 2]

    cn.start()  # the partner is back
    vn.push()
    assert [m.state for m in vn.messages("out")] == ["acknowledged"] * 5
    arrived = [(e.correlation_id, e.payload["note"]) for e in cn.effects]
    assert sorted(arrived) == sorted(plan)  # all of them, once
    for consignment in ("VN-A", "VN-B"):
        assert [n for c, n in arrived if c == consignment] == [n for c, n in plan if c == consignment]


def test_a_later_message_waits_while_the_partner_answers_5xx_then_goes_in_order(pair: tuple[Side, Side]) -> None:
    vn, cn = pair
    first = vn.queue("VN-C", "c1")[0]
    vn.queue("VN-C", "c2")
    with unit_of_work(vn.runtime.sessions) as session:  # the first one is not due yet (a back-off in progress)
        row = service.get_message(session, first)
        row.state, row.next_attempt_at = "retrying", utcnow() + dt.timedelta(hours=1)
    vn.dispatcher.run_once()
    assert [m.state for m in vn.messages("out")] == ["retrying", "queued"]
    assert cn.effects == []
    vn.push()
    assert [e.payload["note"] for e in cn.effects] == ["c1", "c2"]


def test_a_duplicate_delivery_has_one_effect_and_the_same_receipt(pair: tuple[Side, Side]) -> None:
    vn, cn = pair
    vn.queue("VN-D", "once")
    vn.push()
    (sent,) = vn.messages("out")
    for _ in range(3):
        again = post(cn, sent.jws)
        assert again.status_code == 200
        assert again.json() == {"messageId": sent.message_id, "status": "accepted", "duplicate": True,
                                "receipt": sent.receipt_jws}  # fmt: skip
    as_json = httpx.post(cn.url + INBOX, json={"jws": sent.jws}, timeout=10)
    assert as_json.status_code == 200
    assert as_json.json()["duplicate"] is True
    assert len(cn.effects) == 1
    assert len(cn.messages("in")) == 1
    assert len(cn.events("exchange.message_received")) == 1


def _tamper(token: str) -> str:
    header, payload, signature = token.split(".")
    body = json.loads(base64.urlsafe_b64decode(payload + "=="))
    body["payload"]["note"] = "hello, changed on the way"
    forged = base64.urlsafe_b64encode(envelope.canonical(body)).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


def _stranger(vn: Side, kid: str) -> Signer:
    return Signer.from_seed(kid, bytes(range(32)))


FAULTS: dict[str, tuple[Any, int, str]] = {
    # name: (make the token from (vn, cn), status, code)
    "forged signature": (lambda vn, cn: sign(_stranger(vn, vn.ex.signer.kid), message(vn, cn)), 401,
                         "exchange.signature_invalid"),
    "unknown sender": (lambda vn, cn: sign(_stranger(vn, "xx-unknown-1"), message(vn, cn, sender="xx-unknown")),
                       401, "exchange.unknown_key"),
    "tampered body": (lambda vn, cn: _tamper(sign(vn.ex.signer, message(vn, cn))), 401, "exchange.signature_invalid"),
    "schema-invalid body": (lambda vn, cn: sign(vn.ex.signer, message(vn, cn, payload={"note": 5, "x": 1})), 422,
                            "exchange.schema_invalid"),
    "clock skew beyond 5 min": (lambda vn, cn: sign(vn.ex.signer, message(vn, cn, createdAt=envelope.rfc3339(
        utcnow() + dt.timedelta(minutes=6)))), 422, "exchange.clock_skew"),
    "replayed old message": (lambda vn, cn: sign(vn.ex.signer, message(vn, cn, createdAt=envelope.rfc3339(
        utcnow() - dt.timedelta(days=8)))), 409, "exchange.stale"),
    "recipient not us": (lambda vn, cn: sign(vn.ex.signer, message(vn, cn, recipient="vn-kimthanh")), 422,
                         "exchange.wrong_recipient"),
    "sender not the key's": (lambda vn, cn: sign(vn.ex.signer, message(vn, cn, sender="cn-other")), 401,
                             "exchange.sender_mismatch"),
    "not canonical": (lambda vn, cn: vn.ex.signer.sign(json.dumps(message(vn, cn), indent=1).encode()), 422,
                      "exchange.not_canonical"),
    "not a JWS": (lambda vn, cn: "hello.world", 400, "exchange.malformed"),
    "impossible date": (lambda vn, cn: sign(vn.ex.signer, message(vn, cn, createdAt="2026-13-45T25:61:00Z")), 422,
                        "exchange.schema_invalid"),
}  # fmt: skip


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_bad_message_is_refused_with_a_problem_recorded_and_nothing_stored(pair: tuple[Side, Side],
                                                                             fault: str) -> None:  # fmt: skip
    vn, cn = pair
    make, status, code = FAULTS[fault]
    token = make(vn, cn)
    resp = post(cn, token)
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    problem = resp.json()
    assert problem["code"] == code
    assert problem["status"] == status
    if fault == "schema-invalid body":
        pointers = {e["pointer"] for e in problem["errors"]}
        assert "/payload/note" in pointers
        assert all(p.startswith("/payload") for p in pointers)
    (rejection,) = cn.rejections()
    assert (rejection.code, rejection.status, rejection.jws_sha256) == (code, status, jws.token_hash(token))
    assert rejection.remote == "127.0.0.1"
    assert cn.messages("in") == []
    assert cn.effects == []
    assert cn.events("exchange.message_received") == []


def test_a_replay_with_another_body_is_refused_and_the_first_stands(pair: tuple[Side, Side]) -> None:
    vn, cn = pair
    first = message(vn, cn)
    assert post(cn, sign(vn.ex.signer, first)).status_code == 200
    other = {**first, "payload": {"note": "something else"}}
    resp = post(cn, sign(vn.ex.signer, other))
    assert resp.status_code == 409
    assert resp.json()["code"] == "exchange.replay"
    assert [e.payload["note"] for e in cn.effects] == ["hello"]
    assert [r.code for r in cn.rejections()] == ["exchange.replay"]


def test_small_clock_differences_are_accepted(pair: tuple[Side, Side]) -> None:
    vn, cn = pair
    ahead = message(vn, cn, createdAt=envelope.rfc3339(utcnow() + dt.timedelta(minutes=4)))
    assert post(cn, sign(vn.ex.signer, ahead)).status_code == 200


def test_the_receivers_verdict_comes_back_in_the_receipt(pair: tuple[Side, Side]) -> None:
    vn, cn = pair
    vn.queue("VN-E", "refuse me")
    vn.queue("VN-F", "odd")
    vn.push()
    refused, odd = vn.messages("out")
    assert (refused.state, refused.receipt_status) == ("acknowledged", "rejected")
    assert refused.reasons == [{"code": "control.unknown_consignment", "detail": "no such consignment here",
                                "pointer": "/payload/note"}]  # fmt: skip
    assert (odd.receipt_status, odd.reasons) == ("acceptedWithWarnings", [{"code": "control.odd",
                                                                           "detail": "an odd note"}])  # fmt: skip
    assert [e.payload["note"] for e in cn.effects] == ["odd"]


def test_a_partner_at_ten_times_its_rate_gets_429_and_the_inbox_keeps_working(pair: tuple[Side, Side]) -> None:
    vn, cn = pair
    now = [0.0]
    # 30 messages a minute in bursts of 5, on a clock the test moves (the requests themselves take no time).
    cn.ex.limiter = RateLimiter(30, 5, clock=lambda: now[0])
    answers = [post(cn, sign(vn.ex.signer, message(vn, cn))).status_code for _ in range(50)]  # 10x the burst
    assert answers.count(200) == 5
    assert answers.count(429) == 45
    limited = post(cn, sign(vn.ex.signer, message(vn, cn)))
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) == 2
    assert limited.json()["code"] == "exchange.rate_limited"
    assert httpx.get(cn.url + "/healthz", timeout=5).status_code == 200
    now[0] += 10.0  # ten seconds later: five more
    answers = [post(cn, sign(vn.ex.signer, message(vn, cn))).status_code for _ in range(10)]
    assert answers.count(200) == 5
    assert len(cn.effects) == 10
    assert cn.rejections() == []  # a flood is answered, not written down message by message


def test_a_domain_event_becomes_a_message_once_and_is_delivered(pair: tuple[Side, Side]) -> None:
    vn, cn = pair
    event = Event(id="6d1f7c1e-2f4d-4a8b-9d3e-6a1b2c3d4e5f", type="declaration.cleared", subject="d-1",
                  payload={"declaration_id": "d-1", "number": "VN-KT-2026-000777"}, occurred_at=utcnow())  # fmt: skip
    vn.runtime.bus.publish(event)
    vn.runtime.bus.publish(event)  # at least once: the same event again
    vn.runtime.bus.publish(Event(id="7d1f7c1e-2f4d-4a8b-9d3e-6a1b2c3d4e5f", type="declaration.created",
                                 subject="d-2", payload={"declaration_id": "d-2"}, occurred_at=utcnow()))  # fmt: skip
    until(lambda: cn.effects)  # the consumer woke the dispatcher, which pushed it
    (sent,) = vn.messages("out")
    assert (sent.correlation_id, sent.event_id) == ("VN-KT-2026-000777", event.id)
    until(lambda: vn.messages("out")[0].state == "acknowledged")
    assert [e.payload["note"] for e in cn.effects] == ["cleared VN-KT-2026-000777"]


def test_the_partner_pulls_when_pushes_fail_and_its_receipt_acknowledges(pair_factory: Any) -> None:
    vn, cn = pair_factory(serve_cn=False)
    (message_id,) = vn.queue("VN-G", "pulled")
    assert httpx.get(vn.url + "/api/v1/exchange/outbox", timeout=5).status_code == 401
    stranger = pull_token(_stranger(vn, "xx-1"), sender=cn.code, recipient=vn.code)
    assert httpx.get(vn.url + "/api/v1/exchange/outbox", headers={"authorization": f"Exchange {stranger}"},
                     timeout=5).status_code == 401  # fmt: skip
    token = pull_token(cn.ex.signer, sender=cn.code, recipient=vn.code)
    page = httpx.get(vn.url + "/api/v1/exchange/outbox", headers={"authorization": f"Exchange {token}"}, timeout=5)
    assert page.status_code == 200
    (item,) = page.json()["items"]
    assert item["messageId"] == message_id
    received = service.receive(cn.runtime.sessions, cn.ex, item["jws"])  # cn's own inbox logic
    assert received.status == "accepted"
    assert received.receipt
    answer = httpx.post(vn.url + INBOX, content=received.receipt, headers={"content-type": "application/jose"},
                        timeout=5)  # fmt: skip
    assert answer.status_code == 200
    assert answer.json()["status"] == "recorded"
    (sent,) = vn.messages("out")
    assert (sent.state, sent.receipt_status) == ("acknowledged", "accepted")
    assert len(vn.events("exchange.receipt_received")) == 1
    again = httpx.post(vn.url + INBOX, content=received.receipt, headers={"content-type": "application/jose"},
                       timeout=5)  # fmt: skip
    assert again.json()["duplicate"] is True
    assert len(vn.events("exchange.receipt_received")) == 1


def test_the_same_message_delivered_twice_at_once_takes_effect_once(pair: tuple[Side, Side]) -> None:
    from concurrent.futures import ThreadPoolExecutor

    vn, cn = pair
    token = sign(vn.ex.signer, message(vn, cn))
    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(lambda _: post(cn, token), range(4)))
    assert [a.status_code for a in answers] == [200] * 4
    assert len({a.json()["receipt"] for a in answers}) == 1  # every sender copy gets the one receipt
    assert sorted(a.json()["duplicate"] for a in answers) == [False, True, True, True]
    assert len(cn.effects) == 1
    assert len(cn.messages("in")) == 1
