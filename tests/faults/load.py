"""A filing load for fault tests: a few client threads file declarations, each with its own Idempotency-Key, and
keep what a real client knows: which requests were acknowledged (2xx, with the body) and which have an unknown
outcome (no answer, or a 5xx/429) and must be retried with the same key."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import httpx
import pytest

PATH = "/api/v1/declarations?submit=true"
# Statuses after which a client does not know whether the request took effect: it retries with the same key.
RETRY = {429, 500, 502, 503, 504}


class Filer:
    """Files declarations from `threads` threads until stopped."""

    def __init__(
        self, url: str, headers: dict[str, str], body: dict[str, Any], *, threads: int = 3, pause: float = 0.0
    ) -> None:
        """`pause`: seconds each thread waits between filings (0: as fast as the server answers)."""
        self.url, self.headers, self.body, self.threads, self.pause = url, headers, body, threads, pause
        self.acked: dict[str, dict[str, Any]] = {}  # Idempotency-Key -> the 2xx body
        self.acked_at: list[float] = []  # monotonic time of each acknowledgement
        self.unknown: set[str] = set()  # keys sent without an acknowledgement
        self.replayed: set[str] = set()  # keys answered with the stored first response (Idempotent-Replayed)
        self.refused: list[str] = []  # answers no fault excuses (4xx other than 429): the test fails on them
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []

    def post(self, client: httpx.Client, key: str) -> httpx.Response | None:
        """One attempt with `key`; records its outcome and returns the response (None without one)."""
        try:
            resp = client.post(PATH, json=self.body, headers={**self.headers, "Idempotency-Key": key})
        except httpx.HTTPError:
            resp = None
        with self._lock:
            if resp is not None and 200 <= resp.status_code < 300:
                self.acked[key] = resp.json()
                self.acked_at.append(time.monotonic())
                self.unknown.discard(key)
                if resp.headers.get("idempotent-replayed") == "true":
                    self.replayed.add(key)
            elif resp is None or resp.status_code in RETRY:
                self.unknown.add(key)
            else:
                self.refused.append(f"{resp.status_code} {resp.text[:300]}")
        return resp

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=15) as client:
            while not self._stop.is_set():
                resp = self.post(client, uuid.uuid4().hex)
                if resp is None or resp.status_code >= 300:
                    self._stop.wait(0.2)  # the server is down or busy: do not spin
                elif self.pause:
                    self._stop.wait(self.pause)

    def start(self) -> None:
        """Start the client threads."""
        for n in range(self.threads):
            thread = threading.Thread(target=self._run, name=f"filer-{n}", daemon=True)
            thread.start()
            self._workers.append(thread)

    def stop(self) -> None:
        """Stop the threads (each finishes its request in flight, bounded by the client timeout)."""
        self._stop.set()
        for thread in self._workers:
            thread.join(timeout=30)
        self._workers = []

    def count(self) -> int:
        """Acknowledged filings so far."""
        with self._lock:
            return len(self.acked)

    def wait_acked(self, n: int, timeout: float = 60) -> None:
        """Wait until `n` filings in all were acknowledged, failing the test after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while self.count() < n:
            if time.monotonic() > deadline:
                pytest.fail(f"only {self.count()} of {n} filings acknowledged in {timeout:.0f} s; {self.refused[:3]}")
            time.sleep(0.05)

    def retry_unknown(self, timeout: float = 60) -> dict[str, dict[str, Any]]:
        """Retry every unacknowledged key with its same key and body until acknowledged; returns their bodies."""
        retried: dict[str, dict[str, Any]] = {}
        deadline = time.monotonic() + timeout
        with httpx.Client(base_url=self.url, timeout=15) as client:
            for key in sorted(self.unknown):
                while key not in self.acked:
                    if time.monotonic() > deadline:
                        pytest.fail(f"retry of {key} not acknowledged in {timeout:.0f} s; {self.refused[:3]}")
                    resp = self.post(client, key)
                    if resp is None or resp.status_code >= 300:
                        time.sleep(0.2)
                retried[key] = self.acked[key]
        return retried
