"""The JetStream bus against a real NATS server: relay → stream → durable consumers, at least once, deduped."""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Iterator
from urllib.parse import urlparse

import pytest

from services.kernel.bus import OutboxRelay, idempotent
from services.kernel.database import make_sessionmaker, unit_of_work
from services.kernel.outbox import Event, record_event
from services.kernel.runtime import Runtime
from tests.support import wait_for

NATS_URL = os.environ.get("SMARTGATE_TEST_NATS_URL", "nats://127.0.0.1:4222")


def _reachable(url: str) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 4222), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture
def jetstream(runtime: Runtime) -> Iterator[object]:
    """A bus on a stream and subject prefix of this test only, deleted afterwards."""
    if not _reachable(NATS_URL):
        if os.environ.get("CI") == "true":
            pytest.fail(f"NATS JetStream is required in CI and is not reachable at {NATS_URL}")
        pytest.skip(f"NATS not reachable at {NATS_URL} (start nats-server -js)")
    from services.kernel.nats_bus import JetStreamBus

    tag = uuid.uuid4().hex[:10]
    bus = JetStreamBus(NATS_URL, stream=f"SGTEST_{tag}", prefix=f"sgtest{tag}")
    yield bus
    bus.close()
    import asyncio

    import nats

    async def drop() -> None:
        nc = await nats.connect(NATS_URL)
        await nc.jetstream().delete_stream(f"SGTEST_{tag}")
        await nc.close()

    asyncio.run(drop())


def test_events_flow_from_outbox_through_jetstream_exactly_once_in_effect(runtime: Runtime, jetstream) -> None:
    sessions = runtime.sessions
    seen: list[str] = []
    failed_once: set[str] = set()
    lock = threading.Lock()

    def handle(session, event: Event) -> None:  # type: ignore[no-untyped-def]
        with lock:
            if event.payload.get("flaky") and event.id not in failed_once:
                failed_once.add(event.id)
                raise RuntimeError("transient failure: JetStream must redeliver")
            seen.append(event.id)

    jetstream.subscribe("declaration.*", idempotent(sessions, "nats-test", handle), name="nats-test")
    with unit_of_work(sessions) as session:
        ids = [
            record_event(session, type="declaration.created", subject="d-1", payload={"n": 1}),
            record_event(session, type="declaration.submitted", subject="d-1", payload={"n": 2, "flaky": True}),
            record_event(session, type="gate.read", subject="gate", payload={"n": 3}),  # not subscribed
        ]
    relay = OutboxRelay(sessions, jetstream, read_factory=make_sessionmaker(runtime.engine))
    assert relay.drain() == 3
    assert wait_for(lambda: sorted(seen) == sorted(ids[:2])), seen
    assert failed_once == {ids[1]}
    # A re-publish (a relay crash between publish and marking) is absorbed: by JetStream's dedupe window or by
    # the consumer's dedupe; either way the effect happens once.
    with unit_of_work(runtime.read_sessions) as session:
        from services.kernel.outbox import OutboxEvent, as_event

        again = as_event(session.query(OutboxEvent).filter_by(id=ids[0]).one())
    jetstream.publish(again)
    with unit_of_work(sessions) as session:
        marker = record_event(session, type="declaration.amended", subject="d-1", payload={"n": 4})
    relay.drain()
    assert wait_for(lambda: marker in seen)
    assert seen.count(ids[0]) == 1
    assert len(seen) == 3
