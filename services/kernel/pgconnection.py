"""PostgreSQL connections whose every wait for the server is bounded, and the connection options that go with them.

A frozen server (SIGSTOP, a hung host) still accepts connections and data in its kernel, so neither the server's
statement_timeout nor TCP keepalives end a wait for its answer: only the client can. Each wait here ends within
the current bound (services/kernel/dbtimeouts.py); the connection, then in the middle of an exchange, is closed,
and SQLAlchemy sees a lost connection (it discards it and checks the rest of the pool). A transaction whose
connection is closed before its COMMIT was sent never commits: the server, when it runs again, reads the
statements still queued, then the end of the connection, and rolls back. A COMMIT already sent may still be
applied: a lost answer to COMMIT raises CommitOutcomeUnknown, so that the caller can say so.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.abc import RV, PQGen

from services.kernel.dbtimeouts import DatabaseTimeouts, wait_bound

_WAIT_TIMEOUT: type[BaseException] = getattr(psycopg.errors, "_WaitTimeout", psycopg.OperationalError)


class NoAnswer(psycopg.OperationalError):
    """The server did not answer within the bound; the connection was closed."""


class CommitOutcomeUnknown(psycopg.OperationalError):
    """The connection was lost after COMMIT was sent: the transaction may or may not have been committed."""

    commit_outcome_unknown = True


class BoundedConnection(psycopg.Connection[Any]):
    """A psycopg connection that never waits for the server longer than the current bound."""

    background_seconds: float | None = None

    def wait(self, gen: PQGen[RV], interval: float = 0.1, timeout: float | None = None) -> RV:
        """psycopg's one place of waiting for the server, bounded."""
        bound = wait_bound(self.background_seconds)
        if bound is None or (timeout is not None and timeout <= bound):
            return super().wait(gen, interval, timeout)
        try:
            return super().wait(gen, interval, bound)
        except _WAIT_TIMEOUT:
            # Mid-exchange: the protocol state is lost, the connection can never be used again.
            self.close()
            raise NoAnswer(f"the database did not answer within {bound:g} s (connection closed)") from None

    def commit(self) -> None:
        """COMMIT; a lost connection meanwhile (no answer from the server) is reported as an unknown outcome."""
        try:
            super().commit()
        except psycopg.OperationalError as exc:
            if exc.sqlstate is not None:
                raise  # the server answered: the transaction did not commit
            raise CommitOutcomeUnknown(
                f"the connection was lost during COMMIT; the transaction may have been committed ({exc})"
            ) from exc


def connect_options(timeouts: DatabaseTimeouts, given: dict[str, Any]) -> dict[str, Any]:
    """libpq parameters for `timeouts`: connect timeout, keepalives, and the server-side statement and lock
    timeouts (added to any `options` of the URL)."""
    server = []
    if timeouts.statement_seconds > 0:
        server.append(f"-c statement_timeout={int(timeouts.statement_seconds * 1000)}")
    if timeouts.lock_seconds > 0:
        server.append(f"-c lock_timeout={int(timeouts.lock_seconds * 1000)}")
    options: dict[str, Any] = {
        "connect_timeout": max(2, int(timeouts.connect_seconds)),
        # A server host that vanished (no ACKs at all) is noticed after 10 s instead of TCP's ~15 minutes, and an
        # idle pooled connection to it is probed.
        "keepalives": 1,
        "keepalives_idle": 10,
        "keepalives_interval": 3,
        "keepalives_count": 3,
        "tcp_user_timeout": 10_000,
    }
    if server:
        options["options"] = " ".join(filter(None, [str(given.get("options") or ""), *server]))
    return options


def connect(timeouts: DatabaseTimeouts, cargs: Any, cparams: dict[str, Any]) -> BoundedConnection:
    """Open a bounded connection with the parameters SQLAlchemy made from the URL."""
    options = connect_options(timeouts, cparams)
    merged = options.pop("options", None)
    params = {**options, **cparams}  # what the URL says wins, except that the server options are added to
    if merged:
        params["options"] = merged
    conn = BoundedConnection.connect(*cargs, **params)
    conn.background_seconds = timeouts.background_seconds
    return conn
