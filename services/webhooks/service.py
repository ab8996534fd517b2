"""Endpoints and deliveries: registration rules, which events a trader receives and in what shape, and the consumer
that turns the declarations service's events into deliveries (one per matching endpoint, whatever the redelivery)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import unicodedata
import urllib.parse
from collections.abc import Callable
from typing import Any, get_args

from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from services.kernel import catalogue
from services.kernel.auth import Principal, Role
from services.kernel.database import new_id, table_of, unit_of_work, utcnow
from services.kernel.errors import Conflict, Forbidden, NotFound, Unprocessable
from services.kernel.outbox import Event
from services.webhooks import signing
from services.webhooks.models import WebhookDelivery, WebhookEndpoint
from services.webhooks.schemas import GateReason

logger = logging.getLogger("smartgate.webhooks")

# The events a trader may receive (officer assignment stays internal): those the event catalogue marks
# trader-facing (its declarations' `declaration.*`, its trucks' `gate.*`), and the ping.
EVENT_TYPES = catalogue.TRADER_FACING
TEST_EVENT = "webhook.test"
GATE_REASONS = frozenset(get_args(GateReason))
# How long the previous secret keeps signing after a rotation.
ROTATION_OVERLAP = dt.timedelta(hours=24)

_DELIVERIES = table_of(WebhookDelivery)


def require_trader(principal: Principal) -> str:
    """The caller's organisation: webhooks are a trader's, for its own declarations."""
    principal.require(Role.trader)
    if principal.organisation_id is None:
        raise Forbidden("this trader key is not bound to an organisation")
    return principal.organisation_id


# ---------------------------------------------------------------------------------------------------- targets


_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")


def is_public_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether the platform may call `address`: globally routable, including the IPv4 address inside an IPv6
    form (mapped, compatible, 6to4, Teredo, NAT64), which Python's `is_global` alone does not look into."""
    if not address.is_global or address.is_multicast:
        return False
    if isinstance(address, ipaddress.IPv6Address):
        inner: list[ipaddress.IPv4Address] = []
        if address.ipv4_mapped:
            inner.append(address.ipv4_mapped)
        if address.sixtofour:
            inner.append(address.sixtofour)
        if address.teredo:
            inner.extend(address.teredo)
        packed = address.packed
        if address in _NAT64 or address in _NAT64_LOCAL or packed[:12] == bytes(12):
            inner.append(ipaddress.IPv4Address(packed[12:]))
        return all(is_public_address(a) for a in inner)
    return True


def check_url(url: str, *, allow_private: bool) -> str:
    """Refuse a URL the platform must not call: not http(s), credentials in it, a host name that is not one, or (in
    production) not https or naming a loopback, private or link-local host. Returns the URL as given."""
    if has_control(url):
        # urlsplit silently drops tab, CR and LF, so the check below would pass a URL that no HTTP client sends.
        raise Unprocessable("the URL must not contain control characters (CR, LF, tab...)", code="webhook.url")
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise Unprocessable(f"not a valid URL: {exc}", code="webhook.url") from exc
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise Unprocessable("the URL must be https://host/...", code="webhook.url")
    if parts.scheme == "http" and not allow_private:
        raise Unprocessable("the URL must use https", code="webhook.url")
    if parts.username or parts.password:
        raise Unprocessable("credentials do not belong in the URL; verify our signature instead", code="webhook.url")
    if parts.fragment:
        raise Unprocessable("the URL must not have a #fragment", code="webhook.url")
    if port == 0:
        raise Unprocessable("port 0 is not a port", code="webhook.url")
    host = parts.hostname.rstrip(".").lower()
    address = _ip_literal(host)
    if address is None:
        try:
            labels = host.encode("idna").split(b".")
        except UnicodeError as exc:
            raise Unprocessable(f"{host[:253]} is not a host name", code="webhook.url") from exc
        if not all(label and len(label) <= 63 and not label.startswith(b"-") for label in labels):
            raise Unprocessable(f"{host[:253]} is not a host name", code="webhook.url")
    if not allow_private:
        single_label = address is None and "." not in host
        if host == "localhost" or host.endswith((".localhost", ".local", ".internal")) or single_label:
            raise Unprocessable(f"{host} is not a public host", code="webhook.url")
        if address is not None and not is_public_address(address):
            raise Unprocessable(f"{host} is not a public address", code="webhook.url")
    return url


def has_control(text: str) -> bool:
    """Whether `text` holds a control character (C0, DEL or C1)."""
    return any(unicodedata.category(c) == "Cc" for c in text)


