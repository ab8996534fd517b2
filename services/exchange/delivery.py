"""Pushing our messages to the partner's inbox: at least once, back-off with jitter and a cap, and in order per
consignment (a message waits until the earlier messages of its consignment to that partner are through).

The transport is an interface (`Transport`): HTTPS POST of the compact JWS (`application/jose`) is the one built;
an AS4 (eDelivery) adapter would implement the same `send` (docs/exchange.md). One dispatcher per deployment.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
from sqlalchemy import and_, exists, select
from sqlalchemy.orm import Session, aliased, sessionmaker

from services.exchange import service
from services.exchange.models import ExchangeMessage, ExchangePartner
from services.exchange.service import BLOCKING, INBOX_PATH, PENDING, Exchange
from services.kernel.database import unit_of_work, utcnow
from services.kernel.periodic import PeriodicWorker

logger = logging.getLogger("smartgate.exchange.delivery")

USER_AGENT = "smartgate-exchange/1"
KEEP = 500
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class Sent:
    """What the partner answered: status and body, or why nothing was answered (`unreachable`)."""

    status_code: int | None
    body: bytes = b""
    error: str | None = None
    unreachable: bool = False
    retry_after: float | None = None


class Transport(Protocol):
    """How a signed message reaches a partner. HTTPS today; AS4 (eDelivery) later, behind the same call."""

    def send(self, partner: ExchangePartner, token: str) -> Sent:
        """Deliver `token` (a compact JWS) to `partner`'s inbox and return its answer."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


class HttpsTransport:
    """POST the JWS as `application/jose` to `<base_url>/api/v1/exchange/inbox`; no redirects; a timeout."""

    def __init__(self, timeout: float, *, transport: httpx.BaseTransport | None = None) -> None:
        self.client = httpx.Client(timeout=timeout, follow_redirects=False, transport=transport,
                                   headers={"user-agent": USER_AGENT})  # fmt: skip

    def send(self, partner: ExchangePartner, token: str) -> Sent:
        """One attempt."""
        try:
            resp = self.client.post(
                partner.base_url + INBOX_PATH,
                content=token.encode("ascii"),
                headers={"content-type": "application/jose", "accept": "application/json"},
            )
        except httpx.TimeoutException:
            return Sent(None, error="no answer in time", unreachable=True)
        except (httpx.ConnectError, httpx.RemoteProtocolError) as exc:
            return Sent(None, error=_clean(f"{type(exc).__name__}: {exc}"), unreachable=True)
        except httpx.HTTPError as exc:
            return Sent(None, error=_clean(f"{type(exc).__name__}: {exc}"), unreachable=True)
        retry_after: float | None = None
        if resp.headers.get("retry-after", "").isdigit():
            retry_after = float(resp.headers["retry-after"])
        return Sent(resp.status_code, resp.content[:65536], retry_after=retry_after)

    def close(self) -> None:
        """Close the client."""
        self.client.close()


def _clean(text: str) -> str:
    return _CONTROL.sub("?", text)[:KEEP]


