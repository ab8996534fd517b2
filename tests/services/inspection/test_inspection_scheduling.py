"""The fair OCR pool: lanes served in turn, a worker cap per lane, queued jobs cancellable."""

from __future__ import annotations

import threading
from concurrent.futures import wait

from services.inspection.scheduling import FairPool


def test_lanes_are_served_in_turn_not_in_arrival_order():
    pool = FairPool(workers=1, per_lane=1)
    order: list[str] = []
    gate = threading.Event()

    def job(name: str, block: bool = False):  # type: ignore[no-untyped-def]
        def run() -> str:
            order.append(name)
            if block:
                assert gate.wait(30)
            return name

        return run

    try:
        jobs = [pool.submit("A", job("A1", block=True))]
        # While A1 holds the only worker, lane A queues two more images before B and C arrive.
        jobs += [pool.submit(lane, job(name)) for lane, name in
                 [("A", "A2"), ("A", "A3"), ("B", "B1"), ("C", "C1"), ("B", "B2")]]  # fmt: skip
        assert (pool.pending(), pool.pending("A")) == (6, 3)
        gate.set()
        done, _ = wait([j.future for j in jobs], timeout=30)
        assert len(done) == 6
        assert order == ["A1", "B1", "C1", "A2", "B2", "A3"]
        assert pool.pending() == 0
    finally:
        gate.set()
        pool.shutdown()


def test_one_lane_cannot_take_every_worker():
    pool = FairPool(workers=2, per_lane=1)
    release, first = threading.Event(), threading.Event()
    started: list[str] = []

    def slow(name: str):  # type: ignore[no-untyped-def]
        def run() -> None:
            started.append(name)
            first.set()
            assert release.wait(30)

        return run

    try:
        a = [pool.submit("A", slow(f"A{i}")) for i in range(6)]
        b = pool.submit("B", lambda: "B done")
        # B gets the second worker while A's first image is still running and its other five wait.
        assert b.future.result(timeout=30) == "B done"
        # B can finish before the other worker has even entered A0 (a loaded machine): wait for A0 to run.
        assert first.wait(30)
        assert started == ["A0"]
        assert (pool.running("A"), pool.pending("A")) == (1, 6)
        # A queued job can be taken off; a running one cannot.
        assert pool.cancel(a[5])
        assert a[5].future.cancelled()
        assert not pool.cancel(a[0])
        release.set()
        wait([j.future for j in a[:5]], timeout=30)
        assert started == ["A0", "A1", "A2", "A3", "A4"]
        assert pool.pending() == 0
    finally:
        release.set()
        pool.shutdown()


def test_a_failing_job_frees_its_worker():
    pool = FairPool(workers=1, per_lane=1)
    try:

        def boom() -> None:
            raise RuntimeError("reader crashed")

        bad = pool.submit("A", boom)
        good = pool.submit("A", lambda: 42)
        assert isinstance(bad.future.exception(timeout=30), RuntimeError)
        assert good.future.result(timeout=30) == 42
        assert pool.pending() == 0
    finally:
        pool.shutdown()
