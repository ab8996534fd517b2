"""Several relays on one database (`serve --workers N`, the distributed deployment): each event is claimed by one
relay, delivered once, and per subject in outbox order."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, func, select

from services.kernel.bus import InProcessBus, OutboxRelay
from services.kernel.database import make_engine, make_sessionmaker, unit_of_work
from services.kernel.outbox import Event, OutboxEvent, claim_events, event_row, record_events
from services.kernel.runtime import Runtime

pytestmark = pytest.mark.usefixtures("raw_events")  # transport and consumer tolerance, not payloads

# A hang guard for the relay threads, never what decides a result.
HANG_GUARD_S = 120


def needs_shared_database(runtime: Runtime) -> None:
    """Skip on SQLite: it is served by one process with one relay (`serve` refuses --workers > 1 there), and its
    relay reads without claiming so that delivery never holds the single writer's lock."""
    if runtime.engine.dialect.name != "postgresql":
        pytest.skip("several relays share a database only on PostgreSQL")


@pytest.fixture
def second_engine(runtime: Runtime) -> Iterator[Engine]:
    """Another engine on the test database: what a second worker process has."""
    engine = make_engine(runtime.engine.url.render_as_string(hide_password=False))
    yield engine
    engine.dispose()


def emit(runtime: Runtime, subjects: list[str]) -> list[str]:
    """Commit one event per subject, in order; returns their ids."""
    rows = [event_row(type="t.happened", subject=s, payload={"n": i}) for i, s in enumerate(subjects)]
    with unit_of_work(runtime.sessions) as session:
        return record_events(session, rows)


def pending(runtime: Runtime) -> int:
    with unit_of_work(runtime.read_sessions) as session:
        stmt = select(func.count()).select_from(OutboxEvent).where(OutboxEvent.published_at.is_(None))
        return int(session.scalar(stmt) or 0)


def test_a_consumer_writes_to_the_database_while_the_relay_delivers_to_it(runtime: Runtime) -> None:
    """SQLite: the relay delivers outside any write transaction (the single writer is free for the consumer).
    PostgreSQL: the relay's open claim is a lock on its outbox rows, which a consumer writing events never waits on."""
    ids = emit(runtime, ["a", "b", "a", "c"])
    seen: list[str] = []

    def write_while_delivering(event: Event) -> None:
        with unit_of_work(runtime.sessions) as session:
            record_events(session, [event_row(type="u.followed", subject=event.subject, payload={})])
        seen.append(event.id)

    bus = InProcessBus()
    bus.subscribe("t.*", write_while_delivering, name="writer")
    relay = OutboxRelay(runtime.sessions, bus, read_factory=runtime.read_sessions)
    assert relay.run_once() == 4
    assert seen == ids
    assert pending(runtime) == 4  # the consumer's own events, committed during delivery
    assert relay.drain() == 4


def test_a_claim_holds_rows_from_other_relays_and_holds_back_later_events_of_their_subjects(
    runtime: Runtime, second_engine: Engine
) -> None:
    needs_shared_database(runtime)
    ids = emit(runtime, ["x", "y", "x", "z", "y"])
    other = make_sessionmaker(second_engine)
    with unit_of_work(runtime.sessions) as first:
        assert [e.id for e in claim_events(first, limit=2)] == ids[:2]
        with unit_of_work(other) as second:
            # ids[2] (x) and ids[4] (y) wait for the first claim's earlier events of their subjects; z is free.
            assert [e.id for e in claim_events(second, limit=10)] == [ids[3]]
        with unit_of_work(other) as second:
            second.rollback()  # a relay that ended without marking: its claim is gone with its transaction
            assert [e.id for e in claim_events(second, limit=10)] == [ids[3]]
    with unit_of_work(other) as second:
        assert [e.id for e in claim_events(second, limit=10)] == ids  # the first claim ended unmarked too


def test_two_relays_deliver_every_event_once_and_each_subject_in_order(runtime: Runtime, second_engine: Engine) -> None:
    needs_shared_database(runtime)
    # Three events per declaration-like subject, and one busy subject threaded through all of them.
    subjects = ["gate" if i % 25 == 0 else f"d-{i // 3}" for i in range(600)]
    ids = emit(runtime, subjects)
    order = {event_id: n for n, event_id in enumerate(ids)}
    lock = threading.Lock()
    in_flight: set[str] = set()
    overlaps: list[str] = []
    delivered: list[tuple[str, Event]] = []

    def counting(relay_name: str):  # type: ignore[no-untyped-def]
        def handle(event: Event) -> None:
            with lock:
                if event.id in in_flight:
                    overlaps.append(event.id)
                in_flight.add(event.id)
            time.sleep(0.001)  # widen the window in which the other relay could take the same row
            with lock:
                in_flight.discard(event.id)
                delivered.append((relay_name, event))

        return handle

    relays = []
    for name, engine in (("first", runtime.engine), ("second", second_engine)):
        bus = InProcessBus()
        bus.subscribe("*", counting(name), name="counter")
        relays.append(OutboxRelay(make_sessionmaker(engine), bus))
    errors: list[BaseException] = []

    def run(relay: OutboxRelay) -> None:
        deadline = time.monotonic() + HANG_GUARD_S
        try:
            while time.monotonic() < deadline and pending(runtime):
                relay.run_once(limit=40)
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(relay,)) for relay in relays]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(HANG_GUARD_S + 10)
    assert not errors, errors
    assert overlaps == []
    got = [event.id for _name, event in delivered]
    assert sorted(got) == sorted(ids)  # each event exactly once, nothing left out
    assert pending(runtime) == 0
    assert {name for name, _event in delivered} == {"first", "second"}  # both relays took part
    by_subject: dict[str, list[int]] = {}
    for _name, event in delivered:
        by_subject.setdefault(event.subject, []).append(order[event.id])
    for subject, positions in by_subject.items():
        assert positions == sorted(positions), subject