def backoff(attempts: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Seconds before the next attempt after `attempts` failures: exponential, capped, with jitter (half fixed,
    half random, so partners that came back are not hit by every sender at once, and no wait is near zero)."""
    ceiling = min(cap, base * 2 ** max(0, attempts - 1))
    return ceiling / 2 + (rng or random).uniform(0, ceiling / 2)


@dataclass(frozen=True, slots=True)
class Job:
    """One message to push, and the lease it was claimed under."""

    seq: int
    partner: str
    token: str
    lease: dt.datetime


class Dispatcher:
    """`run_once()` is one pass; `start()` runs passes until `stop()`."""

    BATCH = 200

    def __init__(self, sessions: sessionmaker[Session], ex: Exchange, *, transport: Transport | None = None) -> None:
        self.sessions = sessions
        self.ex = ex
        self.transport: Transport = transport or HttpsTransport(ex.settings.exchange_timeout_seconds)
        self._lock = threading.Lock()
        self.worker = PeriodicWorker("exchange", self._pass, interval=ex.settings.exchange_poll_seconds,
                                     logger=logger, what="exchange dispatch pass")  # fmt: skip

    def run_once(self) -> int:
        """Push what is due (the head of each consignment's queue: consignments go side by side, each in its own
        order); returns how many were attempted."""
        with self._lock:
            jobs, partners = self._claim()
            if not jobs:
                return 0
            by_partner: dict[str, list[Job]] = {}
            for job in jobs:
                by_partner.setdefault(job.partner, []).append(job)
            results: list[tuple[Job, Sent]] = []
            with ThreadPoolExecutor(max_workers=self.ex.settings.exchange_concurrency) as pool:
                for code, batch in by_partner.items():
                    partner = partners[code]
                    first = self._send(partner, batch[0])
                    results.append((batch[0], first))
                    if first.unreachable:
                        # A partner that cannot be reached is not called again for each message in the same pass.
                        results.extend((job, first) for job in batch[1:])
                        continue
                    results.extend(zip(batch[1:], pool.map(lambda j, p=partner: self._send(p, j), batch[1:]),
                                       strict=True))  # fmt: skip
            self._record(partners, results)
            return len(jobs)

    def _send(self, partner: ExchangePartner, job: Job) -> Sent:
        try:
            return self.transport.send(partner, job.token)
        except Exception as exc:  # an adapter's bug is a failed attempt, not a dead dispatcher
            logger.exception("exchange transport failed", extra={"partner": partner.code})
            return Sent(None, error=_clean(f"{type(exc).__name__}: {exc}"), unreachable=True)

    def _claim(self) -> tuple[list[Job], dict[str, ExchangePartner]]:
        """The due messages that head their consignment's queue to an active partner, leased."""
        now = utcnow()
        earlier = aliased(ExchangeMessage)
        due = (
            select(ExchangeMessage)
            .join(ExchangePartner, and_(ExchangePartner.code == ExchangeMessage.partner,
                                        ExchangePartner.active.is_(True)))
            .where(
                ExchangeMessage.direction == "out",
                ExchangeMessage.state.in_(PENDING),
                ExchangeMessage.next_attempt_at <= now,
                ~exists().where(
                    earlier.direction == "out",
                    earlier.partner == ExchangeMessage.partner,
                    earlier.correlation_id == ExchangeMessage.correlation_id,
                    earlier.sequence < ExchangeMessage.sequence,
                    earlier.state.in_(BLOCKING),
                ),
            )
            .order_by(ExchangeMessage.seq)
            .limit(self.BATCH)
        )  # fmt: skip
        lease = now + dt.timedelta(seconds=self.ex.settings.exchange_timeout_seconds * 4 + 30)
        jobs: list[Job] = []
        partners: dict[str, ExchangePartner] = {}
        with unit_of_work(self.sessions) as session:
            if session.get_bind().dialect.name == "postgresql":
                due = due.with_for_update(skip_locked=True, of=ExchangeMessage)
            for row in session.scalars(due):
                row.next_attempt_at = lease
                jobs.append(Job(row.seq, row.partner, row.jws, lease))
            for partner in session.scalars(select(ExchangePartner)):
                session.expunge(partner)
                partners[partner.code] = partner
        return jobs, partners

    def _receipt(self, partner: ExchangePartner, sent: Sent) -> tuple[dict[str, Any] | None, str | None, str | None]:
        """(receipt, its JWS, error) from the partner's answer."""
        if sent.status_code == 200:
            try:
                token = str(json.loads(sent.body)["receipt"])
                return service.verify_receipt(self.ex, partner, token), token, None
            except Exception as exc:  # noqa: BLE001 - whatever the answer, it is not a receipt we can use
                return None, None, _clean(f"delivered, but the answer holds no valid receipt: {exc}")
        if sent.status_code is not None:
            return None, None, _clean(f"HTTP {sent.status_code}: {sent.body[:KEEP].decode('utf-8', 'replace')}")
        return None, None, sent.error

    def _record(self, partners: dict[str, ExchangePartner], results: list[tuple[Job, Sent]]) -> None:
        """The attempts' outcomes, in one transaction, for the messages still under this pass's lease."""
        checked = [(job, sent, *self._receipt(partners[job.partner], sent)) for job, sent in results]
        now = utcnow()
        with unit_of_work(self.sessions) as session:
            for job, sent, receipt, receipt_token, error in checked:
                row = session.get(ExchangeMessage, job.seq)
                if row is None or row.next_attempt_at != job.lease:
                    continue
                row.attempts += 1
                row.updated_at = now
                row.last_error = error
                code = sent.status_code
                if code is not None and 200 <= code < 300:
                    row.delivered_at = row.delivered_at or now
                    row.next_attempt_at = None
                    row.state = "delivered"
                    if receipt is not None and receipt_token is not None:
                        live = session.get(ExchangePartner, job.partner) or partners[job.partner]
                        if not service.apply_receipt(session, live, receipt, receipt_token):
                            row.last_error = "the receipt names another message or body"
                elif code is None or code in (408, 429) or code >= 500:
                    delay = backoff(row.attempts, self.ex.settings.exchange_retry_base_seconds,
                                    self.ex.settings.exchange_retry_cap_seconds)  # fmt: skip
                    if sent.retry_after is not None:
                        delay = max(delay, min(sent.retry_after, self.ex.settings.exchange_retry_cap_seconds))
                    row.state, row.next_attempt_at = "retrying", now + dt.timedelta(seconds=delay)
                else:
                    # The partner refused it (signature, schema, recipient...): the same bytes cannot succeed.
                    row.state, row.next_attempt_at = "failed", None
                    logger.warning("exchange message refused by the partner",
                                   extra={"partner": job.partner, "status": code})  # fmt: skip

    # ---- the thread

    def notify(self) -> None:
        """Wake the dispatcher (messages were queued)."""
        self.worker.wake()

    def start(self) -> None:
        """Run passes in a background thread until stop()."""
        self.worker.start()

    def stop(self) -> None:
        """Stop after the pass in progress."""
        self.worker.stop(timeout=self.ex.settings.exchange_timeout_seconds * 2 + 10)

    def close(self) -> None:
        """Release the transport."""
        self.transport.close()

    def _pass(self) -> None:
        while self.run_once() >= self.BATCH and not self.worker.stopping:
            pass


def due_soon(session: Session) -> dt.datetime | None:
    """When the next pending message is due (for status)."""
    return session.scalar(
        select(ExchangeMessage.next_attempt_at)
        .where(ExchangeMessage.direction == "out", ExchangeMessage.state.in_(PENDING))
        .order_by(ExchangeMessage.next_attempt_at)
        .limit(1)
    )
