"""Telling a database outage (stopped, frozen, locked, timed out) from a bug, and logging it briefly.

An outage is answered 503 with Retry-After (services/kernel/errors.py) and logged as one warning line; background
passes log it once when it starts and once when it ends, then simply retry. A bug (a constraint, a missing table)
stays a 500 with its traceback.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

from sqlalchemy import exc as sa_exc

UNAVAILABLE = "database.unavailable"
COMMIT_UNKNOWN = "database.commit_unknown"

# SQLite reports an outage and a bug with the same class (OperationalError): these are the outages.
_SQLITE_OUTAGES = (
    "database is locked",
    "database table is locked",
    "unable to open database",
    "disk i/o error",
    "database or disk is full",
)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The error, the driver error it wraps, and what caused them (a few links at most)."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo and len(seen) < 8:
        item = todo.pop(0)
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        yield item
        orig = getattr(item, "orig", None)
        todo.extend([orig if isinstance(orig, BaseException) else None, item.__cause__, item.__context__])


def _is_driver_outage(error: BaseException) -> bool:
    names = {cls.__name__ for cls in type(error).__mro__}
    if "OperationalError" not in names:
        return False
    module = type(error).__module__.split(".")[0]
    if module == "psycopg":
        # PostgreSQL's operational errors: connection lost or refused, no answer, statement or lock timeout,
        # shutting down, too many connections, serialization failure: all pass; a retry is the answer.
        return True
    if module == "sqlite3":
        message = str(error).lower()
        return any(marker in message for marker in _SQLITE_OUTAGES)
    return False


def outage_code(exc: BaseException) -> str | None:
    """`database.commit_unknown` if the connection was lost after COMMIT was sent, `database.unavailable` for any
    other outage, None if `exc` is not one."""
    found = None
    for error in _chain(exc):
        if getattr(error, "commit_outcome_unknown", False):
            return COMMIT_UNKNOWN
        if isinstance(error, sa_exc.TimeoutError | sa_exc.DisconnectionError):
            found = UNAVAILABLE  # no pooled connection in time; a connection found dead
        elif isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
            found = UNAVAILABLE
        elif _is_driver_outage(error):
            found = UNAVAILABLE
    return found


def summary(exc: BaseException) -> str:
    """One line saying what went wrong (the driver's error if there is one), for logs and problem details."""
    error = next((e for e in _chain(exc) if not isinstance(e, sa_exc.SQLAlchemyError)), exc)
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else ''}"[:300]


class FailureLog:
    """How a background loop logs its failed passes: an outage as one warning when it starts (again every
    `repeat_seconds` while it lasts) and an info line when the database answers again; anything else with its
    traceback, every time."""

    def __init__(
        self, logger: logging.Logger, what: str, *, repeat_seconds: float = 60.0, extra: dict[str, Any] | None = None
    ) -> None:
        """`extra`: fields added to every line (e.g. the worker's name)."""
        self.logger = logger
        self.what = what
        self.repeat_seconds = repeat_seconds
        self.extra = dict(extra or {})
        self._down_since: float | None = None
        self._logged_at = 0.0

    def failed(self, exc: BaseException) -> None:
        """Log a failed pass."""
        if outage_code(exc) is None:
            self.logger.error(f"{self.what} failed", exc_info=exc, extra=self.extra)
            return
        now = time.monotonic()
        if self._down_since is None or now - self._logged_at >= self.repeat_seconds:
            self.logger.warning(
                f"{self.what}: database unavailable; will retry",
                extra={**self.extra, "error": summary(exc), "down_seconds": round(now - (self._down_since or now), 1)},
            )
            self._logged_at = now
        if self._down_since is None:
            self._down_since = now

    def succeeded(self) -> None:
        """Note a pass that went through (logs the end of an outage)."""
        if self._down_since is not None:
            self.logger.info(
                f"{self.what}: database available again",
                extra={**self.extra, "down_seconds": round(time.monotonic() - self._down_since, 1)},
            )
            self._down_since = None
