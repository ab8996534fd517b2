"""Background work that keeps up: after a burst of filings, how long until the outbox has nothing pending and the
ledger holds every event, with one server process (the baseline, same run), two (`serve --workers 2`), and the
distributed deployment (declarations in two processes, provenance in its own, events over NATS JetStream).

Usage: python benchmarks/background_lag.py [--seconds 20] [--clients 16] [--scenarios embedded-1,embedded-2,distributed]
PostgreSQL from SMARTGATE_BENCH_PG_URL (as benchmarks/api_filing.py); NATS from SMARTGATE_BENCH_NATS_URL
(default nats://127.0.0.1:4222), on a stream and subject prefix of this run, deleted after.
Targets: outbox lag with two workers <= 1 s; ledger lag of the distributed deployment <= 5 s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import socket
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._harness import LoadResult, free_port, run_load, start_server, stop_server, wait_quiet
from benchmarks.api_filing import database, drop, filing_body, migrate_with_trader_key, server_env

NATS_URL = os.environ.get("SMARTGATE_BENCH_NATS_URL", "nats://127.0.0.1:4222")
START_LIMIT_S = 180.0  # loading models and the anchor chain takes a while on a busy machine
CATCH_UP_LIMIT_S = 600.0  # a run that has not caught up by then reports the limit, marked as such

COUNTS = text(
    "SELECT (SELECT count(*) FROM outbox_events), (SELECT count(*) FROM outbox_events WHERE published_at IS NULL),"
    " (SELECT count(*) FROM ledger_entries)"
)


@dataclass
class Lag:
    """What one scenario measured."""

    load: LoadResult
    events: int  # outbox rows when the load stopped
    pending: int  # of which not yet published
    behind: int  # events not yet in the ledger
    outbox_s: float  # from the end of the load until nothing was pending
    ledger_s: float  # until the ledger held every event

    def line(self, name: str) -> str:
        """One report line."""
        return (
            f"{name:<34} {self.load.rps:6.1f} filings/s, {self.events:6,} events; at the end: {self.pending:6,} "
            f"pending, {self.behind:6,} not in the ledger; caught up after: outbox {self.outbox_s:6.2f} s, "
            f"ledger {self.ledger_s:6.2f} s"
        )


def catch_up(url: str) -> tuple[int, int, int, float, float]:
    """Poll the database from the moment the load stopped: (events, pending, behind) then, and the seconds until
    the outbox had nothing pending and until the ledger held every event."""
    engine = create_engine(url)
    started = time.perf_counter()
    outbox_s = ledger_s = None
    first: tuple[int, int, int] | None = None
    try:
        while time.perf_counter() - started < CATCH_UP_LIMIT_S:
            with engine.connect() as conn:
                events, pending, entries = conn.execute(COUNTS).one()
            elapsed = time.perf_counter() - started
            if first is None:
                first = (events, pending, events - entries)
            if outbox_s is None and pending == 0:
                outbox_s = elapsed
            if ledger_s is None and entries >= events:
                ledger_s = elapsed
            if outbox_s is not None and ledger_s is not None:
                break
            time.sleep(0.02)
    finally:
        engine.dispose()
    assert first is not None
    return (*first, outbox_s or CATCH_UP_LIMIT_S, ledger_s or CATCH_UP_LIMIT_S)


def scenario(name: str, *, seconds: float, clients: int) -> Lag:
    """Start the processes of one scenario on a fresh database, file for `seconds`, measure the catch-up."""
    python = sys.executable
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        url, dbname = database("postgresql", tmp)
        secret = secrets.token_urlsafe(40)
        env = server_env(url, secret, tmp / "var")
        tag = uuid.uuid4().hex[:10]
        servers = []
        try:
            key = migrate_with_trader_key(url, secret)
            port = free_port()
            serve = [python, "-m", "api.cli", "serve", "--host", "127.0.0.1", "--no-console"]
            if name == "distributed":
                env |= {"SMARTGATE_BUS_URL": NATS_URL, "SMARTGATE_BUS_STREAM": f"SGBENCH_{tag}",
                        "SMARTGATE_BUS_PREFIX": f"sgbench{tag}"}  # fmt: skip
                ledger_port = free_port()
                servers.append(start_server([*serve, "--services", "provenance", "--port", str(ledger_port)],
                                            env=env, port=ledger_port, timeout=START_LIMIT_S))  # fmt: skip
                args = [*serve, "--services", "declarations", "--workers", "2", "--port", str(port)]
            else:
                args = [*serve, "--workers", name.rsplit("-", 1)[1], "--port", str(port)]
            server = start_server(args, env=env, port=port, timeout=START_LIMIT_S)
            servers.append(server)
            wait_quiet([p.pid for p in servers])
            body = filing_body()

            def request(i: int) -> tuple[str, str, dict[str, str], bytes]:
                headers = {"content-type": "application/json", "authorization": f"Bearer {key}",
                           "idempotency-key": f"bench-{uuid.uuid4().hex}"}  # fmt: skip
                return "POST", "/api/v1/declarations?submit=true", headers, body

            load = run_load(f"http://127.0.0.1:{port}", request, clients=clients, seconds=seconds, warmup=3.0,
                            server_pid=server.pid)  # fmt: skip
            lag = Lag(load, *catch_up(url))
        finally:
            for proc in servers:
                stop_server(proc)
            drop(dbname)
            if name == "distributed":
                asyncio.run(_delete_stream(f"SGBENCH_{tag}"))
    return lag


def nats_reachable() -> bool:
    """Whether something listens at the NATS address."""
    parsed = urlparse(NATS_URL)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 4222), timeout=1):
            return True
    except OSError:
        return False


async def _delete_stream(stream: str) -> None:
    import nats

    nc = await nats.connect(NATS_URL)
    try:
        await nc.jetstream().delete_stream(stream)
    except Exception:  # noqa: BLE001 - never created (the run failed before): nothing to delete
        pass
    await nc.close()


def main() -> None:
    """Parse arguments and run the scenarios in order, each on its own database."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20, help="filing time per scenario")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--scenarios", default="embedded-1,embedded-2,distributed")
    args = parser.parse_args()
    print(f"PostgreSQL; {os.cpu_count()} cores (shared with whatever else runs now); {args.clients} clients file for "
          f"{args.seconds:.0f} s, then the processes catch up")  # fmt: skip
    results: dict[str, Lag] = {}
    for name in [s.strip() for s in args.scenarios.split(",") if s.strip()]:
        if name == "distributed" and not nats_reachable():
            print(f"distributed: skipped, NATS is not reachable at {NATS_URL} (start nats-server -js)")
            continue
        results[name] = lag = scenario(name, seconds=args.seconds, clients=args.clients)
        print(lag.line(name), flush=True)
    base = results.get("embedded-1")
    if "embedded-2" in results:
        two = results["embedded-2"]
        ratio = f" ({two.outbox_s / base.outbox_s:.1f}x the one-process baseline)" if base and base.outbox_s else ""
        verdict = "OK" if two.outbox_s <= 1 else "ABOVE TARGET"
        print(f"two workers: outbox lag {two.outbox_s:.2f} s{ratio}, target <= 1 s -> {verdict}")
    if "distributed" in results:
        dist = results["distributed"]
        ratio = f" ({dist.ledger_s / base.ledger_s:.1f}x the one-process baseline)" if base and base.ledger_s else ""
        verdict = "OK" if dist.ledger_s <= 5 else "ABOVE TARGET"
        appended = (dist.events - dist.behind) / dist.load.seconds
        print(
            f"distributed: ledger lag {dist.ledger_s:.2f} s{ratio}, target <= 5 s -> {verdict}; "
            f"events filed {dist.events / dist.load.seconds:.0f}/s vs appended ~{appended:.0f}/s during the load"
        )


if __name__ == "__main__":
    main()
