"""The event bus interface, its in-process implementation, the outbox relay and the idempotent-consumer helper."""

from __future__ import annotations

import fnmatch
import logging
import threading
from collections.abc import Callable
from typing import Protocol

from sqlalchemy import bindparam, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from services.kernel.database import table_of, unit_of_work, utcnow
from services.kernel.dbfaults import outage_code
from services.kernel.outbox import Event, ProcessedEvent, claim_events, mark_published, pending_events
from services.kernel.periodic import PeriodicWorker

logger = logging.getLogger("smartgate.bus")

Handler = Callable[[Event], None]


class EventBus(Protocol):
    """Where the relay publishes; the NATS JetStream bus implements the same two methods."""

    def publish(self, event: Event) -> None:
        """Deliver one event (raise to have it retried)."""

    def subscribe(self, pattern: str, handler: Handler, *, name: str) -> None:
        """Call `handler` for every event whose type matches the glob `pattern`."""


class InProcessBus:
    """Delivers events synchronously to subscribers in this process (the embedded default)."""

    def __init__(self) -> None:
        self._subscribers: list[tuple[str, str, Handler]] = []

    def subscribe(self, pattern: str, handler: Handler, *, name: str) -> None:
        """Register a handler for event types matching `pattern` (e.g. 'declaration.*' or '*')."""
        self._subscribers.append((pattern, name, handler))

    def publish(self, event: Event) -> None:
        """Call every matching handler; the first failure propagates so the relay retries the event."""
        for pattern, _name, handler in self._subscribers:
            if fnmatch.fnmatchcase(event.type, pattern):
                handler(event)

    def publish_batch(self, events: list[Event]) -> int:
        """Deliver events in order; returns how many leading events reached every subscriber.

        Handlers made by `idempotent()` take their matching events at once (one transaction per batch); an
        exception from one propagates, and the relay falls back to `publish` (they dedupe what they already
        have). Other handlers get one event at a time; at the first failure the count stops there.
        """
        plain: list[tuple[str, Handler]] = []
        for pattern, _name, handler in self._subscribers:
            batch = getattr(handler, "handle_batch", None)
            if batch is None:
                plain.append((pattern, handler))
                continue
            matching = [e for e in events if fnmatch.fnmatchcase(e.type, pattern)]
            if matching:
                batch(matching)
        for n, event in enumerate(events):
            for pattern, handler in plain:
                if fnmatch.fnmatchcase(event.type, pattern):
                    try:
                        handler(event)
                    except Exception as exc:
                        if outage_code(exc):
                            raise  # the database is down: the relay's pass ends, its next one retries
                        logger.exception("event delivery failed; will retry", extra={"event_id": event.id})
                        return n
        return len(events)


