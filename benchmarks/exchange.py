"""The exchange end to end between two administrations, each its own process and database: messages per second
(sign and queue, push, verify, schema-check, store, inbound effect, signed receipt, receipt verified and recorded,
both sides' ledger events appended) against a bare HTTP POST of the same JWS bytes between the same two processes,
in the same run; delivery latency (queued → acknowledged) p50/p99.

Usage: python benchmarks/exchange.py [--messages 500] [--consignments 50]
The receiving side (cn-hekou) is a `python benchmarks/exchange.py --receiver` process on loopback with a test
message type (controlResult, a note); the sending side (vn-kimthanh) runs in this process; both on SQLite.
"""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._harness import free_port, start_server, stop_server

NOTE_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "required": ["note"],
    "properties": {"note": {"type": "string", "maxLength": 200}, "n": {"type": "integer", "minimum": 0}},
}


def note_type() -> Any:
    """The benchmark's message type: a control result whose inbound effect is a counter."""
    from services.exchange.registry import MessageType

    def inbound(session: Any, message: Any) -> list[dict[str, str]]:
        return []

    return MessageType("controlResult", 1, NOTE_SCHEMA, None, inbound)


def settings_for(code: str, var_dir: Path, database_url: str) -> Any:
    from services.exchange.settings import ExchangeSettings

    return ExchangeSettings(
        environment="test", database_url=database_url, secret_key=secrets.token_urlsafe(40), var_dir=var_dir,
        log_json=False, administration=code, rate_limit_per_minute=0, exchange_rate_limit_per_minute=0,
        exchange_poll_seconds=3600, exchange_retry_base_seconds=0.05, exchange_retry_cap_seconds=0.2,
        expiry_check_seconds=3600, log_level="WARNING",
    )  # fmt: skip


def app_for(settings: Any) -> tuple[Any, Any]:
    from fastapi import Request, Response

    from api.app import create_app
    from services.exchange.install import TYPES_KEY
    from services.kernel.runtime import Runtime

    runtime = Runtime.build(settings)
    runtime.extras[TYPES_KEY] = {"controlResult": note_type()}
    app = create_app(settings, runtime=runtime)

    @app.post("/bench/bare", include_in_schema=False)
    async def bare(request: Request) -> Response:  # the same bytes in, a small JSON answer out
        await request.body()
        return Response(b'{"status":"ok"}', media_type="application/json")

    return app, runtime


def register(runtime: Any, code: str, url: str, jwk: dict[str, Any]) -> None:
    from services.exchange import service
    from services.kernel.database import unit_of_work

    with unit_of_work(runtime.sessions) as session:
        service.save_partner(session, runtime.extras["exchange"], code=code, name=code, base_url=url, keys=[jwk],
                             active=True, actor="bench")  # fmt: skip


