"""The exchange's rules: partners and their keys, messages made from our events, the inbox's checks, receipts.

Sending: a domain event (`declaration.*`, `gate.*`) goes through every message type's `outbound`; each message is
signed and queued (exchange_messages, `out`) with its `exchange.message_sent` event in the consumer's transaction;
the dispatcher (delivery.py) pushes it. Receiving: `receive()` authenticates the JWS by its `kid`, verifies it,
checks recipient, time and schema, acts once per message id (the type's `inbound` in the same transaction), and
answers with a signed receipt that it keeps. Every refusal is recorded, with nothing of the message but its hash.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import case, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from services.exchange import envelope, events, jws
from services.exchange.errors import ExchangeRateLimited, ExchangeRefused, ExchangeReplay, ExchangeUnauthenticated
from services.exchange.models import ExchangeMessage, ExchangePartner, ExchangeRejection
from services.exchange.registry import Inbound, MessageType, Outbound, Rejected
from services.exchange.settings import ExchangeSettings, own_code
from services.kernel.database import new_id, unit_of_work, utcnow
from services.kernel.errors import AppError, Conflict, NotFound, Unprocessable
from services.kernel.outbox import Event, record_event
from services.kernel.ratelimit import RateLimiter

logger = logging.getLogger("smartgate.exchange")

INBOX_PATH = "/api/v1/exchange/inbox"
CODE = re.compile(r"^[a-z0-9-]{1,32}$")
# Sent messages still on their way (they hold back later messages of their consignment).
PENDING = ("queued", "retrying")
BLOCKING = ("queued", "retrying", "failed")
OUT_STATES = ("queued", "retrying", "delivered", "acknowledged", "failed")
IN_STATES = ("accepted", "acceptedWithWarnings", "rejected", "recorded")
RECEIPT = envelope.RECEIPT
MAX_KEYS = 5


@dataclass
class Exchange:
    """What the service holds in a process: settings, our signer, the message types, the partners' rate limits."""

    settings: ExchangeSettings
    signer: jws.Signer
    types: dict[str, MessageType]
    limiter: RateLimiter = field(default_factory=lambda: RateLimiter(0, 1))
    wake: Callable[[], None] = lambda: None

    @property
    def code(self) -> str:
        """Our administration's code."""
        return own_code(self.settings)


# ---------------------------------------------------------------------------------------------------- partners


def check_base_url(url: str, *, allow_http: bool) -> str:
    """A partner platform's base URL: https (http only where allowed), a host, no credentials, no query."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise Unprocessable("the partner's base URL must be https://host[:port]", code="exchange.partner_url")
    if parts.scheme == "http" and not allow_http:
        raise Unprocessable("the partner's base URL must use https", code="exchange.partner_url")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise Unprocessable("the partner's base URL takes no credentials, query or fragment",
                            code="exchange.partner_url")  # fmt: skip
    return url.rstrip("/")


def check_keys(session: Session, code: str, keys: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Public Ed25519 JWKs, each with a kid used by no other partner."""
    if not 1 <= len(keys) <= MAX_KEYS:
        raise Unprocessable(f"a partner has 1 to {MAX_KEYS} keys", code="exchange.partner_keys")
    out: list[dict[str, Any]] = []
    for i, key in enumerate(keys):
        try:
            jws.public_key(key)
        except jws.JwsError as exc:
            raise Unprocessable(f"key {i}: {exc}", code="exchange.partner_keys", pointer=f"/keys/{i}") from exc
        kid = key.get("kid")
        if not isinstance(kid, str) or not 1 <= len(kid) <= 128:
            raise Unprocessable(f"key {i} needs a kid (1 to 128 characters)", code="exchange.partner_keys")
        out.append({"kty": "OKP", "crv": "Ed25519", "x": key["x"], "kid": kid})
    kids = [k["kid"] for k in out]
    if len(set(kids)) != len(kids):
        raise Unprocessable("two keys have the same kid", code="exchange.partner_keys")
    for other in session.scalars(select(ExchangePartner).where(ExchangePartner.code != code)):
        clash = set(kids) & {k["kid"] for k in other.keys}
        if clash:
            raise Conflict(f"kid {sorted(clash)[0]} belongs to partner {other.code}", code="exchange.partner_kid")
    return out


