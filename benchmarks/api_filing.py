"""Filing throughput: the real declarations endpoint vs a bare one-row-insert FastAPI endpoint, same database.

Usage: python benchmarks/api_filing.py [--seconds 20] [--clients 16] [--backend sqlite|postgresql|both]
PostgreSQL uses SMARTGATE_BENCH_PG_URL (default postgresql+psycopg://postgres@127.0.0.1:5432/postgres as admin).
Prints req/s and p50/p95/p99 for both, and the ratio (target: filing >= 50 % of bare, p99 <= 150 ms).
"""

from __future__ import annotations

import argparse
import copy
import json
import secrets
import sys
import tempfile
import uuid
from decimal import Decimal
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._harness import free_port, run_load, start_server, stop_server  # noqa: E402
from services.declarations.schemas import EXAMPLE  # noqa: E402
from services.kernel.auth import Role, create_key, get_or_create_organisation  # noqa: E402
from services.kernel.database import make_engine, make_sessionmaker, unit_of_work  # noqa: E402
from services.kernel.migrate import upgrade  # noqa: E402

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


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


def bench(backend: str, *, seconds: float, clients: int, services: str, workers: int = 1) -> tuple[float, float]:
    """Run both endpoints on one backend; returns (ratio, filing p99 ms)."""
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        url, dbname = database(backend, tmp)
        secret = secrets.token_urlsafe(40)
        try:
            upgrade(url)
            engine = make_engine(url)
            with unit_of_work(make_sessionmaker(engine)) as session:
                org = get_or_create_organisation(session, name="Bench Trading")
                _, key = create_key(session, secret_key=secret, role=Role.trader, organisation=org)
            engine.dispose()
            env = {
                "SMARTGATE_DATABASE_URL": url,
                "SMARTGATE_SECRET_KEY": secret,
                "SMARTGATE_ENVIRONMENT": "test",
                "SMARTGATE_VAR_DIR": str(tmp / "var"),
                "SMARTGATE_LOG_LEVEL": "WARNING",
                "SMARTGATE_SERVICES": services,
            }
            body = filing_body()
            python = sys.executable
            results = {}
            for name, args, path, headers_of in (
                (
                    "bare insert",
                    [
                        python,
                        "-m",
                        "uvicorn",
                        "benchmarks.bare_app:app",
                        "--log-level",
                        "warning",
                        "--workers",
                        str(workers),
                    ],
                    "/rows",
                    lambda i: {"content-type": "application/json"},
                ),
                (
                    "declaration filing",
                    [python, "-m", "api.cli", "serve", "--workers", str(workers)],
                    "/api/v1/declarations?submit=true",
                    lambda i: {
                        "content-type": "application/json",
                        "authorization": f"Bearer {key}",
                        "idempotency-key": f"bench-{uuid.uuid4().hex}",
                    },
                ),
            ):
                port = free_port()
                proc = start_server([*args, "--host", "127.0.0.1", "--port", str(port)], env=env, port=port)
                try:
                    res = run_load(
                        f"http://127.0.0.1:{port}",
                        lambda i, p=path, h=headers_of: ("POST", p, h(i), body),
                        clients=clients,
                        seconds=seconds,
                    )
                finally:
                    stop_server(proc)
                results[name] = res
                print(f"[{backend}] {res.line(name)}")
        finally:
            drop(dbname)
    ratio = results["declaration filing"].rps / results["bare insert"].rps
    p99 = results["declaration filing"].pct(99)
    verdict = "OK" if ratio >= 0.5 and p99 <= 150 else "BELOW TARGET"
    print(f"[{backend}] filing / bare = {ratio:.2f} (target >= 0.50); filing p99 {p99:.1f} ms (<= 150) -> {verdict}")
    return ratio, p99


def main() -> None:
    """Parse arguments and run."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--workers", type=int, default=1, help="server processes for both apps (PostgreSQL only)")
    parser.add_argument(
        "--services",
        default="provenance,inspection",
        help="other services in the same process (default: all, as `make run`; '' = declarations alone, as one "
        "process of the distributed deployment)",
    )
    args = parser.parse_args()
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    for backend in backends:
        print(f"[{backend}] platform services besides declarations: {args.services or 'none'}")
        bench(backend, seconds=args.seconds, clients=args.clients, services=args.services, workers=args.workers)


if __name__ == "__main__":
    main()
