"""A fair worker pool: one queue per lane, served round-robin, with a cap on the workers one lane may hold."""

from __future__ import annotations

import itertools
import threading
from collections import OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any


@dataclass(eq=False, slots=True)
class Job:
    """One unit of work queued for a lane; `future` carries its result (or exception, or cancellation)."""

    lane: str
    fn: Callable[[], Any]
    future: Future[Any] = field(default_factory=Future)


class FairPool:
    """Runs jobs on `workers` threads, taking the next job from the lanes in turn (round-robin): a free worker
    takes the oldest job of the waiting lane served longest ago (a lane that was idle counts as never served).

    A lane never holds more than `per_lane` workers at once, so with `per_lane < workers` a truck on another lane
    always finds a worker within one job's time, however much one lane has queued. Jobs are handed to the threads
    only when one is free: nothing waits inside the executor, so a queued job can still be cancelled.
    """

    def __init__(self, *, workers: int, per_lane: int, name: str = "fair") -> None:
        """Configure the pool; threads start with the first job."""
        if workers < 1 or per_lane < 1:
            raise ValueError("workers and per_lane must be at least 1")
        self.workers = workers
        self.per_lane = min(per_lane, workers)
        self.name = name
        self._lock = threading.Lock()
        self._queues: OrderedDict[str, deque[Job]] = OrderedDict()
        self._running: dict[str, int] = {}
        self._busy = 0
        # When each lane last had a job started (a counter, not a clock); forgotten when the lane goes idle.
        self._served: dict[str, int] = {}
        self._ticks = itertools.count()
        self._executor: ThreadPoolExecutor | None = None

    # -- submitting and cancelling ---------------------------------------------------------------------------

    def submit(self, lane: str, fn: Callable[[], Any]) -> Job:
        """Queue `fn` for `lane`; it runs when a worker is free and it is this lane's turn."""
        job = Job(lane, fn)
        with self._lock:
            self._queues.setdefault(lane, deque()).append(job)
            self._dispatch()
        return job

    def cancel(self, job: Job) -> bool:
        """Take a job that has not started off its queue (True); a running or finished job is left alone."""
        with self._lock:
            queue = self._queues.get(job.lane)
            if queue is None or job not in queue:
                return False
            queue.remove(job)
            if not queue:
                del self._queues[job.lane]
                if not self._running.get(job.lane):
                    self._served.pop(job.lane, None)
        job.future.cancel()
        return True

    def pending(self, lane: str | None = None) -> int:
        """Jobs queued or running, for one lane or for all."""
        with self._lock:
            if lane is not None:
                return len(self._queues.get(lane, ())) + self._running.get(lane, 0)
            return sum(len(q) for q in self._queues.values()) + self._busy

    def running(self, lane: str) -> int:
        """Jobs of `lane` on a worker now."""
        with self._lock:
            return self._running.get(lane, 0)

    def shutdown(self) -> None:
        """Cancel the queued jobs and stop the threads (running jobs finish)."""
        with self._lock:
            jobs = [j for q in self._queues.values() for j in q]
            self._queues.clear()
            executor, self._executor = self._executor, None
        for job in jobs:
            job.future.cancel()
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)

    # -- scheduling ------------------------------------------------------------------------------------------

    def _dispatch(self) -> None:
        """Start queued jobs while a worker is free (called with the lock held)."""
        while self._busy < self.workers:
            job = self._next()
            if job is None:
                return
            if not job.future.set_running_or_notify_cancel():
                continue
            self._busy += 1
            self._running[job.lane] = self._running.get(job.lane, 0) + 1
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix=self.name)
            self._executor.submit(self._run, job)

    def _next(self) -> Job | None:
        """The oldest job of the lane in turn: under its worker cap, served longest ago (ties: waiting longest)."""
        ready = [lane for lane in self._queues if self._running.get(lane, 0) < self.per_lane]
        if not ready:
            return None
        lane = min(ready, key=lambda name: self._served.get(name, -1))
        queue = self._queues[lane]
        job = queue.popleft()
        if not queue:
            del self._queues[lane]
        self._served[lane] = next(self._ticks)
        return job

    def _run(self, job: Job) -> None:
        """Run one job on a worker thread, then let the next one in. The pool counts the job done before its
        waiter learns the outcome, so a waiter never sees its own finished job still counted as pending."""
        error: BaseException | None = None
        result: Any = None
        try:
            result = job.fn()
        except BaseException as exc:  # noqa: BLE001 - delivered to the waiter, which decides
            error = exc
        with self._lock:
            self._busy -= 1
            left = self._running.get(job.lane, 1) - 1
            if left:
                self._running[job.lane] = left
            else:
                self._running.pop(job.lane, None)
                if job.lane not in self._queues:
                    self._served.pop(job.lane, None)
            self._dispatch()
        if error is not None:
            job.future.set_exception(error)
        else:
            job.future.set_result(result)