class OutboxRelay:
    """Moves committed outbox rows to the bus, in order, at least once."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        bus: EventBus,
        *,
        interval_seconds: float = 0.2,
        read_factory: sessionmaker[Session] | None = None,
        batch_delay_seconds: float = 0.0,
    ) -> None:
        self.factory = factory
        self.read_factory = read_factory or factory
        self.bus = bus
        self.interval = interval_seconds
        self.batch_delay = batch_delay_seconds
        bind = factory.kw.get("bind")
        # Several processes may relay one PostgreSQL database (`serve --workers N`, the distributed deployment).
        self._claims = bind is not None and bind.dialect.name == "postgresql"
        self._lock = threading.Lock()
        # Woken by notify(); a busy moment's commits gather for `batch_delay` (one batch, a transaction per
        # consumer, for many filings instead of one per filing, each taking SQLite's writer lock from the filings).
        self.worker = PeriodicWorker(
            "outbox-relay",
            self._pass,
            interval=interval_seconds,
            settle=batch_delay_seconds,
            logger=logger,
            what="outbox relay pass",
            on_exit=self._final_drain,
        )

    BATCH = 500

    def run_once(self, *, limit: int = BATCH) -> int:
        """Publish pending events in order, stopping at the first failure. Returns how many were published.

        SQLite (one process, one writer): the events are read, delivered outside any write transaction (consumers
        write to the database themselves) and then marked. PostgreSQL (possibly several processes, each with a
        relay): the events are claimed with `FOR UPDATE SKIP LOCKED` in a transaction that stays open while they
        are delivered and commits their marks, so no two relays deliver the same event and a crashed relay's
        claim ends with its connection. Either way a crash between delivery and marking only means redelivery,
        which consumers dedupe.
        """
        with self._lock:
            if self._claims:
                with unit_of_work(self.factory) as session:
                    done = self._deliver(claim_events(session, limit=limit))
                    mark_published(session, done)
                return len(done)
            with unit_of_work(self.read_factory) as session:
                events = pending_events(session, limit=limit, lock=False)
            done = self._deliver(events)
            if done:
                with unit_of_work(self.factory) as session:
                    mark_published(session, done)
            return len(done)

    def _deliver(self, events: list[Event]) -> list[int]:
        """Publish `events` in order (in one batch where the bus can); the seqs of those delivered before the
        first failure."""
        batch = getattr(self.bus, "publish_batch", None)
        if batch is not None and len(events) > 1:
            try:
                return [e.seq for e in events[: batch(events)]]
            except Exception as exc:
                if outage_code(exc):
                    raise  # no event is at fault: the next pass retries them all (consumers dedupe)
                # Find the event that fails, delivering those before it (consumers dedupe the repeats).
                logger.warning("batch delivery failed; delivering one by one", exc_info=True)
        done: list[int] = []
        for event in events:
            try:
                self.bus.publish(event)
            except Exception as exc:
                if outage_code(exc):
                    raise
                logger.exception("event delivery failed; will retry", extra={"event_id": event.id})
                break
            done.append(event.seq)
        return done

    def drain(self) -> int:
        """Publish until nothing is pending (tests and shutdown)."""
        total = 0
        while (n := self.run_once()) > 0:
            total += n
        return total

    def notify(self) -> None:
        """Wake the relay now rather than at the next tick (called after a commit that wrote events)."""
        self.worker.wake()

    def start(self) -> None:
        """Run in a background thread until stop()."""
        self.worker.start()

    def stop(self) -> None:
        """Stop the background thread after publishing what is pending."""
        self.worker.stop(timeout=10)

    def _pass(self) -> None:
        # A short batch means nothing else was pending; events committed since then woke us again.
        while self.run_once() >= self.BATCH and not self.worker.stopping:
            pass

    def _final_drain(self) -> None:
        try:
            self.drain()
        except Exception:
            logger.exception("outbox relay final drain failed")


def idempotent(
    factory: sessionmaker[Session],
    consumer: str,
    handle: Callable[[Session, Event], None],
    *,
    handle_many: Callable[[Session, list[Event]], None] | None = None,
) -> Handler:
    """Wrap `handle(session, event)` so each event changes state at most once for `consumer`.

    The dedupe row and the handler's writes commit together, so a crash between them cannot
    lose an effect or apply it twice. The returned handler also has `handle_batch(events)`: one transaction
    for a batch (with `handle_many(session, events)` if given, else `handle` per event), which is how the
    in-process relay delivers; a batch that meets a concurrent delivery falls back to one event at a time.
    """

    def handler(event: Event) -> None:
        try:
            with unit_of_work(factory) as session:
                if session.get(ProcessedEvent, (consumer, event.id)) is not None:
                    return
                session.add(ProcessedEvent(consumer=consumer, event_id=event.id))
                session.flush()
                handle(session, event)
        except IntegrityError:
            # Either a concurrent delivery of the same event won the race (its effect stands),
            # or the handler itself broke a constraint, which must surface.
            with unit_of_work(factory) as session:
                if session.get(ProcessedEvent, (consumer, event.id)) is None:
                    raise
            logger.info("duplicate delivery ignored", extra={"consumer": consumer, "event_id": event.id})

    def handle_batch(events: list[Event]) -> None:
        try:
            with unit_of_work(factory) as session:
                conn = session.connection()
                seen = set(conn.execute(_PROCESSED, {"consumer": consumer, "ids": [e.id for e in events]}).scalars())
                fresh: list[Event] = []
                for event in events:
                    if event.id not in seen:
                        seen.add(event.id)
                        fresh.append(event)
                if not fresh:
                    return
                now = utcnow()
                conn.execute(
                    _MARK_PROCESSED, [{"consumer": consumer, "event_id": e.id, "processed_at": now} for e in fresh]
                )
                if handle_many is not None:
                    handle_many(session, fresh)
                else:
                    for event in fresh:
                        handle(session, event)
        except IntegrityError:
            for event in events:
                handler(event)

    handler.handle_batch = handle_batch  # type: ignore[attr-defined]
    return handler


_PROCESSED_TABLE = table_of(ProcessedEvent)
_PROCESSED = select(_PROCESSED_TABLE.c.event_id).where(
    _PROCESSED_TABLE.c.consumer == bindparam("consumer"),
    _PROCESSED_TABLE.c.event_id.in_(bindparam("ids", expanding=True)),
)
_MARK_PROCESSED = insert(_PROCESSED_TABLE)
