"""Per-key rate limits: a runaway client gets 429 with Retry-After; others are not affected."""

from __future__ import annotations

from typing import Any

import pytest

from services.kernel.ratelimit import RateLimiter, TooManyRequests
from services.kernel.runtime import Runtime
from services.kernel.settings import KernelSettings


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_bucket_allows_a_burst_then_the_rate():
    clock = Clock()
    limiter = RateLimiter(60, 3, clock=clock)  # one a second, bursts of three
    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a") == pytest.approx(1.0)
    assert limiter.take("b") == 0.0  # another caller has its own bucket
    clock.now += 0.5
    assert limiter.take("a") == pytest.approx(0.5)
    clock.now += 0.5
    assert limiter.take("a") == 0.0
    clock.now += 3600
    assert [limiter.take("a") for _ in range(4)][-1] > 0  # refilled to the burst, never beyond


def test_the_limit_can_be_off_and_idle_callers_are_forgotten():
    off = RateLimiter(0, 1)
    assert not off.enabled
    assert all(off.take("a") == 0.0 for _ in range(10_000))
    clock = Clock()
    limiter = RateLimiter(60, 2, max_callers=2, clock=clock)
    limiter.take("a")
    limiter.take("b")
    clock.now += 10  # both buckets full again
    limiter.take("c")
    assert set(limiter._buckets) == {"c"}
    limiter.check("c")  # the second of its burst of two (its first was the take above)
    with pytest.raises(TooManyRequests) as caught:
        limiter.check("c")
    assert caught.value.headers["Retry-After"] == "1"


def test_runaway_key_gets_429_problem_with_retry_after(client: Any, runtime: Runtime, keys: Any) -> None:
    clock = Clock()
    runtime.limiter = RateLimiter(60, 3, clock=clock)
    trader, other = keys.make("trader", "Lao Cai Fruit Export JSC"), keys.make("trader", "Hekou Border Trading Co.")
    for _ in range(3):
        assert client.get("/api/v1/declarations", headers=trader).status_code == 200
    over = client.get("/api/v1/declarations", headers=trader)
    assert over.status_code == 429
    assert over.headers["content-type"].startswith("application/problem+json")
    assert over.headers["retry-after"] == "1"
    assert over.json()["code"] == "rate_limit.exceeded"
    assert client.get("/api/v1/declarations", headers=other).status_code == 200
    clock.now += 1
    assert client.get("/api/v1/declarations", headers=trader).status_code == 200
    # Unauthenticated requests are refused before any bucket is touched (401, not 429).
    assert client.get("/api/v1/declarations").status_code == 401
    assert client.get("/healthz").status_code == 200


def test_openapi_documents_429_where_a_key_is_taken(client: Any) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    ops = [op for item in paths.values() for op in item.values() if "401" in op.get("responses", {})]
    assert ops
    assert all("429" in op["responses"] for op in ops)
    assert "application/problem+json" in paths["/api/v1/declarations"]["post"]["responses"]["429"]["content"]


def test_several_processes_share_the_limit(tmp_path) -> None:
    settings = KernelSettings(database_url=f"sqlite:///{tmp_path / 'x.db'}", rate_limit_per_minute=3000, workers=2)
    runtime = Runtime.build(settings)
    try:
        assert runtime.limiter.per_minute == 1500
    finally:
        runtime.close()
