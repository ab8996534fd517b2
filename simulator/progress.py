"""Progress of a long run as plain lines, for a stderr that is not a terminal (a log file, CI, a pipe, nohup).

A terminal gets a progress bar (rich, in the CLI). Elsewhere a bar is noise, and nothing at all leaves a long run
silent for minutes; so: one line every `every_s` seconds (the default, 10 s: a run shorter than that prints
nothing, which keeps tests and short runs quiet), or when asked for (`--progress`) also one every tenth of the
work, plus a last line when anything was printed. Bounded either way: at most elapsed / every_s lines, or 11 per
run.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from typing import TextIO


class ProgressLines:
    """A `progress(done, total)` callback that prints "progress: LABEL: 12/30 replications, 40 s, ~60 s left"."""

    def __init__(
        self,
        label: str,
        *,
        every_s: float | None = 10.0,
        steps: int | None = None,
        unit: str = "replications",
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label = label
        self.every_s = every_s
        self.steps = steps
        self.unit = unit
        self.stream = stream
        self.clock = clock
        self.start = clock()
        self.last_t = self.start
        self.last_done = 0
        self.lines = 0

    def __call__(self, done: int, total: int) -> None:
        now = self.clock()
        due = self.every_s is not None and now - self.last_t >= self.every_s
        if self.steps and total > 0:
            due = due or done - self.last_done >= math.ceil(total / self.steps)
        if done >= total and (self.lines or self.steps):
            due = True  # close what was begun (or, when asked for, always say it finished)
        if not due or done == self.last_done:
            return
        elapsed = now - self.start
        left = f", about {elapsed / done * (total - done):.0f} s left" if 0 < done < total else ""
        stream = self.stream if self.stream is not None else sys.stderr
        print(f"progress: {self.label}: {done}/{total} {self.unit}, {elapsed:.0f} s{left}", file=stream, flush=True)
        self.last_t, self.last_done = now, done
        self.lines += 1