def _ip_literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def check_event_types(types: list[str]) -> list[str]:
    """Known, trader-visible types, each once, in the order given (empty: all of them)."""
    unknown = [t for t in types if t not in EVENT_TYPES]
    if unknown:
        raise Unprocessable(
            f"unknown event type(s): {', '.join(sorted(set(unknown)))}; known: {', '.join(EVENT_TYPES)}",
            code="webhook.event_types",
        )
    return list(dict.fromkeys(types))


# ---------------------------------------------------------------------------------------------------- endpoints


def get_endpoint(session: Session, organisation_id: str, endpoint_id: str) -> WebhookEndpoint:
    """The organisation's endpoint, or 404 (another organisation's is not found either)."""
    row = session.get(WebhookEndpoint, endpoint_id)
    if row is None or row.organisation_id != organisation_id:
        raise NotFound(f"webhook endpoint {endpoint_id} not found")
    return row


def list_endpoints(session: Session, organisation_id: str) -> list[WebhookEndpoint]:
    """The organisation's endpoints, oldest first."""
    stmt = (
        select(WebhookEndpoint)
        .where(WebhookEndpoint.organisation_id == organisation_id)
        .order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)
    )
    return list(session.scalars(stmt))


def create_endpoint(
    session: Session,
    *,
    organisation_id: str,
    url: str,
    event_types: list[str],
    description: str,
    actor: str,
    allow_private: bool,
    max_endpoints: int,
) -> WebhookEndpoint:
    """Register an endpoint with a fresh secret (409 beyond the organisation's limit)."""
    check_url(url, allow_private=allow_private)
    types = check_event_types(event_types)
    now = utcnow()
    # A bounded number of tries: each lost race means another registration took a slot, and there are only
    # `max_endpoints` of them.
    for _ in range(max_endpoints + 1):
        slot = _free_slot(session, organisation_id, max_endpoints)
        if slot is None:
            break
        row = WebhookEndpoint(
            id=new_id(),
            organisation_id=organisation_id,
            slot=slot,
            url=url,
            description=description,
            event_types=types,
            secret=signing.new_secret(),
            active=True,
            created_by=actor,
            created_at=now,
            updated_at=now,
        )
        try:
            with session.begin_nested():  # a savepoint: losing the slot undoes only this insert
                session.add(row)
                session.flush()
        except IntegrityError:
            continue  # a concurrent registration took that slot (it committed first): look again
        return row
    raise Conflict(
        f"an organisation may register at most {max_endpoints} webhook endpoints; delete one first",
        code="webhook.limit",
    )


def _free_slot(session: Session, organisation_id: str, max_endpoints: int) -> int | None:
    """The lowest slot below the limit that no endpoint of the organisation holds (None: all taken)."""
    taken = set(session.scalars(select(WebhookEndpoint.slot).where(WebhookEndpoint.organisation_id == organisation_id)))
    return next((n for n in range(max_endpoints) if n not in taken), None)


def update_endpoint(
    session: Session, row: WebhookEndpoint, changes: dict[str, Any], *, allow_private: bool
) -> WebhookEndpoint:
    """Change the URL, event types, description or on/off; switching on again clears why it was off."""
    if "url" in changes:
        row.url = check_url(changes["url"], allow_private=allow_private)
    if "event_types" in changes:
        row.event_types = check_event_types(changes["event_types"])
    if "description" in changes:
        row.description = changes["description"]
    if "active" in changes:
        row.active = bool(changes["active"])
        if row.active:
            row.disabled_reason = None
    row.updated_at = utcnow()
    session.flush()
    return row


def rotate_secret(session: Session, row: WebhookEndpoint) -> WebhookEndpoint:
    """A new secret; the old one keeps signing beside it for ROTATION_OVERLAP."""
    now = utcnow()
    row.previous_secret, row.previous_secret_until = row.secret, now + ROTATION_OVERLAP
    row.secret = signing.new_secret()
    row.updated_at = now
    session.flush()
    return row


def delete_endpoint(session: Session, row: WebhookEndpoint) -> None:
    """Remove the endpoint and its delivery log (nothing more is sent to it)."""
    session.execute(delete(WebhookDelivery).where(WebhookDelivery.endpoint_id == row.id))
    session.delete(row)
    session.flush()


def signing_secrets(row: WebhookEndpoint, now: dt.datetime) -> list[str]:
    """The secrets that sign a delivery now: the current one, and the previous one during its overlap."""
    found = [row.secret]
    if row.previous_secret and row.previous_secret_until and row.previous_secret_until > now:
        found.append(row.previous_secret)
    return found


# ---------------------------------------------------------------------------------------------------- deliveries


