"""The dispatcher: posts due deliveries, signed, with a timeout and no redirects; records every attempt; retries on
the configured schedule; switches an endpoint off when it answers 410 Gone. One per deployment (a singleton)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import logging
import socket
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from services.kernel.database import unit_of_work, utcnow
from services.webhooks import signing
from services.webhooks.models import WebhookDelivery, WebhookEndpoint
from services.webhooks.service import TEST_EVENT, signing_secrets
from services.webhooks.settings import WebhookSettings

logger = logging.getLogger("smartgate.webhooks.delivery")

USER_AGENT = "smartgate-webhooks/1"
# Of the receiver's answer, this much is kept for the delivery log (the rest is not read).
KEEP_BYTES = 512


@dataclass(frozen=True, slots=True)
class Job:
    """One attempt to make: what to send, where, signed with which secrets."""

    delivery_id: str
    endpoint_id: str
    url: str
    secrets: tuple[str, ...]
    body: bytes


@dataclass(frozen=True, slots=True)
class Result:
    """How an attempt went."""

    delivery_id: str
    endpoint_id: str
    at: dt.datetime
    status_code: int | None
    error: str | None
    duration_ms: int

    @property
    def ok(self) -> bool:
        """A 2xx answer is a delivery."""
        return self.status_code is not None and 200 <= self.status_code < 300


class TargetRefused(Exception):
    """The URL's host resolves to an address this deployment may not call."""


