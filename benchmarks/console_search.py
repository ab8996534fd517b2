"""The console's search box and lists: each list filter against the indexed container look-up measured in the same
run (number, container, plate and trader are index look-ups: plate and trader through declaration_search_keys).

Usage: python benchmarks/console_search.py [--declarations 20000] [--queries 50] [--rounds 3] [--no-pg]
PostgreSQL from SMARTGATE_BENCH_PG_URL (default postgresql+psycopg://postgres@127.0.0.1:5432/postgres: a database of
this run is created there and dropped after); SQLite in a temporary file. Prints the best round of each filter, per
query (a page of 50, as the console asks), the ratio to the container baseline, and the queue's "documents just
provided" look-up for 200 declarations.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from services.declarations import repository
from services.declarations.models import Declaration, DeclarationTransition
from services.declarations.schemas import EXAMPLE
from services.kernel.auth import get_or_create_organisation
from services.kernel.database import make_engine, make_sessionmaker, unit_of_work
from services.kernel.migrate import upgrade


def _fill(sessions: object, n: int) -> list[str]:
    ids = []
    with unit_of_work(sessions) as session:  # type: ignore[arg-type]
        org = get_or_create_organisation(session, name="Benchmark traders")
        session.flush()
        now = dt.datetime.now(dt.UTC)
        for i in range(n):
            body = copy.deepcopy(EXAMPLE)
            body["transport"]["truck_plate"] = f"24C-{i // 100:03d}.{i % 100:02d}"
            body["consignee"]["name"] = f"Cong ty TNHH {i % 500} Lao Cai"
            body["containers"][0]["number"] = f"BNCH{i:07d}"
            decl = Declaration(
                number=f"BENCH{i:08d}", organisation_id=org.id, status="cleared" if i % 7 else "submitted",
                kind="import", border_gate="KIMTHANH", body=body, body_sha256="0" * 64, created_by="bench",
                created_at=now - dt.timedelta(seconds=i), duties_due_vnd=1000, paid_vnd=0 if i % 3 else 1000,
            )  # fmt: skip
            session.add(decl)
            session.flush()
            repository.add_lookups(session, decl, containers=[body["containers"][0]["number"]], hs_codes=["08109020"])
            action = "provide_documents" if i % 2 else "submit"
            session.add(DeclarationTransition(declaration_id=decl.id, action=action, from_status=None,
                                              to_status=decl.status, actor="bench", version=1))  # fmt: skip
            ids.append(decl.id)
    return ids


def measure(url: str, *, declarations: int, queries: int, rounds: int) -> dict[str, float]:
    """Best seconds per query of each filter."""
    upgrade(url)
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    ids = _fill(sessions, declarations)
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(text("ANALYZE"))
            conn.commit()
    middle = declarations // 2
    plate = repository.plate_key(f"24c {middle // 100:03d} {middle % 100:02d}")
    filters: dict[str, Callable[[], repository.ListFilter]] = {
        "container": lambda: repository.ListFilter(container=f"BNCH{middle:07d}"),
        "number": lambda: repository.ListFilter(number=f"BENCH{middle:08d}"),
        "plate": lambda: repository.ListFilter(plate=plate),
        "trader": lambda: repository.ListFilter(trader="tnhh 42 lao"),
        "unpaid": lambda: repository.ListFilter(unpaid=True),
    }  # fmt: skip
    best = dict.fromkeys([*filters, "just_provided"], float("inf"))
    for _ in range(rounds):
        for name, make in filters.items():
            with unit_of_work(sessions) as session:
                started = time.perf_counter()
                for _ in range(queries):
                    repository.list_page(session, make(), limit=50, cursor=None)
                best[name] = min(best[name], (time.perf_counter() - started) / queries)
        with unit_of_work(sessions) as session:
            started = time.perf_counter()
            for _ in range(queries):
                repository.documents_just_provided(session, ids[:200])
            best["just_provided"] = min(best["just_provided"], (time.perf_counter() - started) / queries)
    engine.dispose()
    return best


def report(backend: str, best: dict[str, float]) -> None:
    base = best["container"]
    for name, seconds in best.items():
        print(f"{backend:10s} {name:14s} {seconds * 1e3:8.2f} ms/query  /container {seconds / base:7.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--declarations", type=int, default=20000)
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-pg", action="store_true", help="SQLite only")
    args = parser.parse_args()
    sizes = {"declarations": args.declarations, "queries": args.queries, "rounds": args.rounds}
    with tempfile.TemporaryDirectory() as tmp:
        report("sqlite", measure(f"sqlite:///{tmp}/search.db", **sizes))
    if args.no_pg:
        return
    server = os.environ.get("SMARTGATE_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    admin = create_engine(make_url(server).set(database="postgres"), isolation_level="AUTOCOMMIT")
    name = f"sg_bench_search_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        url = make_url(server).set(database=name).render_as_string(hide_password=False)
        report("postgresql", measure(url, **sizes))
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
