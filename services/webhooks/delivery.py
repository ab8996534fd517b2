"""The dispatcher: posts due deliveries, signed, with a timeout and no redirects; records every attempt; retries on
the configured schedule; switches an endpoint off when it answers 410 Gone. One per deployment (a singleton)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import logging
import re
import socket
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from services.kernel.database import table_of, unit_of_work, utcnow
from services.kernel.periodic import PeriodicWorker
from services.webhooks import signing
from services.webhooks.models import WebhookDelivery, WebhookEndpoint
from services.webhooks.service import TEST_EVENT, has_control, is_public_address, signing_secrets
from services.webhooks.settings import WebhookSettings

logger = logging.getLogger("smartgate.webhooks.delivery")

USER_AGENT = "smartgate-webhooks/1"
# Of the receiver's answer, this much is kept for the delivery log (the rest is not read).
KEEP_BYTES = 512
# At most this many of one endpoint's deliveries per pass, so that a pass stays short whatever one endpoint holds.
PER_ENDPOINT = 20
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_DELIVERIES = table_of(WebhookDelivery)


@dataclass(frozen=True, slots=True)
class Job:
    """One attempt to make: what to send, where, signed with which secrets, and the lease it was claimed under."""

    delivery_id: str
    endpoint_id: str
    url: str
    secrets: tuple[str, ...]
    body: bytes
    lease: dt.datetime


@dataclass(frozen=True, slots=True)
class Result:
    """How an attempt went (`sent` is False when it was not made because the endpoint was unreachable)."""

    job: Job
    at: dt.datetime
    status_code: int | None
    error: str | None
    duration_ms: int
    unreachable: bool = False

    @property
    def ok(self) -> bool:
        """A 2xx answer is a delivery."""
        return self.status_code is not None and 200 <= self.status_code < 300


class TargetRefused(Exception):
    """The URL's host resolves to an address this deployment may not call."""


