"""Declarations whose goods never reached the gate expire: a periodic pass, run by one process of the deployment."""

from __future__ import annotations

import logging
import threading

from services.declarations import service as declarations_service
from services.kernel.database import unit_of_work, utcnow
from services.kernel.dbfaults import FailureLog
from services.kernel.runtime import Runtime

logger = logging.getLogger("smartgate.declarations.expiry")


class ExpiryScheduler:
    """Expires declarations whose goods never reached the gate, periodically, in the background."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> list[str]:
        """One pass; returns the expired ids."""
        with unit_of_work(self.runtime.sessions) as session:
            expired = declarations_service.expire_stale(
                session, now=utcnow(), days=self.runtime.settings.declaration_expiry_days
            )
        if expired:
            self.runtime.relay.notify()
            logger.info("declarations expired", extra={"count": len(expired)})
        return expired

    def start(self) -> None:
        """Run every `expiry_check_seconds` until stop() (a new loop, with its own stop signal, each time)."""
        if self._thread is not None and self._thread.is_alive() and not self._stop.is_set():
            return  # running (a loop still ending after stop() is left to end; a new one starts)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, args=(self._stop,), name="expiry", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the loop (a pass in progress finishes)."""
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=30)
            if not self._thread.is_alive():
                self._thread = None

    def _loop(self, stop: threading.Event) -> None:
        failures = FailureLog(logger, "expiry pass")
        while not stop.wait(self.runtime.settings.expiry_check_seconds):
            try:
                self.run_once()
            except Exception as exc:  # noqa: BLE001 - logged (an outage briefly); the next pass retries
                failures.failed(exc)
            else:
                failures.succeeded()
