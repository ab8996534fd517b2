"""Outbox, relay and idempotent consumers: events leave only with their transaction, at least once, in order,
and a consumer applies each event once however often it arrives."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from typing import Any

import pytest
import rfc8785
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.kernel import bus as bus_module
from services.kernel.auth import Organisation
from services.kernel.bus import InProcessBus, OutboxRelay, idempotent
from services.kernel.database import new_id, unit_of_work
from services.kernel.outbox import Event, OutboxEvent, ProcessedEvent, as_event, canonical_sha256, record_event
from services.kernel.runtime import Runtime

pytestmark = pytest.mark.usefixtures("raw_events")  # transport and consumer tolerance, not payloads

# A hang guard for the background-thread tests, never what decides a result.
HANG_GUARD_S = 10


def emit(runtime: Runtime, *types: str, subject: str = "s-1") -> list[str]:
    """Commit one event per type; returns their ids."""
    with unit_of_work(runtime.sessions) as session:
        return [record_event(session, type=t, subject=subject, payload={"n": i}) for i, t in enumerate(types)]


def relay_of(runtime: Runtime, bus: InProcessBus, interval: float = 3600) -> OutboxRelay:
    return OutboxRelay(runtime.sessions, bus, interval_seconds=interval)


def count(runtime: Runtime, model: Any, *where: Any) -> int:
    with unit_of_work(runtime.read_sessions) as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def test_events_leave_only_with_their_transaction(runtime: Runtime) -> None:

    def record_then_fail() -> None:
        with unit_of_work(runtime.sessions) as session:
            record_event(session, type="t.rolled_back", subject="x", payload={})
            raise RuntimeError("the change failed")

    with pytest.raises(RuntimeError):
        record_then_fail()
    emit(runtime, "t.committed")
    seen: list[Event] = []
    bus = InProcessBus()
    bus.subscribe("*", seen.append, name="spy")
    assert relay_of(runtime, bus).drain() == 1
    assert [e.type for e in seen] == ["t.committed"]


def test_relay_publishes_in_order_once_and_marks_published(runtime: Runtime) -> None:
    ids = emit(runtime, "a.one", "a.two", "a.three")
    seen: list[Event] = []
    bus = InProcessBus()
    bus.subscribe("a.*", seen.append, name="spy")
    relay = relay_of(runtime, bus)
    assert relay.run_once() == 3
    assert relay.run_once() == 0
    assert [e.id for e in seen] == ids
    assert [e.seq for e in seen] == sorted(e.seq for e in seen)
    assert count(runtime, OutboxEvent, OutboxEvent.published_at.is_(None)) == 0


def test_subscriptions_match_by_glob(runtime: Runtime) -> None:
    emit(runtime, "declaration.created", "inspection.read")
    decl: list[str] = []
    every: list[str] = []
    bus = InProcessBus()
    bus.subscribe("declaration.*", lambda e: decl.append(e.type), name="decl")
    bus.subscribe("*", lambda e: every.append(e.type), name="all")
    relay_of(runtime, bus).drain()
    assert decl == ["declaration.created"]
    assert every == ["declaration.created", "inspection.read"]


def test_a_failed_delivery_stops_the_batch_and_is_retried_in_order(runtime: Runtime) -> None:
    ids = emit(runtime, "b.one", "b.two", "b.three")
    seen: list[str] = []
    failures = {ids[1]: 1}

    def flaky(event: Event) -> None:
        if failures.get(event.id, 0) > 0:
            failures[event.id] -= 1
            raise ConnectionError("broker away")
        seen.append(event.id)

    bus = InProcessBus()
    bus.subscribe("*", flaky, name="flaky")
    relay = relay_of(runtime, bus)
    assert relay.run_once() == 1
    assert seen == ids[:1]
    assert relay.run_once() == 2
    assert seen == ids


def test_delivery_is_at_least_once_when_marking_fails(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    """A crash after publishing but before recording it: the events go out again (and consumers must dedupe)."""
    ids = emit(runtime, "c.one", "c.two")
    seen: list[str] = []
    bus = InProcessBus()
    bus.subscribe("*", lambda e: seen.append(e.id), name="spy")
    relay = relay_of(runtime, bus)
    real = bus_module.mark_published
    calls = {"n": 0}

    def crash_once(session: Session, seqs: list[int]) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("process died before marking")
        real(session, seqs)

    monkeypatch.setattr(bus_module, "mark_published", crash_once)
    with pytest.raises(RuntimeError):
        relay.run_once()
    assert relay.drain() == 2
    assert seen == ids + ids


def test_background_relay_delivers_after_notify_and_drains_on_stop(runtime: Runtime) -> None:
    delivered = threading.Event()
    seen: list[str] = []

    def spy(event: Event) -> None:
        seen.append(event.type)
        if event.type == "d.first":
            delivered.set()

    bus = InProcessBus()
    bus.subscribe("*", spy, name="spy")
    relay = relay_of(runtime, bus, interval=3600)  # only notify() or stop() wake it
    relay.start()
    try:
        emit(runtime, "d.first")
        relay.notify()
        assert delivered.wait(HANG_GUARD_S)
        emit(runtime, "d.second")  # no notify: stop() must still publish it
    finally:
        relay.stop()
    assert seen == ["d.first", "d.second"]


def test_a_relay_stopped_and_started_again_still_delivers(runtime: Runtime) -> None:
    """A process that loses and regains its work (or a test app started twice) restarts the relay: the second run
    must publish too (its stop signal used to stay set, so the new thread ended at once)."""
    delivered: list[str] = []
    second = threading.Event()

    def spy(event: Event) -> None:
        delivered.append(event.type)
        if event.type == "d.second":
            second.set()

    bus = InProcessBus()
    bus.subscribe("*", spy, name="spy")
    relay = relay_of(runtime, bus)
    relay.start()
    relay.stop()
    relay.start()
    try:
        assert relay.worker.running
        emit(runtime, "d.second")
        relay.notify()
        assert second.wait(HANG_GUARD_S)
    finally:
        relay.stop()
    assert not relay.worker.running
    assert delivered == ["d.second"]


def test_event_wire_form_round_trips(runtime: Runtime) -> None:
    emit(runtime, "e.one")
    with unit_of_work(runtime.read_sessions) as session:
        event = as_event(session.scalars(select(OutboxEvent)).one())
    again = Event.from_json(event.to_json())
    assert again == event
    assert again.occurred_at.tzinfo is not None


def test_canonical_sha256_is_rfc8785() -> None:
    import hashlib

    assert (
        canonical_sha256({"b": 1, "a": "é", "c": [True, None]})
        == hashlib.sha256('{"a":"é","b":1,"c":[true,null]}'.encode()).hexdigest()
    )
    assert canonical_sha256({"a": 1, "b": 2}) == canonical_sha256({"b": 2, "a": 1})


json_leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(codec="utf-8"))
)
json_documents = st.recursive(
    json_leaves,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(st.characters(codec="utf-8"), max_size=6), inner, max_size=4)
    ),
    max_leaves=20,
)


@given(json_documents)
def test_canonical_sha256_agrees_with_the_reference_implementation(document: Any) -> None:
    import hashlib

    assert canonical_sha256(document) == hashlib.sha256(rfc8785.dumps(document)).hexdigest()


# --- idempotent consumers ------------------------------------------------------------------------------------


def effect(session: Session, event: Event) -> None:
    """A consumer's visible effect: one new row each time it handles an event."""
    session.add(Organisation(name=f"effect:{event.id}:{new_id()}"))