def message(event_type: str, occurred_at: dt.datetime, data: dict[str, Any]) -> dict[str, Any]:
    """The body a receiver gets (Standard Webhooks shape): type, timestamp and the data."""
    return {"type": event_type, "timestamp": occurred_at.isoformat().replace("+00:00", "Z"), "data": data}


_DECISION_REASON = {
    "declaration.cancelled",
    "declaration.payment_rejected",
    "declaration.documents_requested",
    "declaration.inspection_ordered",
    "declaration.cleared",
    "declaration.rejected",
    "declaration.expired",
}


def gate_event_data(event: Event) -> dict[str, Any]:
    """What a trader learns from a `gate.*` event of its declaration: where the truck is (lane, direction, time),
    what the cameras read, how it matched and the gate's decision with its reasons (the fixed hold reasons).
    Not the camera, the images or their digests, the OCR detail, nor the gate key: those stay with customs."""
    p = event.payload
    decl_id = p.get("declaration_id") or event.subject
    data: dict[str, Any] = {
        "declaration_id": decl_id,
        "number": p.get("declaration_number"),
        "gate_event_id": p.get("gate_event_id"),
        "lane": p.get("lane"),
        "direction": p.get("direction"),
        "taken_at": p.get("taken_at"),
    }
    # The gate's fixed hold reasons only (a reason added later reaches traders once it is documented).
    reasons = [r for r in p.get("reasons") or [] if r in GATE_REASONS]
    if event.type == "gate.read":
        data |= {"decision": p.get("decision"), "reasons": reasons, "match": p.get("match"),
                 "container": p.get("matched_container")}  # fmt: skip
    elif event.type == "gate.mismatch":
        data |= {"decision": "hold", "reasons": reasons, "match": p.get("match")}
    if event.type in ("gate.read", "gate.mismatch"):
        data["codes_read"] = [c["code"] for c in p.get("codes") or [] if isinstance(c, dict) and "code" in c]
    data["links"] = {"declaration": f"/api/v1/declarations/{decl_id}",
                     "gate_events": f"/api/v1/gate/declarations/{decl_id}/events"}  # fmt: skip
    return data


def event_data(event: Event) -> dict[str, Any]:
    """What a trader learns from an event: the declaration, its new state, and what it needs to act on.

    Thin on purpose: the declaration itself is one authenticated GET away (`links.declaration`). No officer ids,
    no internal rule weights.
    """
    if event.type.startswith("gate."):
        return gate_event_data(event)
    p = event.payload
    data: dict[str, Any] = {"declaration_id": p.get("declaration_id") or event.subject, "number": p.get("number")}
    for key in ("status", "version"):
        if key in p:
            data[key] = p[key]
    if event.type == "declaration.assessed":
        data |= {"channel": p.get("channel"), "duties_total_vnd": p.get("duties_total_vnd"),
                 "duties_assessed": p.get("duties_assessed")}  # fmt: skip
    elif event.type == "declaration.paid":
        data |= {"amount_vnd": p.get("amount_vnd"), "paid_vnd": p.get("paid_vnd"), "due_vnd": p.get("due_vnd")}
    elif event.type == "declaration.payment_rejected":
        data |= {"payment_id": p.get("payment_id"), "amount_vnd": p.get("amount_vnd")}
    if event.type in _DECISION_REASON and p.get("reason"):
        data["reason"] = p["reason"]
    data["links"] = {"declaration": f"/api/v1/declarations/{data['declaration_id']}"}
    return data


