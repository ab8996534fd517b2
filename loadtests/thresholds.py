"""Threshold listener: a run with too many failures or slow filing exits non-zero, saying why."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # importing locust monkey-patches the process (gevent); only the locust process needs it
    from locust.env import Environment
    from locust.stats import RequestStats

MAX_FAIL_RATIO = 0.01
DEFAULT_P95_MS = 500
WATCHED_PREFIX = "[Filing]"


def p95_limit_ms(environ: Mapping[str, str]) -> float:
    """The p95 limit for filing requests: `SMARTGATE_LOAD_P95_MS` (default 500 ms)."""
    raw = environ.get("SMARTGATE_LOAD_P95_MS", "").strip()
    if not raw:
        return float(DEFAULT_P95_MS)
    limit = float(raw)  # ValueError on junk: reported by the listener
    if limit < 0:
        raise ValueError(f"SMARTGATE_LOAD_P95_MS must be >= 0, got {raw}")
    return limit


def violations(
    stats: RequestStats, *, p95_ms: float, max_fail_ratio: float = MAX_FAIL_RATIO, prefix: str = WATCHED_PREFIX
) -> list[str]:
    """Why a run fails: no requests, failure ratio above `max_fail_ratio`, or a `prefix` step p95 above `p95_ms`."""
    total = stats.total
    found: list[str] = []
    if total.num_requests == 0:
        return ["no requests were made"]
    if total.fail_ratio > max_fail_ratio:
        found.append(
            f"failure ratio {total.fail_ratio:.2%} > {max_fail_ratio:.0%} "
            f"({total.num_failures} of {total.num_requests} requests failed)"
        )
    for entry in sorted(stats.entries.values(), key=lambda e: (e.name, e.method or "")):
        if not entry.name.startswith(prefix) or entry.num_requests == 0:
            continue
        p95 = entry.get_response_time_percentile(0.95)
        if p95 > p95_ms:
            found.append(f"p95 of {entry.method} {entry.name!r} is {p95:.0f} ms > {p95_ms:.0f} ms")
    return found


def _worst_p95(stats: RequestStats, prefix: str) -> float:
    watched = [e for e in stats.entries.values() if e.name.startswith(prefix) and e.num_requests]
    return max((e.get_response_time_percentile(0.95) for e in watched), default=0.0)


def on_quitting(environment: Environment, **_kwargs: Any) -> None:
    """Locust `quitting` listener: set the process exit code from the thresholds and print the verdict."""
    try:
        p95_ms = p95_limit_ms(os.environ)
    except ValueError as exc:
        print(f"thresholds: FAILED: invalid SMARTGATE_LOAD_P95_MS ({exc})")
        environment.process_exit_code = 2
        return
    stats = environment.stats
    found = violations(stats, p95_ms=p95_ms)
    runner = environment.runner
    if runner is not None and runner.exceptions:
        # A scenario that raises is a broken test, not a slow platform; say so rather than pass.
        count = sum(e["count"] for e in runner.exceptions.values())
        found.append(f"{count} exception(s) raised in scenario code (see the log above)")
    if found:
        for reason in found:
            print(f"thresholds: FAILED: {reason}")
        environment.process_exit_code = 1
        return
    print(
        f"thresholds: passed: failure ratio {stats.total.fail_ratio:.2%} <= {MAX_FAIL_RATIO:.0%}, "
        f"worst {WATCHED_PREFIX} p95 {_worst_p95(stats, WATCHED_PREFIX):.0f} ms <= {p95_ms:.0f} ms"
    )
    # Failures under the ratio are tolerated: without this locust would exit 1 on any single failed request.
    environment.process_exit_code = 0