def save_partner(session: Session, ex: Exchange, *, code: str, name: str, base_url: str,
                 keys: list[dict[str, Any]], active: bool, actor: str) -> tuple[ExchangePartner, bool]:  # fmt: skip
    """Register a partner, or replace its name, URL, keys and switch (a key rotation); returns (row, created)."""
    if not CODE.fullmatch(code):
        raise Unprocessable("a partner code is lower-case letters, digits and '-'", code="exchange.partner_code")
    if code == ex.code:
        raise Unprocessable(f"{code} is this administration itself", code="exchange.partner_code")
    url = check_base_url(base_url, allow_http=ex.settings.http_allowed)
    checked = check_keys(session, code, keys)
    now = utcnow()
    row = session.get(ExchangePartner, code)
    created = row is None
    if row is None:
        row = ExchangePartner(code=code, created_by=actor, created_at=now)
        session.add(row)
    row.name, row.base_url, row.keys, row.active, row.updated_at = name, url, checked, active, now
    session.flush()
    return row, created


def list_partners(session: Session) -> list[ExchangePartner]:
    """Every partner, by code."""
    return list(session.scalars(select(ExchangePartner).order_by(ExchangePartner.code)))


def get_partner(session: Session, code: str) -> ExchangePartner:
    """A partner, or 404."""
    row = session.get(ExchangePartner, code) if CODE.fullmatch(code) else None
    if row is None:
        raise NotFound(f"exchange partner {code[:40]} not found")
    return row


def partner_key(session: Session, kid: str) -> tuple[ExchangePartner, dict[str, Any]] | None:
    """The active partner holding key `kid`, with the key (a few partners: read them all)."""
    for partner in session.scalars(select(ExchangePartner).where(ExchangePartner.active.is_(True))):
        for key in partner.keys:
            if key.get("kid") == kid:
                return partner, key
    return None


# ---------------------------------------------------------------------------------------------------- sending


def _logged(session: Session, type_: str, message: dict[str, Any], token: str) -> None:
    payload = message["payload"] if message["type"] == RECEIPT else {}
    record_event(
        session,
        type=type_,
        subject=message["correlationId"],
        payload={
            "message_id": message["messageId"],
            "message_type": message["type"],
            "sender": message["sender"],
            "recipient": message["recipient"],
            "correlation_id": message["correlationId"],
            "jws_sha256": jws.token_hash(token),
            "ref_message_id": payload.get("refMessageId"),
            "status": payload.get("status"),
        },
    )


def _next_sequence(session: Session, direction: str, partner: str, correlation_id: str) -> int:
    """The next place in the order of one consignment's messages with one partner (sent: the order they must
    arrive in; received: the order they arrived in)."""
    found = session.scalar(
        select(func.coalesce(func.max(ExchangeMessage.sequence), 0)).where(
            ExchangeMessage.direction == direction,
            ExchangeMessage.partner == partner,
            ExchangeMessage.correlation_id == correlation_id,
        )
    )
    return int(found or 0) + 1