def effects(runtime: Runtime, event_id: str = "") -> int:
    return count(runtime, Organisation, Organisation.name.startswith(f"effect:{event_id}"))


def an_event(event_id: str = "11111111-1111-1111-1111-111111111111") -> Event:
    return Event(id=event_id, type="x.happened", subject="s", payload={}, occurred_at=dt.datetime.now(dt.UTC))


def test_the_same_event_twice_has_one_effect(runtime: Runtime) -> None:
    handler = idempotent(runtime.sessions, "ledger", effect)
    event = an_event()
    handler(event)
    handler(event)
    assert effects(runtime) == 1
    assert count(runtime, ProcessedEvent, ProcessedEvent.event_id == event.id) == 1


def test_each_consumer_applies_an_event_once(runtime: Runtime) -> None:
    event = an_event()
    for consumer in ("ledger", "webhooks", "ledger", "webhooks"):
        idempotent(runtime.sessions, consumer, effect)(event)
    assert effects(runtime) == 2


def test_a_failed_handler_leaves_no_mark_so_redelivery_applies_it(runtime: Runtime) -> None:
    attempts = {"n": 0}

    def fails_first(session: Session, event: Event) -> None:
        attempts["n"] += 1
        effect(session, event)
        if attempts["n"] == 1:
            raise ConnectionError("downstream away")

    handler = idempotent(runtime.sessions, "ledger", fails_first)
    event = an_event()
    with pytest.raises(ConnectionError):
        handler(event)
    assert effects(runtime) == 0
    handler(event)
    handler(event)
    assert effects(runtime) == 1
    assert attempts["n"] == 2


