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
from concurrent.futures import Future
from typing import Any

from services.kernel.bus import Handler
from services.kernel.dbfaults import FailureLog, outage_code
from services.kernel.outbox import Event

logger = logging.getLogger("smartgate.bus.nats")


def nats_subject(prefix: str, pattern: str) -> str:
    """Our glob over event types ('declaration.*', '*') as a NATS subject filter."""
    if pattern == "*":
        return f"{prefix}.>"
    return f"{prefix}.{pattern}"


class JetStreamBus:
    """Publishes to and consumes from a JetStream stream; its asyncio loop runs in a thread of its own."""

    def __init__(
        self,
        url: str,
        *,
        stream: str = "SMARTGATE",
        prefix: str = "smartgate",
        ack_wait_seconds: float = 30.0,
        timeout_seconds: float = 5.0,
    ) -> None:
        self.url = url
        self.stream = stream
        self.prefix = prefix
        self.ack_wait = ack_wait_seconds
        self.timeout = timeout_seconds
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="nats-bus", daemon=True)
        self._thread.start()
        self._subscriptions: list[tuple[str, str, Handler]] = []
        self._tasks: list[Future[None]] = []
        self._stop = threading.Event()
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
        payload = json.dumps(event.to_json(), separators=(",", ":")).encode()
        self._call(
            self._js.publish(
                f"{self.prefix}.{event.type}", payload, stream=self.stream, headers={"Nats-Msg-Id": event.id}
            )
        )

    def subscribe(self, pattern: str, handler: Handler, *, name: str) -> None:
        """Consume events matching `pattern` with a durable consumer called `name`, until close()."""
        durable = re.sub(r"[^A-Za-z0-9_-]", "_", name)
        self._subscriptions.append((pattern, durable, handler))
        self._tasks.append(asyncio.run_coroutine_threadsafe(self._consume(pattern, durable, handler), self._loop))

    async def _consume(self, pattern: str, durable: str, handler: Handler) -> None:
        from nats.errors import TimeoutError as NatsTimeout
        from nats.js.api import ConsumerConfig

        sub = await self._js.pull_subscribe(
            nats_subject(self.prefix, pattern),
            durable=durable,
            stream=self.stream,
            config=ConsumerConfig(ack_wait=self.ack_wait, max_deliver=-1),
        )
        loop = asyncio.get_running_loop()
        failures = FailureLog(logger, f"consumer {durable}")
        while not self._stop.is_set():
            try:
                messages = await sub.fetch(batch=50, timeout=0.5)
            except NatsTimeout:
                continue
            except Exception:
                if self._stop.is_set():
                    return
                logger.exception("fetch failed", extra={"consumer": durable})
                await asyncio.sleep(0.5)
                continue
            for message in messages:
                try:
                    event = Event.from_json(json.loads(message.data))
                    # Handlers are blocking (they write to the database): run them off the loop.
                    await loop.run_in_executor(None, handler, event)
                except Exception as exc:
                    if outage_code(exc):
                        failures.failed(exc)  # the database is down: one line per outage, not one per event
                    else:
                        logger.exception("handler failed; event will be redelivered", extra={"consumer": durable})
                    # A plain NAK (redelivered at once) after a short pause of this consumer: a NAK with a server-side
                    # delay was sometimes not redelivered for many seconds on this server under load.
                    await message.nak()
                    await asyncio.sleep(0.2)
                else:
                    failures.succeeded()
                    await message.ack()

    def close(self) -> None:
        """Stop consuming and disconnect."""
        self._stop.set()
        for task in self._tasks:
            try:
                task.result(timeout=5)
            except Exception:  # noqa: BLE001 - shutting down; a consumer error was already logged
                pass
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