def receiver(port: int, var_dir: Path, partner_url: str, partner_jwk: str) -> None:
    """The receiving side's process: migrate, register the sender, serve."""
    import uvicorn

    from services.kernel.migrate import upgrade

    url = f"sqlite:///{var_dir / 'cn.db'}"
    upgrade(url)
    settings = settings_for("cn-hekou", var_dir, url)
    app, runtime = app_for(settings)
    register(runtime, "vn-kimthanh", partner_url, json.loads(partner_jwk))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def ledger_count(url: str, kinds: tuple[str, ...]) -> tuple[int, int]:
    """(exchange events written, of them in the ledger) in the SQLite database at `url`."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    marks = ",".join(f"'{k}'" for k in kinds)
    with engine.connect() as conn:
        written = conn.execute(text(f"SELECT count(*) FROM outbox_events WHERE type IN ({marks})")).scalar() or 0
        stored = conn.execute(text(f"SELECT count(*) FROM ledger_entries WHERE event_id IN (SELECT id FROM "
                                   f"outbox_events WHERE type IN ({marks}))")).scalar() or 0  # fmt: skip
    engine.dispose()
    return int(written), int(stored)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--consignments", type=int, default=50)
    parser.add_argument("--receiver", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--var-dir", default="", help=argparse.SUPPRESS)
    parser.add_argument("--partner-url", default="", help=argparse.SUPPRESS)
    parser.add_argument("--partner-jwk", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.receiver:
        receiver(args.port, Path(args.var_dir), args.partner_url, args.partner_jwk)
        return

    import uvicorn

    from services.exchange import service
    from services.exchange.models import ExchangeMessage
    from services.exchange.registry import Outbound
    from services.kernel.database import unit_of_work
    from services.kernel.migrate import upgrade

    tmp = Path(tempfile.mkdtemp(prefix="smartgate-bench-exchange-"))
    (tmp / "vn").mkdir()
    (tmp / "cn").mkdir()
    vn_url = f"sqlite:///{tmp / 'vn' / 'vn.db'}"
    upgrade(vn_url)
    vn_settings = settings_for("vn-kimthanh", tmp / "vn", vn_url)
    vn_app, vn = app_for(vn_settings)
    vn_port, cn_port = free_port(), free_port()
    server = uvicorn.Server(uvicorn.Config(vn_app, host="127.0.0.1", port=vn_port, log_level="warning",
                                           access_log=False))  # fmt: skip
    threading.Thread(target=server.run, daemon=True).start()
    ex = vn.extras["exchange"]
    cn_proc = start_server(
        [sys.executable, __file__, "--receiver", "--port", str(cn_port), "--var-dir", str(tmp / "cn"),
         "--partner-url", f"http://127.0.0.1:{vn_port}", "--partner-jwk", json.dumps(ex.signer.public_jwk())],
        env={"PYTHONPATH": str(Path(__file__).resolve().parent.parent)}, port=cn_port, timeout=60,
    )  # fmt: skip
    try:
        cn_base = f"http://127.0.0.1:{cn_port}"
        cn_key = httpx.get(cn_base + "/api/v1/exchange/public-key", timeout=5).json()["keys"][0]
        register(vn, "cn-hekou", cn_base, cn_key)
        dispatcher = vn.extras["exchange.dispatcher"]
        n = args.messages

        # Warm both paths (connections, first imports), not counted.
        with unit_of_work(vn.sessions) as session:
            service.queue(session, ex, Outbound("controlResult", "WARM-0", "cn-hekou", {"note": "warm"}))
        dispatcher.run_once()

        # End to end: sign and queue, then the dispatcher pushes until every message is acknowledged.
        started = time.perf_counter()
        with unit_of_work(vn.sessions) as session:
            for i in range(n):
                service.queue(session, ex, Outbound("controlResult", f"VN-BENCH-{i % args.consignments}",
                                                    "cn-hekou", {"note": f"message {i}", "n": i}))  # fmt: skip
        queued = time.perf_counter() - started
        while dispatcher.run_once():
            pass
        elapsed = time.perf_counter() - started
        with unit_of_work(vn.read_sessions) as session:
            rows = list(session.query(ExchangeMessage).filter(ExchangeMessage.direction == "out",
                                                               ExchangeMessage.correlation_id != "WARM-0"))  # fmt: skip
            states = {r.state for r in rows}
            latencies = [(r.acknowledged_at - r.created_at).total_seconds() * 1000 for r in rows if r.acknowledged_at]
            token = rows[0].jws
        assert states == {"acknowledged"}, states
        assert len(latencies) == n

        # Both ledgers: every exchange event appended (the relays and provenance run in the two processes).
        vn.relay.notify()
        deadline = time.monotonic() + 120
        sides = {
            "vn": (vn_url, ("exchange.message_sent", "exchange.receipt_received")),
            "cn": (f"sqlite:///{tmp / 'cn' / 'cn.db'}", ("exchange.message_received", "exchange.receipt_sent")),
        }
        while time.monotonic() < deadline:
            counts = {k: ledger_count(url, kinds) for k, (url, kinds) in sides.items()}
            if all(w >= 2 * n and s == w for w, s in counts.values()):
                break
            time.sleep(0.1)
        ledgered = time.perf_counter() - started

        # The same JWS bytes, POSTed bare between the same two processes (one at a time).
        bare: list[float] = []
        with httpx.Client(timeout=10) as client:
            client.post(cn_base + "/bench/bare", content=token, headers={"content-type": "application/jose"})
            bare_started = time.perf_counter()
            for _ in range(n):
                t0 = time.perf_counter()
                client.post(cn_base + "/bench/bare", content=token, headers={"content-type": "application/jose"})
                bare.append((time.perf_counter() - t0) * 1000)
            bare_elapsed = time.perf_counter() - bare_started

        # The receiving side alone: fresh signed messages POSTed to its inbox one at a time (verify, check, store,
        # effect, signed receipt, ledger events written), without the sender's queue and records.
        from services.exchange import envelope
        from services.kernel.database import utcnow

        inbox: list[float] = []
        with httpx.Client(timeout=10) as client:
            for i in range(min(n, 200)):
                body = envelope.make(sender="vn-kimthanh", recipient="cn-hekou", type="controlResult",
                                     correlation_id=f"VN-INBOX-{i}", payload={"note": "direct"},
                                     created_at=utcnow())  # fmt: skip
                signed = ex.signer.sign(envelope.canonical(body))
                t0 = time.perf_counter()
                answer = client.post(cn_base + "/api/v1/exchange/inbox", content=signed,
                                     headers={"content-type": "application/jose"})  # fmt: skip
                inbox.append((time.perf_counter() - t0) * 1000)
                assert answer.status_code == 200, answer.text

        e2e_rate, bare_rate = n / elapsed, n / bare_elapsed
        print(f"exchange: {n} messages, {args.consignments} consignments, SQLite on both sides, one CPU run")
        print(
            f"  end to end (sign, push, verify, store, receipt):  {e2e_rate:8.1f} msg/s   "
            f"latency p50 {percentile(latencies, 0.5):7.1f} ms  p99 {percentile(latencies, 0.99):7.1f} ms"
        )
        print(f"    of which signing and queueing {queued:.2f} s, pushing {elapsed - queued:.2f} s")
        print(
            f"  ... and every event in both ledgers:              {n / ledgered:8.1f} msg/s   ({ledgered:.2f} s; "
            f"ledgers {counts})"
        )
        print(
            f"  bare HTTP POST of the same JWS bytes:             {bare_rate:8.1f} msg/s   "
            f"latency p50 {percentile(bare, 0.5):7.1f} ms  p99 {percentile(bare, 0.99):7.1f} ms"
        )
        print(
            f"  the receiving side alone (inbox, one at a time):  {1000 / statistics.mean(inbox):8.1f} msg/s   "
            f"latency p50 {percentile(inbox, 0.5):7.1f} ms  p99 {percentile(inbox, 0.99):7.1f} ms"
        )
        print(f"  ratio bare / end to end: {bare_rate / e2e_rate:.1f}x")
        print(
            "  note: end-to-end latency counts from queueing, so it includes the wait behind earlier messages "
            "of the batch (one message per consignment in flight at a time); the bare latency is one request's."
        )
    finally:
        server.should_exit = True
        stop_server(cn_proc)
        vn.extras["exchange.dispatcher"].close()
        subprocess.run(["rm", "-rf", str(tmp)], check=False)


if __name__ == "__main__":
    main()