def queue(session: Session, ex: Exchange, out: Outbound, *, event_id: str | None = None) -> list[ExchangeMessage]:
    """Sign and queue `out` for its recipient (None: every active partner), in the caller's transaction."""
    if out.recipient is not None:
        recipients = [out.recipient]
    else:
        recipients = list(session.scalars(select(ExchangePartner.code).where(ExchangePartner.active.is_(True))))
    now = utcnow()
    rows: list[ExchangeMessage] = []
    for recipient in recipients:
        message = envelope.make(sender=ex.code, recipient=recipient, type=out.type,
                                correlation_id=out.correlation_id, payload=out.payload, created_at=now)  # fmt: skip
        errors = envelope.validate(message, ex.types)
        if errors:
            # Our own message type made it: a bug to fix, not something to send.
            raise ValueError(f"{out.type} message for {out.correlation_id} does not fit its schema: {errors[:3]}")
        token = ex.signer.sign(envelope.canonical(message))
        row = ExchangeMessage(
            id=new_id(), direction="out", message_id=message["messageId"], partner=recipient, type=out.type,
            correlation_id=out.correlation_id, sequence=_next_sequence(session, "out", recipient, out.correlation_id),
            event_id=event_id, jws=token,
            jws_sha256=jws.token_hash(token), state="queued", reasons=[], attempts=0, next_attempt_at=now,
            created_at=now, updated_at=now,
        )  # fmt: skip
        session.add(row)
        _logged(session, events.MESSAGE_SENT, message, token)
        rows.append(row)
    session.flush()
    return rows


def handle_event(ex: Exchange) -> Callable[[Session, Event], None]:
    """The consumer's step: every type's `outbound` for the event, each message queued in the same transaction."""

    def handle(session: Session, event: Event) -> None:
        for message_type in ex.types.values():
            if message_type.outbound is None:
                continue
            for out in message_type.outbound(event):
                queue(session, ex, out, event_id=event.id)

    return handle


def retry(session: Session, row: ExchangeMessage) -> ExchangeMessage:
    """Push a sent message again now (failed, retrying, or delivered without a receipt)."""
    if row.direction != "out":
        raise Conflict("only messages we sent are retried", code="exchange.retry_inbound")
    if row.state == "acknowledged":
        raise Conflict("the partner has acknowledged this message", code="exchange.retry_acknowledged")
    now = utcnow()
    row.state, row.next_attempt_at, row.updated_at = "retrying" if row.attempts else "queued", now, now
    session.flush()
    return row


def retry_all(session: Session, partner: str | None = None) -> int:
    """Make every unacknowledged sent message (of `partner`) due now; returns how many."""
    now = utcnow()
    stmt = (
        update(ExchangeMessage)
        .where(ExchangeMessage.direction == "out",
               ExchangeMessage.state.in_(("queued", "retrying", "failed", "delivered")))
        .values(next_attempt_at=now, updated_at=now,
                state=case((ExchangeMessage.state == "queued", "queued"), else_="retrying"))
    )  # fmt: skip
    if partner is not None:
        stmt = stmt.where(ExchangeMessage.partner == partner)
    return int(session.execute(stmt).rowcount or 0)  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------------------------------- receipts


def _sign_receipt(ex: Exchange, message: dict[str, Any], token: str, status: str,
                  reasons: list[dict[str, Any]]) -> tuple[dict[str, Any], str]:  # fmt: skip
    receipt = envelope.make(
        sender=ex.code, recipient=message["sender"], type=RECEIPT, correlation_id=message["correlationId"],
        payload={"refMessageId": message["messageId"], "status": status, "reasons": reasons,
                 "messageHash": jws.token_hash(token)},
        created_at=utcnow(),
    )  # fmt: skip
    return receipt, ex.signer.sign(envelope.canonical(receipt))


def apply_receipt(session: Session, partner: ExchangePartner, receipt: dict[str, Any], token: str) -> bool:
    """A partner's verified receipt for one of our messages: its delivery state becomes `acknowledged`. False if
    it names no message of ours to that partner, or another body than the one we sent."""
    payload = receipt["payload"]
    row = session.scalar(
        select(ExchangeMessage).where(
            ExchangeMessage.direction == "out",
            ExchangeMessage.message_id == payload["refMessageId"],
            ExchangeMessage.partner == partner.code,
        )
    )
    if row is None or row.jws_sha256 != payload["messageHash"]:
        return False
    if row.state == "acknowledged" and row.receipt_jws == token:
        return True
    now = utcnow()
    row.state, row.receipt_status, row.receipt_jws = "acknowledged", payload["status"], token
    row.reasons, row.acknowledged_at, row.updated_at, row.next_attempt_at = payload["reasons"], now, now, None
    row.delivered_at = row.delivered_at or now
    row.last_error = None
    _logged(session, events.RECEIPT_RECEIVED, receipt, token)
    return True


