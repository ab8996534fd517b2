"""How long anything waits for the database: short for requests (a stopped, frozen or locked database answers 503
in seconds), longer for background work, which retries on its own.

A request's work runs in the thread pool, in a copy of the request's context: the middleware below marks that
context with the request's bound, and the engine (services/kernel/database.py, services/kernel/pgconnection.py)
reads it at each wait — for a pooled connection's check, the SQLite write lock, one answer from PostgreSQL.
Background threads never see the mark and get the background bound.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.types import ASGIApp, Receive, Scope, Send

if TYPE_CHECKING:
    from services.kernel.settings import KernelSettings

_bound: ContextVar[float | None] = ContextVar("smartgate_database_wait_bound", default=None)


@dataclass(frozen=True, slots=True)
class DatabaseTimeouts:
    """The bounds of one engine (from the SMARTGATE_DB_* settings)."""

    request_seconds: float = 3.0  # one wait of a request: an answer from PostgreSQL, SQLite's write lock
    background_seconds: float = 30.0  # the same for background work (relay, workers) and the CLI
    pool_seconds: float = 2.0  # waiting for a free pooled connection
    connect_seconds: int = 2  # PostgreSQL connect_timeout (libpq counts whole seconds, at least 2)
    statement_seconds: float = 10.0  # PostgreSQL statement_timeout, enforced by the server (0: none)
    lock_seconds: float = 2.0  # PostgreSQL lock_timeout, enforced by the server (0: none)

    @classmethod
    def from_settings(cls, settings: KernelSettings) -> DatabaseTimeouts:
        """The bounds configured for a served process."""
        return cls(
            request_seconds=settings.db_timeout_seconds,
            background_seconds=settings.db_background_timeout_seconds,
            pool_seconds=settings.db_pool_timeout_seconds,
            connect_seconds=settings.db_connect_timeout_seconds,
            statement_seconds=settings.db_statement_timeout_seconds,
            lock_seconds=settings.db_lock_timeout_seconds,
        )


def wait_bound(background: float | None) -> float | None:
    """How long the current work may wait for the database at one step: the request's bound inside a request,
    else `background` (None: no bound)."""
    bound = _bound.get()
    return background if bound is None else bound


@contextmanager
def waiting_at_most(seconds: float) -> Iterator[None]:
    """Bound every database wait of the current context to `seconds` (never longer than a bound already set)."""
    current = _bound.get()
    token = _bound.set(seconds if current is None else min(seconds, current))
    try:
        yield
    finally:
        _bound.reset(token)


class DatabaseWaitMiddleware:
    """Marks each HTTP request's context with the request bound (`SMARTGATE_DB_TIMEOUT_SECONDS`)."""

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = _bound.set(self.seconds)
        try:
            await self.app(scope, receive, send)
        finally:
            _bound.reset(token)
