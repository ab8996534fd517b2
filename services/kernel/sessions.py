"""Console sessions: an officer signs in once with an API key; the browser then holds only a random session id.

The database keeps the id's SHA-256 (a copy of the table does not sign anyone in), the key it stands for, and when it
ends: after `console_session_idle_seconds` without use, `console_session_max_seconds` after sign-in, at sign-out, or
when its key is revoked (checked on every request). The console calls the API with `Authorization: Console
<id>.<proof>`, the proof an HMAC of the id under the deployment secret: the id alone, lifted from a browser, opens
the console but is no API credential, and the raw key is never stored or kept after sign-in.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets

from sqlalchemy import ForeignKey, String, delete, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from services.kernel.auth import ApiKey, Principal, Role
from services.kernel.database import Base, UTCDateTime, new_id, utcnow
from services.kernel.errors import Unauthorized

SCHEME = "Console"
# last_seen_at is written at most this often per session (each write takes SQLite's writer lock).
TOUCH_EVERY = dt.timedelta(seconds=60)
KEEP_ENDED = dt.timedelta(days=30)
ENDED = "the console session has ended (signed out, expired, or its key was revoked); sign in again"


class ConsoleSession(Base):
    """A signed-in console: the hash of the browser's session id and the key it acts as."""

    __tablename__ = "console_sessions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    key_id: Mapped[str] = mapped_column(ForeignKey("api_keys.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


def token_hash(token: str) -> str:
    """What the database keeps of a session id."""
    return hashlib.sha256(token.encode()).hexdigest()


def proof(secret_key: str, token: str) -> str:
    """The console's proof that it, a part of the platform holding the deployment secret, presents `token`."""
    return hmac.new(secret_key.encode(), b"console-session:" + token.encode(), hashlib.sha256).hexdigest()


def authorization(secret_key: str, token: str) -> str:
    """The Authorization header the console sends to the API for the session `token`."""
    return f"{SCHEME} {token}.{proof(secret_key, token)}"


def is_console(header: str | None) -> bool:
    """Whether an Authorization header is a console session's (not an API key's)."""
    return header is not None and header.partition(" ")[0].lower() == SCHEME.lower()


def open_session(session: Session, *, key_id: str, max_seconds: float) -> tuple[ConsoleSession, str]:
    """A new session for `key_id`; returns it and the id for the cookie (shown once, never stored)."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    # The key's sessions that ended long ago go (kept a while for whoever asks who was signed in when).
    session.execute(delete(ConsoleSession).where(ConsoleSession.key_id == key_id,
                                                 ConsoleSession.expires_at < now - KEEP_ENDED))  # fmt: skip
    row = ConsoleSession(token_hash=token_hash(token), key_id=key_id, created_at=now, last_seen_at=now,
                         expires_at=now + dt.timedelta(seconds=max_seconds))  # fmt: skip
    session.add(row)
    session.flush()
    return row, token


def resolve(
    session: Session, *, secret_key: str, header: str, idle_seconds: float, now: dt.datetime | None = None
) -> tuple[Principal, bool]:
    """The principal of a live session named by a `Console` header, and whether its last use should be recorded
    (401 if the proof is wrong or the session ended)."""
    token, _, given = header.partition(" ")[2].strip().rpartition(".")
    if not token or not hmac.compare_digest(given.encode(), proof(secret_key, token).encode()):
        raise Unauthorized("invalid console session credential")
    now = now or utcnow()
    found = session.execute(
        select(ConsoleSession, ApiKey)
        .join(ApiKey, ApiKey.id == ConsoleSession.key_id)
        .where(ConsoleSession.token_hash == token_hash(token))
    ).first()
    if found is None:
        raise Unauthorized(ENDED)
    row, key = found
    idle_until = row.last_seen_at + dt.timedelta(seconds=idle_seconds)
    if row.revoked_at is not None or key.revoked_at is not None or now >= row.expires_at or now >= idle_until:
        raise Unauthorized(ENDED)
    principal = Principal(key_id=key.id, role=Role(key.role), organisation_id=key.organisation_id, label=key.label,
                          session_id=row.id)  # fmt: skip
    return principal, now - row.last_seen_at >= TOUCH_EVERY


def touch(session: Session, session_id: str, now: dt.datetime | None = None) -> None:
    """Record a use of the session (what the idle limit counts from)."""
    now = now or utcnow()
    session.execute(
        update(ConsoleSession)
        .where(ConsoleSession.id == session_id, ConsoleSession.last_seen_at < now - TOUCH_EVERY)
        .values(last_seen_at=now)
    )


def end(session: Session, session_id: str) -> None:
    """Sign out: the session no longer signs anyone in, whoever holds its id."""
    session.execute(
        update(ConsoleSession)
        .where(ConsoleSession.id == session_id, ConsoleSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


def end_all_of_key(session: Session, key_id: str) -> None:
    """End every session of a key (it was revoked)."""
    session.execute(
        update(ConsoleSession)
        .where(ConsoleSession.key_id == key_id, ConsoleSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
