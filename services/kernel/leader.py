"""Background work that exactly one process of a deployment runs (checkpoints, expiry passes).

`smartgate serve --workers N` starts N processes on one PostgreSQL database. Each serves requests and relays the
outbox (the relay claims events with SKIP LOCKED), but the ledger checkpointer and the expiry scheduler must run
once: N checkpointers would each anchor every checkpoint (N chain transactions; on the development chain, N
different chains). Whichever process holds the database's leader lock (a session-level PostgreSQL advisory lock on
a connection kept for the purpose) runs them; the others try again every few seconds and take over when the leader
exits, since the lock dies with its connection. A single process (the embedded default) simply runs them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sqlalchemy import Connection, Engine, text

from services.kernel.dbfaults import summary
from services.kernel.periodic import PeriodicWorker

logger = logging.getLogger("smartgate.leader")

# pg_try_advisory_lock takes a 64-bit key: this one is "smartgate" in ASCII, shortened to fit.
LEADER_LOCK_KEY = 0x736D61727467617465 & 0x7FFF_FFFF_FFFF_FFFF

Work = tuple[Callable[[], None], Callable[[], None]]  # (start, stop)


class Leadership:
    """Start `work` in this process while it holds the leader lock (or always, when it is the only process)."""

    def __init__(
        self,
        engine: Engine,
        work: list[Work],
        *,
        shared: bool,
        retry_seconds: float = 2.0,
        name: str = "",
        key: int = LEADER_LOCK_KEY,
    ) -> None:
        """`shared`: other processes serve the same database (`serve --workers N`, PostgreSQL only). `key`: the
        advisory lock, one per set of services (a process running other services elects its own leader)."""
        if shared and engine.dialect.name != "postgresql":
            raise ValueError("several processes on one database need PostgreSQL")
        self.engine = engine
        self.key = key & 0x7FFF_FFFF_FFFF_FFFF
        self.work = work
        self.shared = shared
        self.retry_seconds = retry_seconds
        self.name = name or "process"
        self._conn: Connection | None = None
        self._leading = False
        self._state = threading.Lock()
        # Shared: an attempt at once, then one every `retry_seconds` (the holder checks it still holds the lock).
        self.worker = PeriodicWorker(
            "leader-election",
            self.try_lead,
            interval=retry_seconds,
            run_first=True,
            logger=logger,
            what="leader election attempt",
        )

    @property
    def leading(self) -> bool:
        """Whether this process runs the work now."""
        return self._leading

    def start(self) -> None:
        """Run the work now (one process), or compete for the lock in a background thread."""
        if not self.shared:
            self._begin()
            return
        self.worker.start()

    def stop(self) -> None:
        """Stop the work if this process runs it, and give the lock up."""
        self.worker.stop(timeout=30)
        self._end()

    def try_lead(self) -> bool:
        """One attempt: take the lock if it is free (start the work), or check this process still holds it."""
        if self._leading:
            if self._still_held():
                return True
            logger.warning("leader lock lost (database connection gone); stopping background work")
            self._end()
            return False
        try:
            conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        except Exception as exc:  # noqa: BLE001 - database down: try again later
            logger.warning("cannot reach the database for the leader lock", extra={"error": summary(exc)})
            return False
        try:
            got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": self.key}).scalar())
        except Exception as exc:  # noqa: BLE001
            logger.warning("leader lock attempt failed", extra={"error": summary(exc)})
            conn.close()
            return False
        if not got:
            conn.close()
            return False
        self._conn = conn
        if not self._begin():
            self._end()
            return False
        logger.info("this process now runs the background work", extra={"worker": self.name})
        return True

    def _still_held(self) -> bool:
        try:
            assert self._conn is not None
            held = self._conn.execute(
                text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
                    " AND granted AND objid = :low"
                ),
                {"low": self.key & 0xFFFF_FFFF},
            ).scalar()
            return bool(held)
        except Exception:  # noqa: BLE001 - any failure: the session, and so the lock, may be gone
            return False

    def _begin(self) -> bool:
        """Start every work item; if one fails, stop those started and report False (the lock is then given up,
        so that another process can try)."""
        with self._state:
            if self._leading:
                return True
            if self.shared and self.worker.stopping:
                return False  # stop() was called while this attempt took the lock
            started: list[Callable[[], None]] = []
            try:
                for start, stop in self.work:
                    start()
                    started.append(stop)
            except Exception:
                logger.exception("background work failed to start")
                for stop in reversed(started):
                    self._safely(stop)
                if not self.shared:
                    raise
                return False
            self._leading = True
            return True

    @staticmethod
    def _safely(stop: Callable[[], None]) -> None:
        try:
            stop()
        except Exception:
            logger.exception("stopping background work failed")

    def _end(self) -> None:
        with self._state:
            if self._leading:
                for _start, stop in reversed(self.work):
                    self._safely(stop)
                self._leading = False
            conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self.key})
                conn.close()
            except Exception:  # noqa: BLE001 - never hand a connection that may still hold the lock to the pool
                conn.invalidate()