def resolve_target(url: str, *, allow_private: bool) -> str | None:
    """Resolve the host now (it may point elsewhere since registration) and refuse non-public addresses. Returns
    the address to connect to (None when private targets are allowed: the client resolves as usual)."""
    if allow_private:
        return None
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    try:
        infos = socket.getaddrinfo(host, parts.port or 443, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise TargetRefused(f"cannot resolve {host}") from exc
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    if not addresses or not all(is_public_address(a) for a in addresses):
        raise TargetRefused(f"{host} does not resolve to a public address")
    return str(addresses[0])


def pinned_request(client: httpx.Client, url: str, address: str | None, headers: dict[str, str],
                   body: bytes) -> httpx.Request:  # fmt: skip
    """The POST, sent to `address` (the one checked) rather than to whatever the name resolves to a moment later;
    the Host header and TLS (SNI and certificate check) still use the name."""
    if address is None:
        return client.build_request("POST", url, content=body, headers=headers)
    target = httpx.URL(url)
    literal = f"[{address}]" if ":" in address else address
    return client.build_request(
        "POST",
        target.copy_with(host=literal.strip("[]")),
        content=body,
        headers={**headers, "host": target.netloc.decode("ascii")},
        extensions={"sni_hostname": target.host},
    )


def body_of(payload: dict[str, object]) -> bytes:
    """The exact bytes that are signed and sent."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def _clean(text: str) -> str:
    """A receiver's words as log text: no NUL or control characters (PostgreSQL refuses NUL in text)."""
    return _CONTROL.sub("?", text)[:KEEP_BYTES]


class Dispatcher:
    """Delivers what is due: `run_once()` is one pass; `start()` runs passes in a thread until `stop()`."""

    BATCH = 100

    def __init__(
        self,
        sessions: sessionmaker[Session],
        settings: WebhookSettings,
        *,
        read_sessions: sessionmaker[Session] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """`transport` is for tests of the request itself; by default the network is used."""
        self.sessions = sessions
        self.read_sessions = read_sessions or sessions
        self.settings = settings
        self.transport = transport
        self._lock = threading.Lock()
        self.worker = PeriodicWorker(
            "webhooks",
            self._pass,
            interval=settings.webhook_poll_seconds,
            logger=logger,
            what="webhook dispatch pass",
        )

    # ---- one pass

    def run_once(self) -> int:
        """Attempt the due deliveries (up to BATCH); returns how many were claimed."""
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
                for batch in pool.map(lambda js: self._endpoint_pass(client, js), by_endpoint.values()):
                    results.extend(batch)
            self._record(results)
            return len(jobs)

    def _claim(self) -> list[Job]:
        """Due deliveries of active endpoints (and pings to any), oldest first, leased: the lease time is also the
        token that lets this pass record its results (a manual retry meanwhile replaces it, and wins)."""
        now = utcnow()
        due = (
            select(WebhookDelivery, WebhookEndpoint)
            .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
            .where(
                WebhookDelivery.status == "pending",
                WebhookDelivery.next_attempt_at <= now,
                or_(WebhookEndpoint.active.is_(True), WebhookDelivery.event_type == TEST_EVENT),
            )
        )
        with unit_of_work(self.read_sessions) as session:  # most passes find nothing: no writer lock for that
            if session.execute(due.limit(1)).first() is None:
                return []
        lease = now + dt.timedelta(seconds=self.settings.webhook_timeout_seconds * (PER_ENDPOINT + 2) + 30)
        with unit_of_work(self.sessions) as session:
            stmt = due.order_by(WebhookDelivery.created_at, WebhookDelivery.id).limit(self.BATCH)
            if session.get_bind().dialect.name == "postgresql":
                stmt = stmt.with_for_update(skip_locked=True, of=WebhookDelivery)
            jobs: list[Job] = []
            per_endpoint: dict[str, int] = {}
            for delivery, endpoint in session.execute(stmt):
                if per_endpoint.get(endpoint.id, 0) >= PER_ENDPOINT:
                    continue
                per_endpoint[endpoint.id] = per_endpoint.get(endpoint.id, 0) + 1
                delivery.next_attempt_at = lease
                jobs.append(Job(delivery.id, endpoint.id, endpoint.url, tuple(signing_secrets(endpoint, now)),
                                body_of(delivery.payload), lease))  # fmt: skip
        return jobs

    def _endpoint_pass(self, client: httpx.Client, jobs: list[Job]) -> list[Result]:
        """One endpoint's deliveries, one after another in the order the events happened. When the receiver
        cannot be reached (refused, timed out), the rest count as failed attempts without waiting for each."""
        results: list[Result] = []
        for job in jobs:
            if results and results[-1].unreachable:
                last = results[-1]
                results.append(Result(job, last.at, None, f"not sent: {last.error}", 0, unreachable=True))
                continue
            results.append(self._attempt(client, job))
        return results

    def _attempt(self, client: httpx.Client, job: Job) -> Result:
        started = time.monotonic()
        at = utcnow()
        status_code: int | None = None
        error: str | None = None
        unreachable = False
        deadline = started + self.settings.webhook_timeout_seconds
        try:
            if has_control(job.url):
                # Refused at registration since; an older row may still hold one. A failed attempt, not a traceback.
                raise TargetRefused("the URL contains control characters; change it (PATCH the endpoint)")
            address = resolve_target(job.url, allow_private=self.settings.private_targets_allowed)
            headers = signing.headers(list(job.secrets), job.delivery_id, int(at.timestamp()), job.body)
            headers["content-type"] = "application/json"
            request = pinned_request(client, job.url, address, headers, job.body)
            resp = client.send(request, stream=True)
            try:
                status_code = resp.status_code
                kept = b""
                for chunk in resp.iter_bytes():
                    kept += chunk
                    if len(kept) >= KEEP_BYTES or time.monotonic() > deadline:
                        break
            finally:
                resp.close()
            if not 200 <= status_code < 300:
                text = _clean(kept[:KEEP_BYTES].decode("utf-8", "replace").strip())
                where = f" to {_clean(resp.headers.get('location', ''))}" if 300 <= status_code < 400 else ""
                error = f"HTTP {status_code}{where}" + (f": {text}" if text else "")
        except TargetRefused as exc:
            error = str(exc)
        except httpx.InvalidURL as exc:  # not an HTTPError: a URL the client cannot send at all
            error = _clean(f"the URL cannot be sent: {exc}")
        except httpx.TimeoutException:
            error, unreachable = f"no answer within {self.settings.webhook_timeout_seconds:g} s", True
        except (httpx.ConnectError, httpx.RemoteProtocolError) as exc:
            error, unreachable = _clean(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__), True
        except httpx.HTTPError as exc:
            error = _clean(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
        except Exception as exc:
            logger.exception("webhook attempt failed unexpectedly", extra={"delivery_id": job.delivery_id})
            error = _clean(f"{type(exc).__name__}: {exc}")
        return Result(job, at, status_code, error, int((time.monotonic() - started) * 1000), unreachable)

    def _record(self, results: list[Result]) -> None:
        """Write each attempt, if the delivery is still under this pass's lease (deleted, or retried by hand
        meanwhile: that stands)."""
        delays = self.settings.webhook_retry_seconds
        gone: set[str] = set()
        with unit_of_work(self.sessions) as session:
            conn = session.connection()
            for r in results:
                attempts = conn.execute(
                    select(_DELIVERIES.c.attempts).where(
                        _DELIVERIES.c.id == r.job.delivery_id, _DELIVERIES.c.next_attempt_at == r.job.lease
                    )
                ).scalar()
                if attempts is None:
                    continue
                attempts += 1
                values: dict[str, Any] = {
                    "attempts": attempts, "last_attempt_at": r.at, "last_status_code": r.status_code,
                    "last_error": r.error, "last_duration_ms": r.duration_ms,
                }  # fmt: skip
                if r.ok:
                    values |= {"status": "delivered", "delivered_at": r.at, "next_attempt_at": None}
                elif r.status_code == 410 or attempts > len(delays):
                    values |= {"status": "failed", "next_attempt_at": None}
                    if r.status_code == 410:
                        gone.add(r.job.endpoint_id)
                else:
                    values["next_attempt_at"] = utcnow() + dt.timedelta(seconds=delays[attempts - 1])
                conn.execute(
                    update(_DELIVERIES)
                    .where(_DELIVERIES.c.id == r.job.delivery_id, _DELIVERIES.c.next_attempt_at == r.job.lease)
                    .values(**values)
                )
            for endpoint_id in gone:
                endpoint = session.get(WebhookEndpoint, endpoint_id)
                if endpoint is not None and endpoint.active:
                    endpoint.active = False
                    endpoint.disabled_reason = "the receiver answered 410 Gone"
                    endpoint.updated_at = utcnow()
                    logger.warning("webhook endpoint switched off (410 Gone)", extra={"endpoint_id": endpoint_id})

    # ---- the thread

    def notify(self) -> None:
        """Wake the dispatcher now (new deliveries were made)."""
        self.worker.wake()

    def start(self) -> None:
        """Run passes in a background thread until stop(). A loop still finishing after a stop() is left to end
        and a new one starts; passes never overlap (they take the same lock)."""
        self.worker.start()

    def stop(self) -> None:
        """Stop after the pass in progress (its attempts are recorded)."""
        self.worker.stop(timeout=self.settings.webhook_timeout_seconds * 2 + 10)

    def _pass(self) -> None:
        while self.run_once() >= self.BATCH and not self.worker.stopping:
            pass