def check_target(url: str, *, allow_private: bool) -> None:
    """Resolve the host now (it may have changed since registration) and refuse non-public addresses."""
    if allow_private:
        return
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    try:
        infos = socket.getaddrinfo(host, parts.port or 443, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise TargetRefused(f"cannot resolve {host}: {exc.strerror}") from exc
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            raise TargetRefused(f"{host} resolves to {address}, which is not a public address")


def body_of(payload: dict[str, object]) -> bytes:
    """The exact bytes that are signed and sent."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


class Dispatcher:
    """Delivers what is due: `run_once()` is one pass; `start()` runs passes in a thread until `stop()`."""

    BATCH = 100

    def __init__(
        self,
        sessions: sessionmaker[Session],
        settings: WebhookSettings,
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """`transport` is for tests that post to an in-process app; by default the network is used."""
        self.sessions = sessions
        self.settings = settings
        self.transport = transport
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # ---- one pass

    def run_once(self) -> int:
        """Attempt every due delivery (up to BATCH); returns how many attempts were made."""
        with self._lock:
            jobs = self._claim()
            if not jobs:
                return 0
            by_endpoint: dict[str, list[Job]] = {}
            for job in jobs:
                by_endpoint.setdefault(job.endpoint_id, []).append(job)
            results: list[Result] = []
            with (
                httpx.Client(
                    transport=self.transport,
                    timeout=self.settings.webhook_timeout_seconds,
                    follow_redirects=False,
                    headers={"user-agent": USER_AGENT},
                ) as client,
                ThreadPoolExecutor(max_workers=self.settings.webhook_concurrency) as pool,
            ):
                # An endpoint's deliveries go one after another, in the order they were made; endpoints in parallel.
                for batch in pool.map(lambda js: [self._attempt(client, j) for j in js], by_endpoint.values()):
                    results.extend(batch)
            self._record(results)
            return len(results)

    def _claim(self) -> list[Job]:
        """Due deliveries of active endpoints (and pings to any), leased so that a crash mid-pass retries later."""
        now = utcnow()
        lease = now + dt.timedelta(seconds=self.settings.webhook_timeout_seconds * 2 + 30)
        with unit_of_work(self.sessions) as session:
            stmt = (
                select(WebhookDelivery, WebhookEndpoint)
                .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
                .where(
                    WebhookDelivery.status == "pending",
                    WebhookDelivery.next_attempt_at <= now,
                    or_(WebhookEndpoint.active.is_(True), WebhookDelivery.event_type == TEST_EVENT),
                )
                .order_by(WebhookDelivery.created_at, WebhookDelivery.id)
                .limit(self.BATCH)
            )
            jobs = []
            for delivery, endpoint in session.execute(stmt):
                delivery.next_attempt_at = lease
                jobs.append(Job(delivery.id, endpoint.id, endpoint.url, tuple(signing_secrets(endpoint, now)),
                                body_of(delivery.payload)))  # fmt: skip
        return jobs

    def _attempt(self, client: httpx.Client, job: Job) -> Result:
        started = time.monotonic()
        at = utcnow()
        status_code: int | None = None
        error: str | None = None
        try:
            check_target(job.url, allow_private=self.settings.private_targets_allowed)
            headers = signing.headers(list(job.secrets), job.delivery_id, int(at.timestamp()), job.body)
            headers["content-type"] = "application/json"
            with client.stream("POST", job.url, content=job.body, headers=headers) as resp:
                status_code = resp.status_code
                kept = b""
                for chunk in resp.iter_bytes():
                    kept += chunk
                    if len(kept) >= KEEP_BYTES:
                        break
                if not 200 <= status_code < 300:
                    text = kept[:KEEP_BYTES].decode("utf-8", "replace").strip()
                    where = f" to {resp.headers.get('location')}" if 300 <= status_code < 400 else ""
                    error = f"HTTP {status_code}{where}" + (f": {text}" if text else "")
        except TargetRefused as exc:
            error = str(exc)
        except httpx.TimeoutException:
            error = f"no answer within {self.settings.webhook_timeout_seconds:g} s"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        except Exception as exc:  # noqa: BLE001 - one bad endpoint must not stop the others
            logger.exception("webhook attempt failed unexpectedly", extra={"delivery_id": job.delivery_id})
            error = f"{type(exc).__name__}: {exc}"
        return Result(job.delivery_id, job.endpoint_id, at, status_code, error,
                      int((time.monotonic() - started) * 1000))  # fmt: skip

    def _record(self, results: list[Result]) -> None:
        delays = self.settings.webhook_retry_seconds
        with unit_of_work(self.sessions) as session:
            for r in results:
                delivery = session.get(WebhookDelivery, r.delivery_id)
                if delivery is None:  # the endpoint was deleted meanwhile
                    continue
                delivery.attempts += 1
                delivery.last_attempt_at = r.at
                delivery.last_status_code = r.status_code
                delivery.last_error = r.error
                delivery.last_duration_ms = r.duration_ms
                if r.ok:
                    delivery.status, delivery.delivered_at, delivery.next_attempt_at = "delivered", r.at, None
                    continue
                if r.status_code == 410:
                    endpoint = session.get(WebhookEndpoint, r.endpoint_id)
                    if endpoint is not None and endpoint.active:
                        endpoint.active = False
                        endpoint.disabled_reason = "the receiver answered 410 Gone"
                        endpoint.updated_at = utcnow()
                        logger.warning("webhook endpoint switched off (410 Gone)", extra={"endpoint_id": r.endpoint_id})
                    delivery.status, delivery.next_attempt_at = "failed", None
                elif delivery.attempts > len(delays):
                    delivery.status, delivery.next_attempt_at = "failed", None
                else:
                    delivery.next_attempt_at = utcnow() + dt.timedelta(seconds=delays[delivery.attempts - 1])

    # ---- the thread

    def notify(self) -> None:
        """Wake the dispatcher now (new deliveries were made)."""
        self._wake.set()

    def start(self) -> None:
        """Run passes in a background thread until stop()."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, args=(self._stop,), name="webhooks", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop after the pass in progress (its attempts are recorded)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=self.settings.webhook_timeout_seconds * 2 + 10)
            if not self._thread.is_alive():
                self._thread = None

    def _loop(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self._wake.wait(self.settings.webhook_poll_seconds)
            self._wake.clear()
            if stop.is_set():
                break
            try:
                while self.run_once() >= self.BATCH and not stop.is_set():
                    pass
            except Exception:
                logger.exception("webhook dispatch pass failed")