def verify_receipt(ex: Exchange, partner: ExchangePartner, token: str) -> dict[str, Any]:
    """A receipt the partner answered with: signed by one of its keys, valid, for us. ValueError otherwise."""
    header = jws.header_of(token)
    key = next((k for k in partner.keys if k["kid"] == header["kid"]), None)
    if key is None:
        raise ValueError(f"the receipt is signed with {header['kid']}, not a key of {partner.code}")
    message = envelope.parse(jws.verify(token, jws.public_key(key)))
    errors = envelope.validate(message, ex.types)
    if errors or message["type"] != RECEIPT:
        raise ValueError(f"not a valid receipt: {errors[:2]}")
    if message["sender"] != partner.code or message["recipient"] != ex.code:
        raise ValueError("the receipt is not from the partner to us")
    return dict(message)


# ---------------------------------------------------------------------------------------------------- receiving


@dataclass(frozen=True, slots=True)
class Received:
    """What the inbox answers: the receipt (a JWS) for a message, or that a receipt was recorded."""

    status: str
    message_id: str
    receipt: str | None = None
    duplicate: bool = False

    def json(self) -> dict[str, Any]:
        """The answer's body."""
        body: dict[str, Any] = {"messageId": self.message_id, "status": self.status, "duplicate": self.duplicate}
        if self.receipt is not None:
            body["receipt"] = self.receipt
        return body


def _refuse(sessions: sessionmaker[Session], error: AppError, *, partner: str | None, kid: str | None,
            message_id: str | None, token: str, remote: str | None) -> AppError:  # fmt: skip
    """Record the refusal (its own transaction: nothing else of the request is kept) and return the error."""
    with unit_of_work(sessions) as session:
        session.add(ExchangeRejection(
            id=new_id(), at=utcnow(), partner=partner, kid=(kid or "")[:128] or None,
            message_id=(message_id or "")[:36] or None, code=str(error.extra.get("code", "exchange.refused")),
            status=error.status, detail=error.detail[:2000], jws_sha256=jws.token_hash(token) if token else None,
            remote=(remote or "")[:64] or None,
        ))  # fmt: skip
    logger.warning("exchange message refused", extra={"partner": partner, "code": error.extra.get("code")})
    return error


def _message_id_of(token: str) -> str | None:
    try:
        value = envelope.parse(jws.unverified_payload(token)).get("messageId")
    except (ValueError, AttributeError, jws.JwsError):
        return None
    return value if isinstance(value, str) else None


def receive(sessions: sessionmaker[Session], ex: Exchange, token: str, *, remote: str | None = None) -> Received:
    """Take one message from a partner: every check of docs/exchange.md, then its effect once."""
    token = token.strip()

    def refuse(error: AppError, partner: str | None = None, kid: str | None = None) -> AppError:
        return _refuse(sessions, error, partner=partner, kid=kid, message_id=_message_id_of(token), token=token,
                       remote=remote)  # fmt: skip

    partner, kid, message = _verified(sessions, ex, token, refuse)
    created = _check_for_us(ex, message, lambda e: refuse(e, partner.code, kid))
    digest = jws.token_hash(token)
    last: IntegrityError | None = None
    for _ in range(3):
        with unit_of_work(sessions) as session:
            seen = _seen(session, message["messageId"])
        if seen is not None:
            if seen.jws_sha256 != digest or seen.partner != partner.code:
                raise refuse(ExchangeReplay(f"message {message['messageId']} was received before with another body",
                                            code="exchange.replay"), partner.code, kid)  # fmt: skip
            status = seen.state if seen.type == RECEIPT else str(seen.receipt_status)
            return Received(status, seen.message_id, seen.receipt_jws, duplicate=True)
        try:
            with unit_of_work(sessions) as session:
                if message["type"] == RECEIPT:
                    return _take_receipt(session, partner, message, token, lambda e: refuse(e, partner.code, kid))
                return _take_message(session, ex, partner, message, token, created)
        except IntegrityError as exc:
            # The same message delivered twice at once (the other delivery stored it: answer as it did), or
            # another message of the consignment took the same place in the arrival order (store it after).
            last = exc
    assert last is not None
    raise last


