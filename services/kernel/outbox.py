"""Transactional outbox: events are rows written in the same transaction as the change they describe."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from typing import Any

import orjson
import rfc8785
from sqlalchemy import JSON, BigInteger, Index, Integer, String, bindparam, func, insert, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from services.kernel import catalogue
from services.kernel.database import Base, UTCDateTime, new_id, table_of, utcnow

# SQLite only autoincrements INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT identity.
SeqType = BigInteger().with_variant(Integer(), "sqlite")


class OutboxEvent(Base):
    """An event waiting to be (or already) published to the bus."""

    __tablename__ = "outbox_events"
    __table_args__ = (Index("ix_outbox_events_unpublished", "published_at", "seq"),)

    seq: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(36), unique=True, default=new_id)
    type: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(64), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    published_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class ProcessedEvent(Base):
    """Which consumer has already handled which event: the dedupe that makes at-least-once safe."""

    __tablename__ = "processed_events"

    consumer: Mapped[str] = mapped_column(String(64), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    processed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


@dataclass(frozen=True, slots=True)
class Event:
    """A domain event as it travels on the bus."""

    id: str
    type: str
    subject: str
    payload: dict[str, Any]
    occurred_at: dt.datetime
    seq: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The wire form (used by the NATS bus and by tests)."""
        return {
            "id": self.id,
            "type": self.type,
            "subject": self.subject,
            "payload": self.payload,
            "occurred_at": self.occurred_at.isoformat(),
            "seq": self.seq,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Event:
        """Parse the wire form."""
        return cls(
            id=data["id"],
            type=data["type"],
            subject=data["subject"],
            payload=data["payload"],
            occurred_at=dt.datetime.fromisoformat(data["occurred_at"]),
            seq=int(data.get("seq", 0)),
        )


def _plain(value: Any) -> bool:
    """True if `value` holds no floats and no keys at or above U+D800, where orjson already is RFC 8785."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, sub in item.items():
                if not isinstance(key, str) or not (key.isascii() or max(key) < "\ud800"):
                    return False
                if isinstance(sub, dict | list | float):
                    stack.append(sub)
        elif isinstance(item, list):
            stack.extend(sub for sub in item if isinstance(sub, dict | list | float))
        elif isinstance(item, float):
            return False
    return True


def canonical_json(document: Any, *, plain: bool | None = None) -> bytes:
    """RFC 8785 (JCS) canonical JSON of `document`.

    Our documents carry decimals as strings, so the common case needs no number formatting: sorted keys, no
    whitespace, minimal escaping is exactly what orjson produces (a property test checks it against the
    reference implementation), at a fraction of the cost of the general implementation, which still handles
    floats and astral-plane keys. `plain=True` skips the check for callers whose documents cannot hold either
    (a dump of a schema without float fields or free-form keys).
    """
    if plain or (plain is None and _plain(document)):
        try:
            return orjson.dumps(document, option=orjson.OPT_SORT_KEYS)
        except orjson.JSONEncodeError:
            pass  # integers beyond 64 bits, lone surrogates: the general implementation decides
    return rfc8785.dumps(document)


def canonical_sha256(document: Any, *, plain: bool | None = None) -> str:
    """SHA-256 of the RFC 8785 canonical JSON of `document` (hex)."""
    return hashlib.sha256(canonical_json(document, plain=plain)).hexdigest()


# RFC 8785 (as I-JSON) represents integers exactly only within +-(2^53 - 1): beyond, a verifier in JavaScript reads
# another number and hashes other bytes. Amounts larger than that travel as decimal strings, or not at all.
MAX_EXACT_INTEGER = 2**53 - 1


def inexact_integers(document: Any) -> list[str]:
    """JSON Pointers (RFC 6901) of the integers in `document` outside RFC 8785's exact range (none: [])."""
    found: list[str] = []
    stack: list[tuple[str, Any]] = [("", document)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, dict):
            stack.extend((f"{where}/{str(k).replace('~', '~0').replace('/', '~1')}", v) for k, v in item.items())
        elif isinstance(item, list | tuple):
            stack.extend((f"{where}/{i}", v) for i, v in enumerate(item))
        elif isinstance(item, int) and not isinstance(item, bool) and abs(item) > MAX_EXACT_INTEGER:
            found.append(where)
    return found


class InexactInteger(ValueError):
    """An event payload holds an integer that RFC 8785 cannot represent exactly; the event is not recorded."""


def event_row(*, type: str, subject: str, payload: dict[str, Any]) -> dict[str, Any]:
    """An outbox row (for record_events); the payload must be what the event catalogue says its type carries."""
    catalogue.check(type, payload)
    return {"id": new_id(), "type": type, "subject": subject, "payload": payload, "occurred_at": utcnow()}


_INSERT_EVENTS = insert(table_of(OutboxEvent))


def record_events(session: Session, rows: list[dict[str, Any]]) -> list[str]:
    """Write events into the current transaction (one statement); they are published only if it commits."""
    if rows:
        for row in rows:
            # Every payload becomes a ledger entry hashed as RFC 8785: refuse here, in the producer's transaction,
            # what the ledger could not commit to exactly (the API's bounds keep amounts far below this).
            if bad := inexact_integers(row["payload"]):
                raise InexactInteger(f"{row['type']} payload: integer beyond 2^53 - 1 at {', '.join(sorted(bad))}")
        # Changes still pending in the session go first, as with any ORM statement (autoflush).
        session.flush()
        session.connection().execute(_INSERT_EVENTS, rows)
    return [r["id"] for r in rows]


def record_event(session: Session, *, type: str, subject: str, payload: dict[str, Any]) -> str:
    """Write one event into the current transaction; returns its id."""
    return record_events(session, [event_row(type=type, subject=subject, payload=payload)])[0]


_OUTBOX = table_of(OutboxEvent)
_PENDING = (
    select(_OUTBOX.c.seq, _OUTBOX.c.id, _OUTBOX.c.type, _OUTBOX.c.subject, _OUTBOX.c.payload, _OUTBOX.c.occurred_at)
    .where(_OUTBOX.c.published_at.is_(None))
    .order_by(_OUTBOX.c.seq)
    .limit(bindparam("limit"))
)
_PENDING_LOCKED = _PENDING.with_for_update(skip_locked=True)
_MARK = (
    update(_OUTBOX).where(_OUTBOX.c.seq.in_(bindparam("seqs", expanding=True))).values(published_at=bindparam("now"))
)


def pending_events(session: Session, *, limit: int = 500, lock: bool = True) -> list[Event]:
    """Unpublished events, oldest first; on PostgreSQL locked so that two relays never take the same rows."""
    conn = session.connection()
    stmt = _PENDING_LOCKED if lock and conn.dialect.name == "postgresql" else _PENDING
    return [
        Event(id=r.id, type=r.type, subject=r.subject, payload=r.payload, occurred_at=r.occurred_at, seq=r.seq)
        for r in conn.execute(stmt, {"limit": limit})
    ]


# The first unpublished event of each subject below `below` that this relay did not claim: another relay holds it
# (or it became visible after the claim). Uses ix_outbox_events_unpublished (published_at, seq).
_EARLIER_ELSEWHERE = (
    select(_OUTBOX.c.subject, func.min(_OUTBOX.c.seq))
    .where(
        _OUTBOX.c.published_at.is_(None),
        _OUTBOX.c.seq < bindparam("below"),
        _OUTBOX.c.subject.in_(bindparam("subjects", expanding=True)),
        _OUTBOX.c.seq.not_in(bindparam("claimed", expanding=True)),
    )
    .group_by(_OUTBOX.c.subject)
)


def claim_events(session: Session, *, limit: int = 500) -> list[Event]:
    """PostgreSQL: lock up to `limit` unpublished events no other relay holds, for as long as the session's
    transaction lasts, and return those that may be delivered now, oldest first.

    `FOR UPDATE SKIP LOCKED` gives each relay rows no other relay is delivering. Two relays hold disjoint rows and
    deliver at the same time, so an event is held back (stays locked, undelivered, for a later pass) while an
    earlier event of its subject is still pending outside this claim: per subject, consumers get events in outbox
    order. The earliest pending event of a subject is never held back, so every subject makes progress.
    """
    claimed = pending_events(session, limit=limit, lock=True)
    if not claimed:
        return []
    params = {
        "below": claimed[-1].seq,
        "subjects": sorted({e.subject for e in claimed}),
        "claimed": [e.seq for e in claimed],
    }
    first_elsewhere: dict[str, int] = dict(session.connection().execute(_EARLIER_ELSEWHERE, params).tuples().all())
    if not first_elsewhere:
        return claimed
    return [e for e in claimed if first_elsewhere.get(e.subject, e.seq) >= e.seq]


def mark_published(session: Session, seqs: list[int]) -> None:
    """Record that these events reached the bus."""
    if seqs:
        session.connection().execute(_MARK, {"seqs": seqs, "now": utcnow()})


def as_event(row: OutboxEvent) -> Event:
    """The bus form of an outbox row."""
    return Event(
        id=row.id,
        type=row.type,
        subject=row.subject,
        payload=row.payload,
        occurred_at=row.occurred_at,
        seq=row.seq,
    )
