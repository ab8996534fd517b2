"""Webhook dispatch: deliveries/s through the real dispatcher (claim, sign, POST, record, on the database) vs the
same signed POSTs sent by plain httpx threads to the same receiver, in the same run.

Usage: python benchmarks/webhook_delivery.py [--deliveries 2000] [--endpoints 4] [--backend sqlite|postgresql]
PostgreSQL uses SMARTGATE_BENCH_PG_URL (default postgresql+psycopg://postgres@127.0.0.1:5432/postgres as admin).
The receiver is a threaded HTTP server on loopback answering 204 at once, so both figures are the sender's cost.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.server
import os
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from services.kernel.auth import get_or_create_organisation
from services.kernel.database import make_engine, make_sessionmaker, reader, unit_of_work
from services.kernel.migrate import upgrade
from services.kernel.outbox import Event
from services.webhooks import service, signing
from services.webhooks.delivery import Dispatcher, body_of
from services.webhooks.settings import WebhookSettings


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(204)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def database(backend: str, tmp: Path) -> tuple[str, object]:
    if backend == "sqlite":
        url = f"sqlite:///{tmp / 'bench.db'}"
        upgrade(url)
        return url, None
    admin_url = os.environ.get("SMARTGATE_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    name = f"sg_bench_wh_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    return url, (admin, name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=2000)
    parser.add_argument("--endpoints", type=int, default=4)
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    args = parser.parse_args()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"

    with tempfile.TemporaryDirectory() as tmp:
        db_url, cleanup = database(args.backend, Path(tmp))
        engine = make_engine(db_url)
        sessions, read_sessions = make_sessionmaker(engine), make_sessionmaker(reader(engine))
        settings = WebhookSettings(environment="test", secret_key="x" * 40, database_url=db_url,
                                   webhook_concurrency=args.endpoints)  # fmt: skip
        with unit_of_work(sessions) as session:
            org = get_or_create_organisation(session, name="Bench Trader").id
            endpoints = [
                service.create_endpoint(session, organisation_id=org, url=f"{url}/{i}", event_types=[],
                                        description="", actor="bench", allow_private=True,
                                        max_endpoints=args.endpoints)
                for i in range(args.endpoints)
            ]  # fmt: skip
            secret = endpoints[0].secret
        per_endpoint = args.deliveries // args.endpoints
        now = dt.datetime.now(dt.UTC)
        events = [Event(id=str(uuid.uuid4()), type="declaration.cleared", subject="d", occurred_at=now,
                        payload={"declaration_id": str(uuid.uuid4()), "organisation_id": org, "status": "cleared",
                                 "number": f"KT-2026-{i:06d}", "version": 1, "reason": "documents in order"})
                  for i in range(per_endpoint)]  # fmt: skip
        for start in range(0, len(events), 500):
            with unit_of_work(sessions) as session:
                service.enqueue(session, events[start : start + 500])
        total = per_endpoint * args.endpoints

        # Baseline: the same bodies, signed, POSTed by one thread per endpoint with a keep-alive httpx client.
        body = body_of(service.message("declaration.cleared", now, service.event_data(events[0])))

        def raw(i: int) -> None:
            with httpx.Client(timeout=10) as client:
                for _ in range(per_endpoint):
                    headers = signing.headers([secret], str(uuid.uuid4()), int(time.time()), body)
                    client.post(f"{url}/{i}", content=body, headers={**headers, "content-type": "application/json"})

        t0 = time.perf_counter()
        with ThreadPoolExecutor(args.endpoints) as pool:
            list(pool.map(raw, range(args.endpoints)))
        raw_s = time.perf_counter() - t0

        dispatcher = Dispatcher(sessions, settings, read_sessions=read_sessions)
        t0, cpu0 = time.perf_counter(), time.process_time()
        sent = 0
        while (n := dispatcher.run_once()) > 0:
            sent += n
        disp_s, disp_cpu = time.perf_counter() - t0, time.process_time() - cpu0
        with engine.connect() as conn:
            delivered = conn.execute(
                text("SELECT count(*) FROM webhook_deliveries WHERE status = 'delivered'")
            ).scalar()
        engine.dispose()
        if cleanup is not None:
            admin, name = cleanup  # type: ignore[misc]
            with admin.connect() as conn:  # type: ignore[attr-defined]
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    server.shutdown()
    print(
        f"[{args.backend}] plain signed POSTs:   {total / raw_s:8.1f} /s  ({total} in {raw_s:.2f} s, "
        f"{args.endpoints} threads)"
    )
    print(
        f"[{args.backend}] dispatcher deliveries: {total / disp_s:8.1f} /s  ({delivered} of {total} delivered in "
        f"{disp_s:.2f} s; CPU {disp_cpu / total * 1000:.2f} ms per delivery)"
    )
    print(f"[{args.backend}] dispatcher / plain = {raw_s / disp_s:.2f}")
    if delivered != total:
        sys.exit(f"only {delivered} of {total} were delivered")


if __name__ == "__main__":
    main()
