"""Idempotency keys: a retried POST with the same key and body gets the first response, never a second effect."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from sqlalchemy import JSON, Integer, String, UniqueConstraint, bindparam, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, Session, mapped_column

from services.kernel.database import Base, UTCDateTime, new_id, utcnow
from services.kernel.errors import AppError, Unprocessable


class IdempotencyRecord(Base):
    """The first response to a (caller scope, key) pair."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("scope", "key", name="uq_idempotency_keys_scope_key"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    scope: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(255))
    request_sha256: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response_body: Mapped[dict[str, Any]] = mapped_column(JSON)
    location: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class IdempotencyKeyRequired(AppError):
    """The request changes state and must be retry-safe."""

    status, title, type_slug = 400, "Idempotency-Key required", "idempotency-key-required"


def request_fingerprint(method: str, path: str, body: bytes) -> str:
    """What makes two requests 'the same' for idempotency."""
    digest = hashlib.sha256()
    digest.update(method.encode() + b" " + path.encode() + b"\n")
    digest.update(body)
    return digest.hexdigest()


def validate_key(key: str | None) -> str:
    """A usable Idempotency-Key, or a 4xx that says what is wrong."""
    if key is None or not key.strip():
        raise IdempotencyKeyRequired(
            "this operation requires an Idempotency-Key header (any unique string up to 255 chars)"
        )
    if len(key) > 255 or not key.isprintable():
        raise Unprocessable("Idempotency-Key must be at most 255 printable characters")
    return key


_FIND = select(IdempotencyRecord).where(
    IdempotencyRecord.scope == bindparam("scope"), IdempotencyRecord.key == bindparam("key")
)


def find_record(session: Session, *, scope: str, key: str) -> IdempotencyRecord | None:
    """The stored first response for this key, if any."""
    return session.scalar(_FIND, {"scope": scope, "key": key})


def replay_or_conflict(record: IdempotencyRecord, *, fingerprint: str) -> IdempotencyRecord:
    """Return the record to replay, or 422 if the key was used for a different request."""
    if record.request_sha256 != fingerprint:
        raise Unprocessable(
            "this Idempotency-Key was already used with a different request body; use a new key",
            code="idempotency.key_reused",
        )
    return record


# INSERT ... ON CONFLICT DO NOTHING, built once per dialect.
_SAVE = {
    name: module.insert(IdempotencyRecord.__table__)
    .on_conflict_do_nothing(index_elements=["scope", "key"])
    .returning(IdempotencyRecord.__table__.c.id)
    for name, module in (("postgresql", postgresql), ("sqlite", sqlite))
}


def save_response(
    session: Session,
    *,
    scope: str,
    key: str,
    fingerprint: str,
    status_code: int,
    body: dict[str, Any],
    location: str | None,
) -> bool:
    """Store the first response to replay for later requests with this key.

    Returns False, storing nothing, when the key already has a response: a concurrent request with the same
    key committed first (on PostgreSQL this insert waits for that request's transaction to end). The caller
    then rolls back its own work and replays the stored response, so one key never has two effects.
    """
    conn = session.connection()
    result = conn.execute(
        _SAVE[conn.dialect.name],
        {
            "id": new_id(),
            "scope": scope,
            "key": key,
            "request_sha256": fingerprint,
            "status_code": status_code,
            "response_body": body,
            "location": location,
            "created_at": utcnow(),
        },
    )
    return result.scalar() is not None
