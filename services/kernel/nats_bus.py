"""The distributed event bus: NATS JetStream behind the same interface as the in-process bus.

The outbox relay publishes each event to `<prefix>.<event type>` with `Nats-Msg-Id` = event id, so JetStream
drops a re-published duplicate inside its dedupe window; every subscriber is a durable pull consumer that acks
only after its handler committed, so delivery is at-least-once and handlers stay idempotent (dedupe by event id).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
import time
from typing import Any

from services.kernel.bus import Handler
from services.kernel.dbfaults import FailureLog, outage_code
from services.kernel.outbox import Event
from services.kernel.periodic import PeriodicWorker

logger = logging.getLogger("smartgate.bus.nats")


def nats_subject(prefix: str, pattern: str) -> str:
    """Our glob over event types ('declaration.*', '*') as a NATS subject filter."""
    if pattern == "*":
        return f"{prefix}.>"
    return f"{prefix}.{pattern}"


class JetStreamBus:
    """Publishes to and consumes from a JetStream stream. The NATS client's asyncio loop runs in a thread of its own;
    each subscription is a worker thread (`PeriodicWorker`) that fetches a batch through that loop, hands it to the
    handler (handlers are blocking: they write to the database) and acks it."""

    def __init__(
        self,
        url: str,
        *,
        stream: str = "SMARTGATE",
        prefix: str = "smartgate",
        ack_wait_seconds: float = 30.0,
        timeout_seconds: float = 5.0,
        fetch_batch: int = 200,
    ) -> None:
        """`fetch_batch`: how many messages a consumer takes at once; a handler with `handle_batch` commits them in
        one transaction, within `ack_wait_seconds`."""
        self.url = url
        self.stream = stream
        self.prefix = prefix
        self.ack_wait = ack_wait_seconds
        self.timeout = timeout_seconds
        self.fetch_batch = fetch_batch
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="nats-bus", daemon=True)
        self._thread.start()
        self._consumers: list[_Consumer] = []
        self._closed = False
        self._nc: Any = None
        self._js: Any = None
        self._call(self._connect())

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=self.timeout + 5)

    async def _connect(self) -> None:
        import nats

        self._nc = await nats.connect(self.url, connect_timeout=self.timeout, max_reconnect_attempts=-1)
        self._js = self._nc.jetstream(timeout=self.timeout)
        subjects = [f"{self.prefix}.>"]
        try:
            info = await self._js.stream_info(self.stream)
            if subjects[0] not in (info.config.subjects or []):
                raise RuntimeError(f"stream {self.stream} exists with other subjects: {info.config.subjects}")
        except Exception as exc:
            from nats.js.errors import NotFoundError

            if not isinstance(exc, NotFoundError):
                raise
            await self._js.add_stream(name=self.stream, subjects=subjects)

    def publish(self, event: Event) -> None:
        """Store the event in the stream (raises if JetStream does not acknowledge it, so the relay retries)."""
        self._call(self._publish(event))

    def publish_batch(self, events: list[Event]) -> int:
        """Store events in the stream with all their publishes in flight at once (one wait for the batch instead
        of a round trip per event); returns how many leading events JetStream acknowledged.

        They go out on one connection in order, so the stream keeps the outbox order. If one is not acknowledged,
        the relay publishes it and those after it again; any of them already stored is dropped by JetStream's
        dedupe window (same `Nats-Msg-Id`), but the failed one then lands after them.
        """
        return int(self._call(self._publish_all(events)))

    async def _publish(self, event: Event) -> None:
        payload = json.dumps(event.to_json(), separators=(",", ":")).encode()
        await self._js.publish(
            f"{self.prefix}.{event.type}", payload, stream=self.stream, headers={"Nats-Msg-Id": event.id}
        )

    async def _publish_all(self, events: list[Event]) -> int:
        # The first alone: the client's first request sets up its reply subscription, an await during which the
        # requests started after it would be written first.
        results: list[BaseException | None] = [None]
        try:
            await self._publish(events[0])
        except Exception as exc:  # noqa: BLE001 - reported below like any other
            results[0] = exc
        else:
            results += await asyncio.gather(*(self._publish(e) for e in events[1:]), return_exceptions=True)
        for n, result in enumerate(results):
            if isinstance(result, BaseException):
                logger.warning("publish failed; will retry", extra={"event_id": events[n].id, "error": repr(result)})
                return n
        return len(events)

    def subscribe(self, pattern: str, handler: Handler, *, name: str) -> None:
        """Consume events matching `pattern` with a durable consumer called `name`, until close()."""
        consumer = _Consumer(self, pattern, re.sub(r"[^A-Za-z0-9_-]", "_", name), handler)
        self._consumers.append(consumer)
        try:
            consumer.subscribe()  # consuming has begun when this returns
        except Exception:
            logger.warning("subscription failed; will retry", extra={"consumer": consumer.durable}, exc_info=True)
        consumer.worker.start()

    def close(self) -> None:
        """Stop consuming and disconnect (a second call does nothing)."""
        if self._closed:
            return
        self._closed = True
        for consumer in self._consumers:
            consumer.worker.request_stop()  # all at once: each ends within a fetch's wait
        for consumer in self._consumers:
            consumer.worker.stop(timeout=5)
        if self._nc is not None:
            try:
                self._call(self._nc.close())
            except Exception:  # noqa: BLE001 - best effort on the way out
                logger.warning("NATS close failed")
        self._call(self._cancel_pending())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()

    async def _cancel_pending(self) -> None:
        current = asyncio.current_task()
        pending = [t for t in asyncio.all_tasks() if t is not current]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


class _Consumer:
    """One durable pull consumer: each tick of its worker fetches a batch and handles it."""

    FETCH_WAIT = 0.5  # seconds a fetch waits for messages: also how soon a stop is seen

    def __init__(self, bus: JetStreamBus, pattern: str, durable: str, handler: Handler) -> None:
        self.bus = bus
        self.pattern = pattern
        self.durable = durable
        self.handler = handler
        self._sub: Any = None
        self._failures = FailureLog(logger, f"consumer {durable}")
        # No wait between fetches (a fetch waits for messages itself); after a failed fetch (NATS down), 0.5 s
        # doubling to 2 s, the client's own reconnect wait.
        self.worker = PeriodicWorker(
            f"nats-{durable}",
            self.fetch_and_handle,
            interval=0,
            retry=0.5,
            backoff_max=2.0,
            logger=logger,
            what=f"consumer {durable} fetch",
        )

    def fetch_and_handle(self) -> None:
        """One fetch: hand the messages to the handler, ack those it took, NAK those it failed."""
        from nats.errors import TimeoutError as NatsTimeout

        bus = self.bus
        self.subscribe()
        future = asyncio.run_coroutine_threadsafe(
            self._sub.fetch(batch=bus.fetch_batch, timeout=self.FETCH_WAIT), bus._loop
        )
        try:
            messages = future.result(timeout=bus.timeout + 5)
        except NatsTimeout:
            return
        except TimeoutError:
            future.cancel()  # the loop stalled: never leave a fetch running whose messages nobody would handle
            raise
        batch = getattr(self.handler, "handle_batch", None)
        if batch is not None and len(messages) > 1 and self._handle_batch(batch, messages):
            return
        for message in messages:
            try:
                self.handler(Event.from_json(json.loads(message.data)))
            except Exception as exc:
                if outage_code(exc):
                    self._failures.failed(exc)  # the database is down: one line per outage, not one per event
                else:
                    logger.exception("handler failed; event will be redelivered", extra={"consumer": self.durable})
                # A plain NAK (redelivered at once) after a short pause of this consumer: a NAK with a server-side
                # delay was sometimes not redelivered for many seconds on this server under load.
                bus._call(message.nak())
                time.sleep(0.2)
            else:
                self._failures.succeeded()
                bus._call(message.ack())

    def subscribe(self) -> None:
        """Create the durable pull subscription unless it exists."""
        if self._sub is None:
            self._sub = self.bus._call(self._subscribe())

    async def _subscribe(self) -> Any:
        from nats.js.api import ConsumerConfig

        bus = self.bus
        return await bus._js.pull_subscribe(
            nats_subject(bus.prefix, self.pattern),
            durable=self.durable,
            stream=bus.stream,
            config=ConsumerConfig(ack_wait=bus.ack_wait, max_deliver=-1),
        )

    def _handle_batch(self, batch: Any, messages: list[Any]) -> bool:
        """Hand the whole fetched batch to the handler's `handle_batch` (one transaction) and ack every message
        after it committed. False if anything failed: the caller then takes the messages one by one (the handler
        dedupes what a partial failure may have applied), so one bad event neither blocks nor loses the others."""
        try:
            batch([Event.from_json(json.loads(m.data)) for m in messages])
        except Exception:
            logger.warning("batch handler failed; handling one by one", extra={"consumer": self.durable}, exc_info=True)
            return False
        self.bus._call(_ack_all(messages))
        return True


async def _ack_all(messages: list[Any]) -> None:
    for message in messages:
        await message.ack()
