"""One process of several runs the singleton background work; another takes over when it goes."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.pool import NullPool

from services.kernel.database import make_engine
from services.kernel.leader import LEADER_LOCK_KEY, Leadership
from tests.support import wait_for


class Recorder:
    """Background work that counts how often it runs."""

    def __init__(self) -> None:
        self.running = 0
        self.starts = 0

    def work(self) -> list[tuple[Callable[[], None], Callable[[], None]]]:
        def start() -> None:
            self.running += 1
            self.starts += 1

        def stop() -> None:
            self.running -= 1

        return [(start, stop)]


@pytest.fixture
def engines(database_url: str) -> Iterator[list[Engine]]:
    """Two engines on the test database, as two server processes would have."""
    made = [make_engine(database_url), make_engine(database_url)]
    yield made
    for engine in made:
        engine.dispose()


def pg_only(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("several server processes need PostgreSQL (the embedded SQLite default is one process)")


def test_a_lone_process_runs_the_work_at_once(engines: list[Engine]) -> None:
    recorder = Recorder()
    leadership = Leadership(engines[0], recorder.work(), shared=False)
    leadership.start()
    assert leadership.leading
    assert recorder.running == 1
    leadership.stop()
    assert recorder.running == 0
    assert not leadership.leading


def test_sharing_a_sqlite_database_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        with pytest.raises(ValueError, match="PostgreSQL"):
            Leadership(engine, [], shared=True)
    finally:
        engine.dispose()


def test_exactly_one_of_several_processes_runs_the_work_and_another_takes_over(engines: list[Engine]) -> None:
    pg_only(engines[0])
    recorders = [Recorder(), Recorder()]
    leaders = [
        Leadership(engine, recorder.work(), shared=True, retry_seconds=0.05, name=f"p{i}")
        for i, (engine, recorder) in enumerate(zip(engines, recorders, strict=True))
    ]
    try:
        for leader in leaders:
            leader.start()
        assert wait_for(lambda: sum(r.running for r in recorders) == 1)
        time.sleep(0.3)  # several more rounds of attempts: still exactly one
        assert sum(r.running for r in recorders) == 1
        first = next(i for i, leader in enumerate(leaders) if leader.leading)
        other = 1 - first
        leaders[first].stop()  # the leading process exits
        assert recorders[first].running == 0
        assert wait_for(lambda: recorders[other].running == 1)
        assert leaders[other].leading
    finally:
        for leader in leaders:
            leader.stop()
    assert sum(r.running for r in recorders) == 0


def test_a_leader_whose_connection_dies_stops_and_another_takes_over(engines: list[Engine]) -> None:
    """The lock lives in the leader's database session: if the server ends it (restart, idle timeout), the
    process stops its work at its next check, and another (or itself, later) takes the lock again."""
    pg_only(engines[0])
    recorders = [Recorder(), Recorder()]
    first = Leadership(engines[0], recorders[0].work(), shared=True, retry_seconds=0.05, name="first")
    second = Leadership(engines[1], recorders[1].work(), shared=True, retry_seconds=0.05, name="second")
    outsider = create_engine(engines[0].url, poolclass=NullPool)
    try:
        first.start()
        assert wait_for(lambda: first.leading)
        second.start()
        with outsider.connect() as conn:
            # This test's database only: advisory locks are per database, and tests running beside this one (other
            # databases on the same server) take the same key.
            holder = conn.execute(
                text(
                    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objid = :low AND granted"
                    " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
                ),
                {"low": LEADER_LOCK_KEY & 0xFFFF_FFFF},
            ).scalar_one()
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": holder})
        total = lambda attr: getattr(recorders[0], attr) + getattr(recorders[1], attr)  # noqa: E731
        assert wait_for(lambda: total("starts") >= 2 and total("running") == 1)  # someone took over
        time.sleep(0.3)
        assert total("running") == 1
    finally:
        first.stop()
        second.stop()
        outsider.dispose()
    assert recorders[0].running == recorders[1].running == 0


def test_work_that_fails_to_start_is_rolled_back_and_the_lock_given_up(engines: list[Engine]) -> None:
    """A process whose background work cannot start must not sit on the lock: what it started is stopped, the
    lock is released, and another process leads."""
    recorder = Recorder()

    def broken() -> None:
        raise RuntimeError("chain unreachable")

    failing_work = [*recorder.work(), (broken, lambda: None)]
    lone = Leadership(engines[0], failing_work, shared=False)
    with pytest.raises(RuntimeError):
        lone.start()  # one process: the error surfaces at start-up
    assert recorder.running == 0
    assert not lone.leading

    pg_only(engines[0])
    healthy = Recorder()
    first = Leadership(engines[0], failing_work, shared=True, retry_seconds=0.05, name="broken")
    second = Leadership(engines[1], healthy.work(), shared=True, retry_seconds=0.05, name="healthy")
    try:
        first.start()
        time.sleep(0.3)  # it took the lock, failed, gave it up, and keeps trying
        assert not first.leading
        assert recorder.running == 0
        second.start()
        assert wait_for(lambda: second.leading and healthy.running == 1)
    finally:
        first.stop()
        second.stop()
    assert recorder.running == healthy.running == 0
