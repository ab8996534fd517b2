"""The periodic worker every background loop runs on: start, stop and restart are right, whatever the order.

No assertion depends on timing: each test waits on events the worker's ticks set, with a generous bound (HANG_S)
that only keeps a broken worker from hanging the suite. Intervals are an hour where a test needs "not before a
wake or a stop", so that a tick a slow machine would make early cannot happen at all.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from services.kernel.periodic import PeriodicWorker

HANG_S = 30.0
HOUR = 3600.0


class Ticks:
    """A tick function that counts its calls and lets a test wait for the n-th."""

    def __init__(self) -> None:
        self.count = 0
        self.threads: list[str] = []
        self._cond = threading.Condition()

    def __call__(self) -> None:
        with self._cond:
            self.count += 1
            self.threads.append(threading.current_thread().name)
            self._cond.notify_all()

    def wait_for(self, n: int) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self.count >= n, HANG_S)


@pytest.fixture
def workers() -> Iterator[list[PeriodicWorker]]:
    """Workers made by a test, stopped afterwards whatever happened."""
    made: list[PeriodicWorker] = []
    yield made
    for worker in made:
        worker.stop(timeout=HANG_S)


def make(workers: list[PeriodicWorker], tick: Callable[[], object], **options: Any) -> PeriodicWorker:
    options.setdefault("interval", HOUR)
    worker = PeriodicWorker("test-worker", tick, **options)
    workers.append(worker)
    return worker


def test_ticks_repeat_in_a_named_daemon_thread(workers: list[PeriodicWorker]) -> None:
    ticks = Ticks()
    worker = make(workers, ticks, interval=0.01)
    assert not worker.running
    worker.start()
    assert worker.running
    assert ticks.wait_for(3)
    assert set(ticks.threads) == {"test-worker"}
    assert worker.thread is not None
    assert worker.thread.daemon
    assert worker.stop(timeout=HANG_S)
    assert not worker.running


def test_the_first_tick_waits_one_interval_unless_run_first(workers: list[PeriodicWorker]) -> None:
    later, first = Ticks(), Ticks()
    make(workers, later).start()
    make(workers, first, run_first=True).start()
    assert first.wait_for(1)  # at once, though the interval is an hour
    assert later.count == 0  # an hour has not passed
    workers[0].wake()
    assert later.wait_for(1)


def test_start_twice_runs_one_loop(workers: list[PeriodicWorker]) -> None:
    ticks = Ticks()
    worker = make(workers, ticks)
    worker.start()
    thread = worker.thread
    worker.start()
    assert worker.thread is thread
    assert [t for t in threading.enumerate() if t.name == "test-worker"] == [thread]


def test_stop_before_start_and_stop_twice_are_harmless(workers: list[PeriodicWorker]) -> None:
    ticks = Ticks()
    worker = make(workers, ticks)
    assert worker.stop() is True  # nothing to stop
    assert not worker.stopping
    worker.start()
    thread = worker.thread
    assert worker.stop(timeout=HANG_S)
    assert worker.stop(timeout=HANG_S)
    assert thread is not None
    assert not thread.is_alive()
    assert ticks.count == 0


def test_restart_after_stop_runs_again(workers: list[PeriodicWorker]) -> None:
    ticks = Ticks()
    worker = make(workers, ticks)
    for n in range(1, 4):
        worker.start()
        assert worker.running
        worker.wake()
        assert ticks.wait_for(n)
        assert worker.stop(timeout=HANG_S)
        assert not worker.running
    assert ticks.count == 3


def test_stop_interrupts_a_long_wait_at_once(workers: list[PeriodicWorker]) -> None:
    """The interval is an hour: stop() returning True at all (within HANG_S) means the wait was cut short."""
    ticks = Ticks()
    worker = make(workers, ticks)
    worker.start()
    assert worker.stop(timeout=HANG_S)
    assert ticks.count == 0


def test_stop_interrupts_the_settle_wait_too(workers: list[PeriodicWorker]) -> None:
    ticks = Ticks()
    worker = make(workers, ticks, settle=HOUR)
    worker.start()
    worker.wake()  # now the loop settles for an hour before its tick
    assert worker.stop(timeout=HANG_S)
    assert ticks.count == 0


def test_wake_before_start_counts_for_the_first_wait(workers: list[PeriodicWorker]) -> None:
    ticks = Ticks()
    worker = make(workers, ticks)
    worker.wake()
    worker.start()
    assert ticks.wait_for(1)


class Blocking:
    """A tick that blocks until released, telling when it has started."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.finished = threading.Event()
        self.stopping_seen: list[bool] = []
        self.worker: PeriodicWorker | None = None

    def __call__(self) -> None:
        self.started.set()
        assert self.release.wait(HANG_S)
        assert self.worker is not None
        self.stopping_seen.append(self.worker.stopping)
        self.finished.set()


def test_stop_waits_for_the_tick_in_progress(workers: list[PeriodicWorker]) -> None:
    tick = Blocking()
    worker = tick.worker = make(workers, tick, run_first=True)
    worker.start()
    assert tick.started.wait(HANG_S)
    stopped = threading.Event()
    results: list[bool] = []

    def stop() -> None:
        results.append(worker.stop(timeout=HANG_S))
        stopped.set()

    threading.Thread(target=stop, daemon=True).start()
    assert not stopped.wait(0.2)  # a bound for "not yet", not for speed: the tick holds it however long it takes
    tick.release.set()
    assert stopped.wait(HANG_S)
    assert tick.finished.is_set()  # the tick was not interrupted ...
    assert results == [True]  # ... and stop() returned after it
    assert tick.stopping_seen == [True]  # the tick could see it was asked to stop


