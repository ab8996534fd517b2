"""Helpers shared by tests across areas."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_for(condition: Callable[[], bool], deadline_s: float = 60.0, *, interval: float = 0.05) -> bool:
    """Poll a condition of background work until it holds (the deadline only bounds a hang; it decides no outcome)."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(interval)
    return condition()
