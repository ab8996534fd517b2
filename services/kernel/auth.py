"""API keys and roles: keys are random, shown once, stored as an HMAC; a trader key is bound to one organisation."""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ForeignKey, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from services.kernel.database import Base, UTCDateTime, new_id, utcnow
from services.kernel.errors import Forbidden, Unauthorized

KEY_PREFIX = "sg_"


class Role(enum.StrEnum):
    """What a key may do."""

    trader = "trader"
    officer = "officer"
    # A customs team leader: decides any declaration and (re)assigns them; an officer decides only its own.
    supervisor = "supervisor"
    # The bank / State Treasury side of e-payment: confirms or rejects the payments traders claim.
    treasury = "treasury"
    gate = "gate"
    engineer = "engineer"
    admin = "admin"
    # Traceability (services/traceability): a farm cooperative recording its production diary, a packing house, and
    # plant protection (phytosanitary inspection and certificates).
    producer = "producer"
    packhouse = "packhouse"
    inspector = "inspector"
    # The authority that issues ACFTA Form E certificates of origin on the exporting side (in Viet Nam the Ministry
    # of Industry and Trade's regional offices): issues them through /api/v1/exchange/origin-certificates.
    origin_issuer = "origin_issuer"


# Roles whose keys belong to an organisation (a trading firm, a cooperative, a packing house).
ORGANISATION_ROLES = frozenset({Role.trader, Role.producer, Role.packhouse})


class Organisation(Base):
    """A trading firm or broker that files declarations."""

    __tablename__ = "organisations"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    tax_id: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ApiKey(Base):
    """An API key; only its HMAC is stored."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    organisation_id: Mapped[str | None] = mapped_column(ForeignKey("organisations.id"))
    label: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the key id, its role and (for traders) the organisation."""

    key_id: str
    role: Role
    organisation_id: str | None
    label: str = ""
    # Set when the caller is the console acting for a signed-in officer (kernel/sessions.py).
    session_id: str | None = None

    @property
    def actor(self) -> str:
        """How this caller is named in history and events."""
        return f"{self.role.value}:{self.key_id}"

    def require(self, *roles: Role) -> Principal:
        """Raise 403 unless the caller has one of `roles`."""
        if self.role not in roles:
            allowed = ", ".join(r.value for r in roles)
            raise Forbidden(f"role '{self.role.value}' may not do this; requires one of: {allowed}")
        return self


def hash_key(secret_key: str, api_key: str) -> str:
    """HMAC-SHA256 of a key under the deployment secret: a stolen table alone can't be replayed."""
    return hmac.new(secret_key.encode(), api_key.encode(), hashlib.sha256).hexdigest()


def get_or_create_organisation(session: Session, *, name: str, tax_id: str | None = None) -> Organisation:
    """The organisation called `name`, created if it does not exist."""
    org = session.scalar(select(Organisation).where(Organisation.name == name))
    if org is None:
        org = Organisation(name=name, tax_id=tax_id)
        session.add(org)
        session.flush()
    return org


def create_key(
    session: Session,
    *,
    secret_key: str,
    role: Role,
    organisation: Organisation | None = None,
    label: str = "",
) -> tuple[ApiKey, str]:
    """Create a key and return it with its clear text (shown once, never stored)."""
    if role in ORGANISATION_ROLES and organisation is None:
        raise ValueError(f"a {role.value} key must belong to an organisation (--org)")
    if role not in ORGANISATION_ROLES and organisation is not None:
        raise ValueError("only trader, producer and packhouse keys belong to an organisation")
    key_id = secrets.token_hex(6)
    clear = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    row = ApiKey(
        id=key_id,
        key_hash=hash_key(secret_key, clear),
        role=role.value,
        organisation_id=organisation.id if organisation else None,
        label=label,
    )
    session.add(row)
    session.flush()
    return row, clear


# What services let go of when a key is revoked (an officer's queue of declarations), run in the revoking
# transaction: `listener(session, key, actor)`. Services register at import; the kernel imports none of them.
RevocationListener = Callable[[Session, "ApiKey", str], object]
_revocation_listeners: list[RevocationListener] = []


def on_revoke(listener: RevocationListener) -> RevocationListener:
    """Run `listener(session, key, actor)` in the transaction of every revocation through `revoke_key`."""
    if listener not in _revocation_listeners:
        _revocation_listeners.append(listener)
    return listener


def revoke_key(session: Session, *, key_id: str, actor: str = "admin:cli") -> bool:
    """Revoke a key by id; False if there is no such active key. `actor` is who revoked it, as history names
    callers (`role:key id`; the command line is `admin:cli`).

    Callers cached in this process are forgotten at once; other processes stop accepting the key within
    their cache's time to live (`SMARTGATE_AUTH_CACHE_SECONDS`). What the key held is released in the same
    transaction by the services' listeners (`on_revoke`).
    """
    row = session.get(ApiKey, key_id)
    if row is None or row.revoked_at is not None:
        return False
    row.revoked_at = utcnow()
    session.flush()
    # Its console sessions end too (sessions also check the key on every request: this records why and when).
    from services.kernel.sessions import end_all_of_key  # sessions.py builds on this module

    end_all_of_key(session, key_id)
    for listener in tuple(_revocation_listeners):
        listener(session, row, actor)
    PrincipalCache.forget_all()
    return True


class PrincipalCache:
    """Who is behind an Authorization header, remembered for `ttl` seconds (0 disables the cache).

    Authentication would otherwise be a database read, and a hop to the thread pool, on every request.
    Only successful look-ups are kept; a revocation in this process empties every cache of the process.
    """

    _generation = 0

    def __init__(self, ttl: float, *, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self.max_entries = max_entries
        self._entries: dict[str, tuple[float, int, Principal]] = {}
        self._lock = threading.Lock()
        # Look-ups in progress, by header (touched only on the event loop; see deps.get_principal).
        self.in_flight: dict[str, Any] = {}

    @classmethod
    def forget_all(cls) -> None:
        """Invalidate every cached caller in this process."""
        cls._generation += 1

    def get(self, authorization: str | None) -> Principal | None:
        """The cached caller for this header, if fresh."""
        if not authorization or self.ttl <= 0:
            return None
        hit = self._entries.get(authorization)
        if hit is None:
            return None
        at, generation, principal = hit
        if generation != PrincipalCache._generation or self.clock() - at > self.ttl:
            return None
        return principal

    def put(self, authorization: str | None, principal: Principal) -> None:
        """Remember a successful look-up."""
        if not authorization or self.ttl <= 0:
            return
        with self._lock:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[authorization] = (self.clock(), PrincipalCache._generation, principal)


def authenticate(session: Session, *, secret_key: str, authorization: str | None) -> Principal:
    """The principal behind an `Authorization: Bearer` header, or 401."""
    if not authorization:
        raise Unauthorized("missing Authorization header (expected 'Bearer <api key>')")
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token.startswith(KEY_PREFIX):
        raise Unauthorized("invalid Authorization header (expected 'Bearer <api key>')")
    row = session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(secret_key, token)))
    if row is None or row.revoked_at is not None:
        raise Unauthorized("unknown or revoked API key")
    return Principal(key_id=row.id, role=Role(row.role), organisation_id=row.organisation_id, label=row.label)