def test_a_handler_breaking_a_constraint_is_not_mistaken_for_a_duplicate(runtime: Runtime) -> None:
    with unit_of_work(runtime.sessions) as session:
        session.add(Organisation(name="Taken"))

    def clashes(session: Session, event: Event) -> None:
        session.add(Organisation(name="Taken"))
        session.flush()

    with pytest.raises(IntegrityError):
        idempotent(runtime.sessions, "orgs", clashes)(an_event())
    assert count(runtime, ProcessedEvent) == 0


def test_concurrent_deliveries_of_one_event_have_one_effect(runtime: Runtime) -> None:
    handler = idempotent(runtime.sessions, "ledger", effect)
    event = an_event()
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def deliver() -> None:
        barrier.wait()
        try:
            handler(event)
        except BaseException as exc:  # noqa: BLE001 - collected and asserted on below
            errors.append(exc)

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert effects(runtime) == 1


def _run_with_hang_guard(target: Callable[[], Any]) -> tuple[bool, list[Any]]:
    """Run `target` in a daemon thread; (finished, [result or exception])."""
    out: list[Any] = []

    def run() -> None:
        try:
            out.append(target())
        except BaseException as exc:  # noqa: BLE001 - reported to the caller
            out.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(HANG_GUARD_S)
    return not thread.is_alive(), out


def test_relay_to_an_idempotent_consumer_end_to_end(runtime: Runtime) -> None:
    """The embedded data flow: relay -> in-process bus -> a consumer that writes with the same database.

    Redelivery (the relay crashed before marking) must not double the effect.
    """
    ids = emit(runtime, "f.one", "f.two")
    bus = InProcessBus()
    bus.subscribe("f.*", idempotent(runtime.sessions, "ledger", effect), name="ledger")
    relay = relay_of(runtime, bus)
    finished, out = _run_with_hang_guard(relay.drain)
    assert finished, "relay deadlocked delivering to the consumer"
    assert out == [2]
    with unit_of_work(runtime.sessions) as session:
        session.execute(update(OutboxEvent).where(OutboxEvent.id.in_(ids)).values(published_at=None))
    finished, out = _run_with_hang_guard(relay.drain)
    assert finished
    assert out == [2]
    assert [effects(runtime, i) for i in ids] == [1, 1]


# --- batches (how the in-process relay delivers) ----------------------------------------------------------------


def test_a_batch_applies_each_new_event_once_in_one_transaction(runtime: Runtime) -> None:
    handler = idempotent(runtime.sessions, "ledger", effect)
    old, new = an_event("11111111-1111-1111-1111-111111111111"), an_event("22222222-2222-2222-2222-222222222222")
    handler(old)
    handler.handle_batch([old, new, new])  # type: ignore[attr-defined]
    assert (effects(runtime, old.id), effects(runtime, new.id)) == (1, 1)
    assert count(runtime, ProcessedEvent) == 2


def test_a_batch_handler_gets_only_the_new_events_in_order(runtime: Runtime) -> None:
    got: list[list[str]] = []
    handler = idempotent(
        runtime.sessions, "ledger", effect, handle_many=lambda session, events: got.append([e.id for e in events])
    )
    a, b, c = (an_event(f"{n}" * 8 + "-1111-1111-1111-111111111111") for n in (3, 4, 5))
    handler(b)
    handler.handle_batch([a, b, c])  # type: ignore[attr-defined]
    assert got == [[a.id, c.id]]


def test_a_failing_batch_falls_back_to_one_event_at_a_time(runtime: Runtime) -> None:
    """The relay hands an idempotent consumer the whole batch; when it fails, the events before the bad one
    still go out (once), the bad one and those after it stay pending."""
    ids = emit(runtime, "g.one", "g.two", "g.three")

    def breaks_on_two(session: Session, event: Event) -> None:
        if event.type == "g.two":
            raise ConnectionError("downstream away")
        effect(session, event)

    bus = InProcessBus()
    bus.subscribe("g.*", idempotent(runtime.sessions, "ledger", breaks_on_two), name="ledger")
    relay = relay_of(runtime, bus)
    assert relay.run_once() == 1
    assert [effects(runtime, i) for i in ids] == [1, 0, 0]
    assert count(runtime, OutboxEvent, OutboxEvent.published_at.is_(None)) == 2


def test_the_relay_delivers_a_batch_to_batch_and_plain_consumers_alike(runtime: Runtime) -> None:
    ids = emit(runtime, "h.one", "h.two", "h.three")
    plain: list[str] = []
    batches: list[list[str]] = []
    bus = InProcessBus()
    bus.subscribe("h.*", lambda e: plain.append(e.id), name="plain")
    bus.subscribe(
        "h.*",
        idempotent(runtime.sessions, "ledger", effect, handle_many=lambda s, evs: batches.append([e.id for e in evs])),
        name="batch",
    )
    assert relay_of(runtime, bus).run_once() == 3
    assert plain == ids
    assert batches == [ids]