def _insert_ignoring_duplicates(session: Session, rows: list[dict[str, Any]]) -> None:
    """One delivery per (endpoint, event): a redelivered event adds nothing."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        session.execute(pg_insert(_DELIVERIES).on_conflict_do_nothing(constraint="uq_webhook_deliveries_endpoint_event"),
                        rows)  # fmt: skip
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        session.execute(sqlite_insert(_DELIVERIES).on_conflict_do_nothing(), rows)
    else:  # pragma: no cover - the two supported databases are above
        session.execute(insert(_DELIVERIES).prefix_with("IGNORE"), rows)


def _owners(events: list[Event]) -> dict[str, str]:
    """The organisation each offered event belongs to, by event id (events of other types, malformed, or about no
    organisation's declaration, such as a truck nothing matched: none)."""
    owners: dict[str, str] = {}
    for event in events:
        if event.type not in EVENT_TYPES:
            continue
        routed = catalogue.read(event, catalogue.Routed)
        if routed is not None and routed.organisation_id:
            owners[event.id] = routed.organisation_id
    return owners


def enqueue(session: Session, events: list[Event]) -> int:
    """Deliveries for the events' organisations' active endpoints that want them. Returns how many rows were
    offered (duplicates of earlier deliveries are skipped by the database)."""
    owners = _owners(events)
    wanted = [e for e in events if e.id in owners]
    if not wanted:
        return 0
    orgs = set(owners.values())
    endpoints = list(
        session.scalars(
            select(WebhookEndpoint).where(WebhookEndpoint.organisation_id.in_(orgs), WebhookEndpoint.active.is_(True))
        )
    )
    if not endpoints:
        return 0
    now = utcnow()
    rows: list[dict[str, Any]] = []
    # Each row a microsecond after the one before: the dispatcher sends an endpoint's deliveries in created_at
    # order, which is then the events' order (a batch's events share one commit time).
    tick = dt.timedelta(microseconds=1)
    for event in wanted:
        for ep in endpoints:
            if ep.organisation_id != owners[event.id]:
                continue
            if ep.event_types and event.type not in ep.event_types:
                continue
            rows.append({
                "id": new_id(), "endpoint_id": ep.id, "event_id": event.id, "event_type": event.type,
                "payload": message(event.type, event.occurred_at, event_data(event)), "status": "pending",
                "attempts": 0, "next_attempt_at": now, "created_at": now + tick * len(rows),
            })  # fmt: skip
    if rows:
        _insert_ignoring_duplicates(session, rows)
    return len(rows)


def make_consumer(
    sessions: sessionmaker[Session], wake: Callable[[], None], *, read_sessions: sessionmaker[Session] | None = None
) -> Callable[[Event], None]:
    """The bus handler: idempotent by the (endpoint, event) key itself, so no dedupe table; takes batches too.
    Most batches concern no endpoint: that is found with a read (on SQLite, without the writer lock)."""

    def handle_batch(events: list[Event]) -> None:
        orgs = set(_owners(events).values())
        if not orgs:
            return
        with unit_of_work(read_sessions or sessions) as session:
            wanted = session.scalar(
                select(func.count())
                .select_from(WebhookEndpoint)
                .where(WebhookEndpoint.organisation_id.in_(orgs), WebhookEndpoint.active.is_(True))
            )
        if not wanted:
            return
        with unit_of_work(sessions) as session:
            made = enqueue(session, events)
        if made:
            wake()

    def handler(event: Event) -> None:
        handle_batch([event])

    handler.handle_batch = handle_batch  # type: ignore[attr-defined]
    return handler


def enqueue_test(session: Session, row: WebhookEndpoint) -> WebhookDelivery:
    """A `webhook.test` ping, delivered like any event (even to an endpoint switched off, so it can be checked)."""
    now = utcnow()
    delivery = WebhookDelivery(
        id=new_id(),
        endpoint_id=row.id,
        event_id=new_id(),
        event_type=TEST_EVENT,
        payload=message(TEST_EVENT, now, {"endpoint_id": row.id, "message": "smartgate webhook test"}),
        status="pending",
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )
    session.add(delivery)
    session.flush()
    return delivery


def get_delivery(session: Session, row: WebhookEndpoint, delivery_id: str) -> WebhookDelivery:
    """A delivery of this endpoint, or 404."""
    delivery = session.get(WebhookDelivery, delivery_id)
    if delivery is None or delivery.endpoint_id != row.id:
        raise NotFound(f"delivery {delivery_id} not found")
    return delivery


def retry_delivery(session: Session, row: WebhookEndpoint, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send again now, with a fresh round of attempts (a delivered one too: a receiver that lost it asks)."""
    if delivery.status == "pending" and delivery.attempts == 0:
        raise Conflict("this delivery has not been attempted yet", code="webhook.delivery_pending")
    if not row.active and delivery.event_type != TEST_EVENT:
        raise Conflict("the endpoint is switched off; switch it on first", code="webhook.inactive")
    delivery.status, delivery.attempts, delivery.next_attempt_at = "pending", 0, utcnow()
    session.flush()
    return delivery


def list_deliveries(
    session: Session,
    row: WebhookEndpoint,
    *,
    status: str | None,
    limit: int,
    after: tuple[dt.datetime, str] | None,
) -> list[WebhookDelivery]:
    """The endpoint's deliveries, newest first (one more than `limit`, to tell whether a next page exists)."""
    stmt = select(WebhookDelivery).where(WebhookDelivery.endpoint_id == row.id)
    if status:
        stmt = stmt.where(WebhookDelivery.status == status)
    if after is not None:
        at, last_id = after
        stmt = stmt.where(
            (WebhookDelivery.created_at < at) | ((WebhookDelivery.created_at == at) & (WebhookDelivery.id < last_id))
        )
    stmt = stmt.order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc()).limit(limit + 1)
    return list(session.scalars(stmt))