def _verified(sessions: sessionmaker[Session], ex: Exchange, token: str,
              refuse: Callable[..., AppError]) -> tuple[ExchangePartner, str, dict[str, Any]]:  # fmt: skip
    """The partner whose key signed `token`, the key id, and the message: signature, schema, canonical form."""
    try:
        header = jws.header_of(token)
    except jws.JwsError as exc:
        raise refuse(AppError(f"not a message: {exc}", code="exchange.malformed")) from exc
    kid = header["kid"]
    with unit_of_work(sessions) as session:
        found = partner_key(session, kid)
        if found is not None:
            session.expunge(found[0])
    if found is None:
        raise refuse(ExchangeUnauthenticated(f"no registered partner has the key {kid[:128]}",
                                             code="exchange.unknown_key"), kid=kid)  # fmt: skip
    partner, key = found
    wait = ex.limiter.take(partner.code)
    if wait > 0:
        # Not recorded one by one: a flood must not become a flood of writes.
        seconds = max(1, int(wait + 0.999))
        raise ExchangeRateLimited(
            f"partner {partner.code} sends more than {ex.limiter.per_minute:g} messages per minute; "
            f"retry in {seconds} s", headers={"Retry-After": str(seconds)}, code="exchange.rate_limited",
        )  # fmt: skip
    try:
        data = jws.verify(token, jws.public_key(key))
    except jws.JwsError as exc:
        error = ExchangeUnauthenticated(f"{exc} under the key {kid[:128]} of {partner.code}",
                                        code="exchange.signature_invalid")  # fmt: skip
        raise refuse(error, partner.code, kid) from exc
    try:
        message = envelope.parse(data)
    except ValueError as exc:
        raise refuse(ExchangeRefused("the signed payload is not JSON", code="exchange.malformed"),
                     partner.code, kid) from exc  # fmt: skip
    errors = envelope.validate(message, ex.types)
    if errors:
        raise refuse(ExchangeRefused(f"{len(errors)} problem(s) in the message", code="exchange.schema_invalid",
                                     errors=errors), partner.code, kid)  # fmt: skip
    if envelope.canonical(message) != data:
        raise refuse(ExchangeRefused("the signed payload is not in RFC 8785 canonical form",
                                     code="exchange.not_canonical"), partner.code, kid)  # fmt: skip
    if message["sender"] != partner.code:
        raise refuse(ExchangeUnauthenticated(f"the key {kid[:128]} is {partner.code}'s, the message says it is from "
                                             f"{message['sender']}", code="exchange.sender_mismatch"),
                     partner.code, kid)  # fmt: skip
    return partner, kid, dict(message)


def _check_for_us(ex: Exchange, message: dict[str, Any], refuse: Callable[[AppError], AppError]) -> dt.datetime:
    """Refuse a message for another administration, from the future (clock skew) or older than the replay window;
    returns its creation time."""
    if message["recipient"] != ex.code:
        raise refuse(ExchangeRefused(f"the message is for {message['recipient']}, this is {ex.code}",
                                     code="exchange.wrong_recipient"))  # fmt: skip
    now = utcnow()
    try:
        created = envelope.parse_time(message["createdAt"])
    except ValueError:
        error = {"pointer": "/createdAt", "code": "schema.format", "detail": "not a date and time"}
        raise refuse(ExchangeRefused("1 problem(s) in the message", code="exchange.schema_invalid",
                                     errors=[error])) from None  # fmt: skip
    skew = dt.timedelta(seconds=ex.settings.exchange_clock_skew_seconds)
    if created > now + skew:
        raise refuse(ExchangeRefused(
            f"the message was created {(created - now).total_seconds():.0f} s in the future (clock skew beyond "
            f"{skew.total_seconds():.0f} s)", code="exchange.clock_skew"))  # fmt: skip
    window = ex.settings.exchange_replay_window_seconds
    if created < now - dt.timedelta(seconds=window):
        raise refuse(ExchangeReplay(f"the message was created at {message['createdAt']}, before the replay window "
                                    f"({window:g} s)", code="exchange.stale"))  # fmt: skip
    return created


