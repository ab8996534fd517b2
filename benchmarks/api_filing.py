"""Filing throughput: the real declarations endpoint vs a bare one-row-insert FastAPI endpoint, same database.

Usage: python benchmarks/api_filing.py [--seconds 30] [--rounds 3] [--clients 16] [--backend sqlite|postgresql|both]
PostgreSQL uses SMARTGATE_BENCH_PG_URL (default postgresql+psycopg://postgres@127.0.0.1:5432/postgres as admin).
Prints req/s and p50/p95/p99 for both, and the ratio (target: filing >= 50 % of bare, p99 <= 150 ms).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import secrets
import subprocess
import sys
import tempfile
import uuid
from decimal import Decimal
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._harness import (
    LoadResult,
    free_port,
    run_load,
    start_server,
    stop_server,
    wait_quiet,
)
from services.declarations.schemas import EXAMPLE
from services.kernel.auth import Role, create_key, get_or_create_organisation
from services.kernel.database import make_engine, make_sessionmaker, unit_of_work
from services.kernel.migrate import upgrade

PG_ADMIN = os.environ.get("SMARTGATE_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def filing_body() -> bytes:
    """A declaration with 10 goods items and 1 container."""
    body = copy.deepcopy(EXAMPLE)
    item = body["items"][0]
    items = []
    for i in range(10):
        line = dict(item, description=f"Fresh lychees, grade {i + 1}", gross_mass_kg="1300", net_mass_kg="1200")
        items.append(line)
    body["items"] = items
    body["total_gross_mass_kg"] = str(Decimal("1300") * 10)
    body["total_net_mass_kg"] = str(Decimal("1200") * 10)
    return json.dumps(body).encode()


def database(backend: str, tmp: Path) -> tuple[str, str | None]:
    """A fresh database URL for the run (and the PostgreSQL database name to drop after)."""
    if backend == "sqlite":
        return f"sqlite:///{tmp / 'bench.db'}", None
    admin_url = PG_ADMIN
    name = f"sg_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False), name


def drop(name: str | None) -> None:
    """Drop a benchmark database."""
    if name:
        admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def migrate_with_trader_key(url: str, secret: str) -> str:
    """Migrate the database at `url` and make the trader key the load uses (returned in clear)."""
    upgrade(url)
    engine = make_engine(url)
    with unit_of_work(make_sessionmaker(engine)) as session:
        org = get_or_create_organisation(session, name="Bench Trading")
        _, key = create_key(session, secret_key=secret, role=Role.trader, organisation=org)
    engine.dispose()
    return key


def server_env(url: str, secret: str, var_dir: Path) -> dict[str, str]:
    """The environment of a platform process under load."""
    return {
        "SMARTGATE_DATABASE_URL": url,
        "SMARTGATE_SECRET_KEY": secret,
        # The embedded default's environment (`make run`): models and the anchor chain load at start.
        "SMARTGATE_ENVIRONMENT": "development",
        "SMARTGATE_VAR_DIR": str(var_dir),
        "SMARTGATE_LOG_LEVEL": "WARNING",
        # 16 clients on one key measure capacity, not the per-key rate limit (which would throttle them).
        "SMARTGATE_RATE_LIMIT_PER_MINUTE": "0",
    }


def bench(
    backend: str, *, seconds: float, clients: int, services: str, workers: int = 1, rounds: int = 3
) -> tuple[float, float]:
    """Run both endpoints on one backend, alternating in `rounds`; returns (ratio, filing p99 ms)."""
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        url, dbname = database(backend, tmp)
        secret = secrets.token_urlsafe(40)
        servers: list[subprocess.Popen[bytes]] = []
        try:
            key = migrate_with_trader_key(url, secret)
            env = server_env(url, secret, tmp / "var")
            # Declarations always: the benchmark files declarations.
            env["SMARTGATE_SERVICES"] = ",".join(["declarations", *[x for x in services.split(",") if x.strip()]])
            body = filing_body()
            python = sys.executable
            endpoints = {
                "bare insert": (
                    [python, "-m", "uvicorn", "benchmarks.bare_app:app", "--log-level", "warning",
                     "--workers", str(workers)],
                    "/rows",
                    lambda i: {"content-type": "application/json"},
                ),
                "declaration filing": (
                    [python, "-m", "api.cli", "serve", "--workers", str(workers)],
                    "/api/v1/declarations?submit=true",
                    lambda i: {
                        "content-type": "application/json",
                        "authorization": f"Bearer {key}",
                        "idempotency-key": f"bench-{uuid.uuid4().hex}",
                    },
                ),
            }  # fmt: skip
            running: dict[str, tuple[str, subprocess.Popen[bytes]]] = {}
            for name, (args, _path, _headers) in endpoints.items():
                port = free_port()
                proc = start_server([*args, "--host", "127.0.0.1", "--port", str(port)], env=env, port=port)
                servers.append(proc)
                running[name] = (f"http://127.0.0.1:{port}", proc)
            pids = [p.pid for p in servers]
            results: dict[str, LoadResult] = {}
            # The machine's speed drifts (shared cores): short alternating windows put both under the same drift.
            for n in range(rounds):
                for name, (_args, path, headers_of) in endpoints.items():
                    base_url, proc = running[name]
                    wait_quiet(pids)
                    res = run_load(
                        base_url,
                        lambda i, p=path, h=headers_of: ("POST", p, h(i), body),
                        clients=clients,
                        seconds=seconds / rounds,
                        warmup=3.0 if n == 0 else 0.5,
                        server_pid=proc.pid,
                    )
                    print(f"[{backend}] round {n + 1}: {res.line(name)}")
                    results[name] = results[name] + res if name in results else res
        finally:
            for proc in servers:
                stop_server(proc)
            drop(dbname)
    bare, filing = results["bare insert"], results["declaration filing"]
    ratio = filing.rps / bare.rps
    p99 = filing.pct(99)
    print(f"[{backend}] all rounds: {bare.line('bare insert')}")
    print(f"[{backend}] all rounds: {filing.line('declaration filing')}")
    verdict = "OK" if ratio >= 0.5 and p99 <= 150 else "BELOW TARGET"
    print(
        f"[{backend}] filing / bare = {ratio:.2f} req/s (target >= 0.50); filing p99 {p99:.1f} ms (<= 150) -> "
        f"{verdict}; server CPU per request: filing {filing.cpu_ms_per_request:.2f} ms, bare "
        f"{bare.cpu_ms_per_request:.2f} ms ({bare.cpu_ms_per_request / filing.cpu_ms_per_request:.2f})"
    )
    return ratio, p99


def main() -> None:
    """Parse arguments and run."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=30, help="measured time per endpoint, over all rounds")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--workers", type=int, default=1, help="server processes for both apps (PostgreSQL only)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating bare/filing windows sharing --seconds")
    parser.add_argument(
        "--services",
        default="provenance,inspection,webhooks",
        help="other services in the same process (default: all, as `make run`; '' = declarations alone, as one "
        "process of the distributed deployment)",
    )
    args = parser.parse_args()
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    for backend in backends:
        print(f"[{backend}] platform services besides declarations: {args.services or 'none'}")
        bench(
            backend,
            seconds=args.seconds,
            clients=args.clients,
            services=args.services,
            workers=args.workers,
            rounds=args.rounds,
        )


if __name__ == "__main__":
    main()
