"""The JetStream bus against a real NATS server: relay → stream → durable consumers, at least once, deduped."""

from __future__ import annotations

import dataclasses
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from urllib.parse import urlparse

import pytest
from sqlalchemy import event as sa_event

from services.kernel.bus import OutboxRelay, idempotent
from services.kernel.database import make_sessionmaker, new_id, unit_of_work, utcnow
from services.kernel.outbox import Event, record_event
from services.kernel.runtime import Runtime
from tests.support import wait_for

pytestmark = pytest.mark.usefixtures("raw_events")  # transport and consumer tolerance, not payloads

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

    def committed(session) -> None:  # type: ignore[no-untyped-def]
        with lock:
            seen.extend(session.info.pop("seen_pending", []))

    def handle(session, event: Event) -> None:  # type: ignore[no-untyped-def]
        with lock:
            if event.payload.get("flaky") and event.id not in failed_once:
                failed_once.add(event.id)
                raise RuntimeError("transient failure: JetStream must redeliver")
        # Seen only once its transaction commits: an event handled in a batch that then rolls back (its neighbour
        # failed) is handled again, and must not count twice.
        pending = session.info.setdefault("seen_pending", [])
        if not pending:
            sa_event.listen(session, "after_commit", committed, once=True)
        pending.append(event.id)

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


def test_the_provenance_consumer_takes_fetched_batches_and_falls_back_one_by_one(runtime: Runtime, jetstream) -> None:
    """200 events already in the stream: the provenance handler gets them in batches (one transaction each), every
    event becomes exactly one ledger entry, and a batch that fails is taken apart without losing anything."""
    from ledger import storage
    from services.provenance.consumer import make_batch_handler, make_handler
    from services.provenance.service import Provenance
    from services.provenance.settings import provenance_settings

    sessions = runtime.sessions
    with unit_of_work(sessions) as session:
        ids = [
            record_event(session, type="declaration.submitted", subject=f"d-{i // 4}", payload={"n": i})
            for i in range(200)
        ]
    relay = OutboxRelay(sessions, jetstream, read_factory=runtime.read_sessions)
    assert relay.drain() == 200
    prov = Provenance(provenance_settings(runtime.settings), engine=runtime.engine, sessions=sessions)
    batches: list[int] = []
    singles: list[int] = []
    failed_batches: list[int] = []
    append_many = make_batch_handler(prov, batches.append)

    def flaky_many(session, events: list[Event]) -> None:  # type: ignore[no-untyped-def]
        if not failed_batches and any(e.id == ids[120] for e in events):
            failed_batches.append(len(events))
            raise RuntimeError("the batch's transaction failed: each event must be taken on its own")
        append_many(session, events)

    handler = idempotent(sessions, "provenance-nats-test", make_handler(prov, singles.append), handle_many=flaky_many)
    jetstream.fetch_batch = 50  # four fetches: the failing one among batches that go through
    jetstream.subscribe("*", handler, name="provenance-nats-test")

    def ledger_size() -> int:
        with runtime.engine.connect() as conn:
            return storage.log_size(conn)

    assert wait_for(lambda: ledger_size() >= 200), ledger_size()
    time.sleep(0.5)  # room for a wrongly repeated append to show
    assert ledger_size() == 200
    with runtime.engine.connect() as conn:
        in_ledger = [row.event_id for row in storage.iter_entries(conn)]
    assert sorted(in_ledger) == sorted(ids)  # each event exactly once
    assert max(batches) > 1
    assert failed_batches
    assert failed_batches[0] > 1
    assert len(singles) >= failed_batches[0]  # the failed batch's events went one by one
    assert sum(batches) + len(singles) == 200


def test_a_published_batch_keeps_outbox_order_and_reports_the_first_failure(runtime: Runtime, jetstream) -> None:
    """The relay's batch publish has every event in flight at once: the stream still holds them in order, and an
    event JetStream does not take (here one over the server's payload limit) ends the count the relay marks."""
    events = [
        Event(id=new_id(), type="declaration.created", subject=f"d-{i}", payload={"n": i}, occurred_at=utcnow(), seq=i)
        for i in range(1, 41)
    ]
    events[29] = dataclasses.replace(events[29], payload={"blob": "x" * 2_000_000})
    assert jetstream.publish_batch(events) == 29
    seen: list[int] = []
    jetstream.subscribe("declaration.*", lambda e: seen.append(e.seq), name="order")
    assert wait_for(lambda: len(seen) >= 39), seen
    assert seen == [*range(1, 30), *range(31, 41)]  # stream order = outbox order; the failed one is not in it