def test_stop_gives_up_after_its_timeout_and_a_restart_runs_beside_the_old_tick(
    workers: list[PeriodicWorker],
) -> None:
    tick = Blocking()
    worker = tick.worker = make(workers, tick, run_first=True)
    worker.start()
    assert tick.started.wait(HANG_S)
    old = worker.thread
    assert worker.stop(timeout=0.01) is False  # the tick holds on
    assert not worker.running
    restarted = Ticks()
    worker._tick = restarted  # the new run's ticks (the old one still runs Blocking)
    worker.start()
    new = worker.thread
    assert new is not None
    assert new is not old
    assert restarted.wait_for(1)  # the new run ticks at once, though the old tick has not finished
    assert worker.running
    tick.release.set()
    assert old is not None
    old.join(HANG_S)
    assert not old.is_alive()  # the old loop ended on its own stop signal ...
    assert tick.stopping_seen == [True]  # ... which it saw, not the new run's
    assert worker.running  # and the new run goes on
    assert worker.stop(timeout=HANG_S)


def test_a_tick_that_raises_is_logged_and_the_loop_goes_on(
    workers: list[PeriodicWorker], caplog: pytest.LogCaptureFixture
) -> None:
    calls = Ticks()

    def tick() -> None:
        calls()
        if calls.count <= 2:
            raise RuntimeError(f"boom {calls.count}")

    worker = make(workers, tick, interval=0.01, retry=0.01, backoff_max=0.02, logger=logging.getLogger("t.periodic"))
    with caplog.at_level(logging.ERROR, logger="t.periodic"):
        worker.start()
        assert calls.wait_for(4)
    failed = [r for r in caplog.records if r.name == "t.periodic"]
    assert [r.getMessage() for r in failed] == ["test-worker pass failed"] * 2
    assert all(r.worker == "test-worker" and r.exc_info for r in failed)  # type: ignore[attr-defined]
    assert worker.running


def test_failures_back_off_doubling_up_to_the_cap() -> None:
    """The waits the loop chooses after consecutive failures (read from the loop itself, not timed)."""
    waits: list[float] = []
    done = threading.Event()

    class Recording(PeriodicWorker):
        def _jittered(self, wait: float) -> float:
            waits.append(wait)
            if len(waits) >= 6:
                done.set()
            return 0.0

    count = 0

    def tick() -> None:
        nonlocal count
        count += 1
        if count <= 4:
            raise RuntimeError("down")

    worker = Recording("backoff", tick, interval=1.0, retry=0.5, backoff_max=3.0, logger=logging.getLogger("t.b"))
    worker.start()
    try:
        assert done.wait(HANG_S)
    finally:
        worker.stop(timeout=HANG_S)
    # first wait (the interval), four failures (0.5, 1, 2, then capped at 3), a success: the interval again
    assert waits[:6] == [1.0, 0.5, 1.0, 2.0, 3.0, 1.0]


def test_jitter_stays_within_its_bounds() -> None:
    worker = PeriodicWorker("j", lambda: None, interval=10.0, jitter=0.2)
    samples = [worker._jittered(10.0) for _ in range(1000)]
    assert all(8.0 <= s <= 12.0 for s in samples)
    assert len(set(samples)) > 1


def test_bad_options_are_refused() -> None:
    with pytest.raises(ValueError, match="interval"):
        PeriodicWorker("x", lambda: None, interval=-1)
    with pytest.raises(ValueError, match="jitter"):
        PeriodicWorker("x", lambda: None, interval=1, jitter=1.0)


def test_start_and_exit_steps_run_in_the_thread_and_their_errors_end_nothing(
    workers: list[PeriodicWorker], caplog: pytest.LogCaptureFixture
) -> None:
    where: list[str] = []
    exited = threading.Event()

    def on_start() -> None:
        where.append(threading.current_thread().name)
        raise RuntimeError("chain not reachable")

    def on_exit() -> None:
        where.append(threading.current_thread().name)
        exited.set()

    ticks = Ticks()
    worker = make(workers, ticks, run_first=True, on_start=on_start, on_exit=on_exit)
    with caplog.at_level(logging.ERROR, logger="smartgate.periodic"):
        worker.start()
        assert ticks.wait_for(1)  # the failed start step did not end the loop
    assert worker.stop(timeout=HANG_S)
    assert exited.is_set()
    assert where == ["test-worker", "test-worker"]
    assert any("start step failed" in r.getMessage() for r in caplog.records)


def test_stop_from_inside_a_tick_only_signals(workers: list[PeriodicWorker]) -> None:
    results: list[bool] = []
    ended = threading.Event()
    worker: PeriodicWorker

    def tick() -> None:
        results.append(worker.stop(timeout=HANG_S))  # must not join its own thread

    worker = make(workers, tick, run_first=True, on_exit=ended.set)
    worker.start()
    assert ended.wait(HANG_S)
    assert results == [False]
    assert not worker.running


def test_concurrent_starts_run_one_loop(workers: list[PeriodicWorker]) -> None:
    ticks = Ticks()
    worker = make(workers, ticks)
    go = threading.Barrier(8)

    def start() -> None:
        go.wait(HANG_S)
        worker.start()

    starters = [threading.Thread(target=start) for _ in range(8)]
    for t in starters:
        t.start()
    for t in starters:
        t.join(HANG_S)
    assert len([t for t in threading.enumerate() if t.name == "test-worker"]) == 1
