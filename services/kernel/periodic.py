"""Background work that repeats: one thread, one loop, a start and a stop that are right once for every user.

The outbox relay, the expiry passes, the webhook dispatcher, the ledger checkpointer, the leader election and the
NATS consumers are each "call this every so often, in a thread of its own, until stopped". `PeriodicWorker` is
that loop; its owner supplies what one pass (a *tick*) does. What it guarantees:

- `start()` is idempotent: a running worker is left alone.
- `stop(timeout)` wakes the sleeping loop at once and waits for it to end, at most `timeout` seconds (a tick in
  progress finishes first: ticks are never interrupted). Stopping twice, or before any start, does nothing more.
- Restart after stop works: each run has its own stop signal, so a loop still finishing an old tick (its stop
  timed out) ends on its own and never sees the new run's signal, while the new run starts at once.
- A tick that raises is logged (a database outage briefly, see `dbfaults.FailureLog`; anything else with its
  traceback) under the worker's name, and the loop goes on after a wait that doubles with each consecutive failure,
  from `retry` up to `backoff_max`.
- `wake()` cuts the current wait short (new work arrived); `jitter` spreads the waits of many processes.
- The thread is a daemon named after the worker, for thread dumps and `py-spy`.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from services.kernel.dbfaults import FailureLog

_logger = logging.getLogger("smartgate.periodic")


@dataclass(eq=False)
class _Run:
    """One start(): its thread and its own stop signal."""

    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None


class PeriodicWorker:
    """Calls `tick()` in a daemon thread named `name`, every `interval` seconds, from start() until stop()."""

    def __init__(
        self,
        name: str,
        tick: Callable[[], object],
        *,
        interval: float,
        run_first: bool = False,
        settle: float = 0.0,
        jitter: float = 0.0,
        retry: float | None = None,
        backoff_max: float | None = None,
        logger: logging.Logger | None = None,
        what: str | None = None,
        on_start: Callable[[], object] | None = None,
        on_exit: Callable[[], object] | None = None,
    ) -> None:
        """`interval`: the wait between ticks (also the first wait, unless `run_first`: tick as soon as started).
        `settle`: after the wait ends, let more work gather this long before the tick (a stop cuts it short).
        `jitter`: each wait is scaled by a random factor within 1 ± jitter. `retry`: the wait after a failed tick
        (default `interval`), doubled for each further consecutive failure, at most `backoff_max` (default the
        larger of `interval` and 5 s). `logger`, `what`: where and under which words failed ticks are logged
        (default: the `smartgate.periodic` logger, "<name> pass"). `on_start` runs in the thread before the first
        wait, `on_exit` after the last tick; their errors are logged and end nothing."""
        if interval < 0 or settle < 0 or not 0 <= jitter < 1:
            raise ValueError("interval and settle must be >= 0, jitter within [0, 1)")
        self.name = name
        self.interval = interval
        self.run_first = run_first
        self.settle = settle
        self.jitter = jitter
        self.retry = interval if retry is None else retry
        self.backoff_max = max(interval, 5.0) if backoff_max is None else backoff_max
        self.logger = logger or _logger
        self.what = what or f"{name} pass"
        self._tick = tick
        self._on_start = on_start
        self._on_exit = on_exit
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._run: _Run | None = None
        self._mine = threading.local()  # in the worker's own thread: the run it belongs to

    # ---- control

    def start(self) -> None:
        """Start the loop unless it runs (a loop still finishing after stop() is left to end; a new one starts)."""
        with self._lock:
            run = self._run
            if run is not None and not run.stop.is_set() and run.thread is not None and run.thread.is_alive():
                return
            run = _Run()
            run.thread = threading.Thread(target=self._loop, args=(run,), name=self.name, daemon=True)
            self._run = run
            run.thread.start()

    def request_stop(self) -> threading.Thread | None:
        """Signal the loop to end and wake it, without waiting (to stop several workers at once: signal each,
        then stop() each). Returns the thread to wait for, if any."""
        run = self._signal()
        return run.thread if run is not None else None

    def _signal(self) -> _Run | None:
        with self._lock:
            run = self._run
            if run is not None:
                run.stop.set()
                self._wake.set()
            return run

    def stop(self, timeout: float | None = 30.0) -> bool:
        """Signal the loop to end, wake it, and wait up to `timeout` seconds for the tick in progress to finish.

        Returns whether the thread has ended (True when nothing was running). Called from a tick, it only signals.
        """
        run = self._signal()
        thread = run.thread if run is not None else None
        if thread is None:
            return True
        if thread is threading.current_thread():
            return False
        thread.join(timeout)
        if thread.is_alive():
            message = f"{self.name}: still in a pass {timeout} s after stop; left to finish"
            self.logger.warning(message, extra={"worker": self.name})
            return False
        with self._lock:
            if self._run is run:
                self._run = None
        return True

    def wake(self) -> None:
        """Tick now rather than at the end of the current wait (a wake while stopped counts for the next start)."""
        self._wake.set()

    @property
    def running(self) -> bool:
        """Whether the loop runs and was not asked to stop."""
        run = self._run
        return run is not None and not run.stop.is_set() and run.thread is not None and run.thread.is_alive()

    @property
    def stopping(self) -> bool:
        """In a tick: whether this tick's run was asked to stop (a long tick checks it between steps). Elsewhere:
        whether a stop was asked and the loop has not ended yet."""
        run = getattr(self._mine, "run", None) or self._run
        return run is not None and run.stop.is_set()

    @property
    def thread(self) -> threading.Thread | None:
        """The current run's thread (diagnostics)."""
        run = self._run
        return run.thread if run is not None else None

    # ---- the loop

    def _loop(self, run: _Run) -> None:
        self._mine.run = run
        stop = run.stop
        if self._on_start is not None:
            self._guarded(self._on_start, "start")
        failures = FailureLog(self.logger, self.what, extra={"worker": self.name})
        failed = 0
        wait = 0.0 if self.run_first else self.interval
        while not stop.is_set():
            if wait > 0:
                self._wake.wait(self._jittered(wait))
            if self.settle and not stop.is_set():
                stop.wait(self.settle)
            self._wake.clear()
            if stop.is_set():
                break
            try:
                self._tick()
            except Exception as exc:  # noqa: BLE001 - logged; the loop goes on after a backoff
                failures.failed(exc)
                failed += 1
                wait = min(self.retry * 2 ** (failed - 1), max(self.backoff_max, self.retry))
            else:
                failures.succeeded()
                failed = 0
                wait = self.interval
        if self._on_exit is not None:
            self._guarded(self._on_exit, "exit")

    def _jittered(self, wait: float) -> float:
        if not self.jitter:
            return wait
        return wait * random.uniform(1 - self.jitter, 1 + self.jitter)

    def _guarded(self, step: Callable[[], object], when: str) -> None:
        try:
            step()
        except Exception:
            self.logger.exception(f"{self.name}: {when} step failed", extra={"worker": self.name})