def _seen(session: Session, message_id: str) -> ExchangeMessage | None:
    return session.scalar(
        select(ExchangeMessage).where(ExchangeMessage.direction == "in", ExchangeMessage.message_id == message_id)
    )


def _take_message(session: Session, ex: Exchange, partner: ExchangePartner, message: dict[str, Any], token: str,
                  created: dt.datetime) -> Received:  # fmt: skip
    now = utcnow()
    row = ExchangeMessage(
        id=new_id(), direction="in", message_id=message["messageId"], partner=partner.code, type=message["type"],
        correlation_id=message["correlationId"],
        sequence=_next_sequence(session, "in", partner.code, message["correlationId"]),
        jws=token, jws_sha256=jws.token_hash(token), state="received", reasons=[], attempts=0, created_at=now,
        updated_at=now, delivered_at=now,
    )  # fmt: skip
    session.add(row)
    session.flush()  # a concurrent duplicate fails here, before any effect
    inbound = Inbound(message_id=message["messageId"], sender=message["sender"], type=message["type"],
                      correlation_id=message["correlationId"], created_at=created,
                      payload=message["payload"])  # fmt: skip
    handler = ex.types[message["type"]].inbound
    reasons: list[dict[str, Any]]
    try:
        with session.begin_nested():  # a rejection undoes whatever the handler wrote
            warnings = handler(session, inbound)
        reasons = [{"code": str(w.get("code", "warning")), "detail": str(w.get("detail", ""))} for w in warnings]
        status = "acceptedWithWarnings" if reasons else "accepted"
    except Rejected as exc:
        reasons, status = [exc.reason()], "rejected"
    receipt, receipt_token = _sign_receipt(ex, message, token, status, reasons)
    row.state, row.receipt_status, row.receipt_jws, row.reasons = status, status, receipt_token, reasons
    row.acknowledged_at = now
    _logged(session, events.MESSAGE_RECEIVED, message, token)
    _logged(session, events.RECEIPT_SENT, receipt, receipt_token)
    return Received(status, message["messageId"], receipt_token)


def _take_receipt(session: Session, partner: ExchangePartner, message: dict[str, Any], token: str,
                  refuse: Callable[[AppError], AppError]) -> Received:  # fmt: skip
    """A receipt posted to the inbox (for a message the partner pulled): it acknowledges our message."""
    live = session.get(ExchangePartner, partner.code) or partner
    if not apply_receipt(session, live, message, token):
        session.rollback()
        raise refuse(ExchangeRefused(f"the receipt names no message {message['payload']['refMessageId']} of ours "
                                     f"to {partner.code} with that hash", code="exchange.receipt_unknown"))  # fmt: skip
    now = utcnow()
    session.add(ExchangeMessage(
        id=new_id(), direction="in", message_id=message["messageId"], partner=partner.code, type=RECEIPT,
        correlation_id=message["correlationId"],
        sequence=_next_sequence(session, "in", partner.code, message["correlationId"]),
        jws=token, jws_sha256=jws.token_hash(token), state="recorded", reasons=[], attempts=0, created_at=now,
        updated_at=now, delivered_at=now,
    ))  # fmt: skip
    return Received("recorded", message["messageId"])


# ---------------------------------------------------------------------------------------------------- reading


