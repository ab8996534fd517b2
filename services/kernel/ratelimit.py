"""Per-caller request rate limits (token buckets), the gateway's protection against one runaway client.

A misbehaving integration (a trader's retry loop, a camera stuck re-posting) must not take the gate's capacity from
everyone else: each API key gets `per_minute` requests per minute on average, in bursts of up to `burst`. Beyond
that the caller gets 429 with a Retry-After. The buckets live in the process (the event loop's thread touches
them, so no lock); with several server processes each gets its share of the limit.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from services.kernel.errors import AppError


class TooManyRequests(AppError):
    status, title, type_slug = 429, "Too many requests", "rate-limited"


class RateLimiter:
    """Token buckets by caller: `burst` tokens, refilled at `per_minute` / 60 per second; 0 disables."""

    def __init__(
        self, per_minute: float, burst: int, *, max_callers: int = 100_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = per_minute / 60.0
        self.burst = max(1, burst)
        self.per_minute = per_minute
        self.max_callers = max_callers
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # caller -> (tokens, at)

    @property
    def enabled(self) -> bool:
        """Whether requests are limited at all."""
        return self.rate > 0

    def take(self, caller: str) -> float:
        """Take one request for `caller`: 0.0 if allowed, else the seconds until one would be."""
        if self.rate <= 0:
            return 0.0
        now = self.clock()
        tokens, at = self._buckets.get(caller, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - at) * self.rate)
        if tokens < 1.0:
            self._buckets[caller] = (tokens, now)
            return (1.0 - tokens) / self.rate
        if caller not in self._buckets and len(self._buckets) >= self.max_callers:
            self._forget_idle(now)
        self._buckets[caller] = (tokens - 1.0, now)
        return 0.0

    def check(self, caller: str) -> None:
        """Raise 429 (with Retry-After in whole seconds) if `caller` is over its rate."""
        wait = self.take(caller)
        if wait > 0:
            seconds = max(1, math.ceil(wait))
            raise TooManyRequests(
                f"this API key made more than {self.per_minute:g} requests per minute (bursts up to {self.burst}); "
                f"retry in {seconds} s",
                headers={"Retry-After": str(seconds)},
                code="rate_limit.exceeded",
            )

    def _forget_idle(self, now: float) -> None:
        """Drop callers whose bucket is full again (they have been quiet long enough to lose nothing)."""
        full_after = self.burst / self.rate
        self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < full_after}
