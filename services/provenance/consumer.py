"""The bus consumer: every domain event, of every type, becomes exactly one ledger entry."""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy.orm import Session

from services.kernel.outbox import Event
from services.provenance import service
from services.provenance.service import Provenance

logger = logging.getLogger("smartgate.provenance.consumer")

CONSUMER = "provenance"


def make_handler(prov: Provenance, on_appended: Callable[[int], None]) -> Callable[[Session, Event], None]:
    """A `handle(session, event)` for `idempotent()`: the append commits with the consumer's dedupe row.

    Exactly once twice over: `idempotent()` skips an event id this consumer already processed, and the ledger
    itself answers a replayed event id with its existing index (its unique event id makes a second row impossible).
    """

    def handle(session: Session, event: Event) -> None:
        appended = service.append(session, event)
        if appended.duplicate:
            logger.info("event already in the ledger", extra={"event_id": event.id, "index": appended.index})
            return
        on_appended(1)

    return handle


def make_batch_handler(prov: Provenance, on_appended: Callable[[int], None]) -> Callable[[Session, list[Event]], None]:
    """The batch form of `make_handler` (for `idempotent(handle_many=...)`): one append for many events."""

    def handle_many(session: Session, events: list[Event]) -> None:
        appended = service.append_many(session, events)
        fresh = sum(1 for a in appended if not a.duplicate)
        if fresh < len(appended):
            logger.info("events already in the ledger", extra={"count": len(appended) - fresh})
        if fresh:
            on_appended(fresh)

    return handle_many