def get_message(session: Session, ident: str) -> ExchangeMessage:
    """A message by its row id or its message id (ours first when both directions hold it)."""
    row = session.scalar(
        select(ExchangeMessage)
        .where(or_(ExchangeMessage.id == ident[:36], ExchangeMessage.message_id == ident[:36]))
        .order_by(ExchangeMessage.direction.desc())
        .limit(1)
    )
    if row is None:
        raise NotFound(f"exchange message {ident[:40]} not found")
    return row


def list_messages(session: Session, *, direction: str | None = None, partner: str | None = None,
                  state: str | None = None, type: str | None = None, correlation_id: str | None = None,
                  after: int = 0, limit: int = 50) -> list[ExchangeMessage]:  # fmt: skip
    """Messages in the order they were stored, after the cursor `after` (a `seq`)."""
    stmt = select(ExchangeMessage).where(ExchangeMessage.seq > after)
    for column, value in ((ExchangeMessage.direction, direction), (ExchangeMessage.partner, partner),
                          (ExchangeMessage.state, state), (ExchangeMessage.type, type),
                          (ExchangeMessage.correlation_id, correlation_id)):  # fmt: skip
        if value is not None:
            stmt = stmt.where(column == value)
    return list(session.scalars(stmt.order_by(ExchangeMessage.seq).limit(limit + 1)))


def list_rejections(session: Session, *, limit: int = 50) -> list[ExchangeRejection]:
    """The latest refusals, newest first."""
    stmt = select(ExchangeRejection).order_by(ExchangeRejection.at.desc(), ExchangeRejection.id).limit(limit)
    return list(session.scalars(stmt))


def status_counts(session: Session) -> dict[str, dict[str, int]]:
    """How many messages each partner has in each direction and state."""
    out: dict[str, dict[str, int]] = {}
    stmt = select(ExchangeMessage.partner, ExchangeMessage.direction, ExchangeMessage.state, func.count()).group_by(
        ExchangeMessage.partner, ExchangeMessage.direction, ExchangeMessage.state
    )
    for partner, direction, state, count in session.execute(stmt):
        out.setdefault(partner, {})[f"{direction}.{state}"] = int(count)
    return out


def message_json(row: ExchangeMessage, *, with_jws: bool = False) -> dict[str, Any]:
    """The API form of a message and its delivery state."""
    body: dict[str, Any] = {
        "id": row.id, "messageId": row.message_id, "direction": row.direction, "partner": row.partner,
        "type": row.type, "correlationId": row.correlation_id, "sequence": row.sequence, "state": row.state,
        "receiptStatus": row.receipt_status, "reasons": row.reasons, "attempts": row.attempts,
        "nextAttemptAt": envelope.rfc3339(row.next_attempt_at) if row.next_attempt_at else None,
        "lastError": row.last_error, "jwsSha256": row.jws_sha256, "createdAt": envelope.rfc3339(row.created_at),
        "deliveredAt": envelope.rfc3339(row.delivered_at) if row.delivered_at else None,
        "acknowledgedAt": envelope.rfc3339(row.acknowledged_at) if row.acknowledged_at else None,
        "cursor": row.seq,
    }  # fmt: skip
    if with_jws:
        body["jws"] = row.jws
        body["receipt"] = row.receipt_jws
    return body


def partner_json(row: ExchangePartner) -> dict[str, Any]:
    """The API form of a partner."""
    return {"code": row.code, "name": row.name, "baseUrl": row.base_url, "keys": row.keys, "active": row.active,
            "createdAt": envelope.rfc3339(row.created_at), "updatedAt": envelope.rfc3339(row.updated_at)}  # fmt: skip


def rejection_json(row: ExchangeRejection) -> dict[str, Any]:
    """The API form of a refusal."""
    return {"id": row.id, "at": envelope.rfc3339(row.at), "partner": row.partner, "kid": row.kid,
            "messageId": row.message_id, "code": row.code, "status": row.status, "detail": row.detail,
            "jwsSha256": row.jws_sha256, "remote": row.remote}  # fmt: skip
