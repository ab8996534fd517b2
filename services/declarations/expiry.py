"""Declarations whose goods never reached the gate expire: a periodic pass, run by one process of the deployment."""

from __future__ import annotations

import logging

from services.declarations import service as declarations_service
from services.kernel.database import unit_of_work, utcnow
from services.kernel.periodic import PeriodicWorker
from services.kernel.runtime import Runtime

logger = logging.getLogger("smartgate.declarations.expiry")


class ExpiryScheduler:
    """Expires declarations whose goods never reached the gate, periodically, in the background."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.worker = PeriodicWorker(
            "expiry", self.run_once, interval=runtime.settings.expiry_check_seconds, logger=logger, what="expiry pass"
        )

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
        """Run a pass every `expiry_check_seconds` (the first after one interval) until stop()."""
        self.worker.start()

    def stop(self) -> None:
        """Stop the loop (a pass in progress finishes)."""
        self.worker.stop(timeout=30)
