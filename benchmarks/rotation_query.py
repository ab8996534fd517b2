"""The rotation query that picks the officer for a yellow or red filing: today's (active keys only, a semi-join on
api_keys) against the baseline measured in the same run (the roster alone, as before revoked keys were filtered).

Usage: python benchmarks/rotation_query.py [--officers 50] [--traders 2000] [--queries 1000] [--rounds 5]
PostgreSQL from SMARTGATE_BENCH_PG_URL (default postgresql+psycopg://postgres@127.0.0.1:5432/postgres: a database of
this run is created there and dropped after); SQLite in a temporary file. Prints the best round of each, per query
(each query in its own transaction, rolled back, as a filing's lock is), and the ratio new / baseline.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from services.declarations import routing
from services.declarations.models import OfficerDuty
from services.kernel.auth import Role, create_key, get_or_create_organisation
from services.kernel.database import make_engine, make_sessionmaker, unit_of_work
from services.kernel.migrate import upgrade


def measure(url: str, *, officers: int, traders: int, queries: int, rounds: int) -> tuple[float, float]:
    """Best seconds per query of the baseline and of today's rotation query."""
    upgrade(url)
    engine = make_engine(url)
    with unit_of_work(make_sessionmaker(engine)) as session:
        for _ in range(officers):
            row, _ = create_key(session, secret_key="b" * 40, role=Role.officer)
            session.add(OfficerDuty(officer_key_id=row.id, on_duty=True, assigned_count=0))
        organisation = get_or_create_organisation(session, name="Benchmark traders")
        for _ in range(traders):
            create_key(session, secret_key="b" * 40, role=Role.trader, organisation=organisation)
    if engine.dialect.name == "postgresql":  # what autovacuum does on a live database: plan on real statistics
        with engine.connect() as conn:
            conn.execute(text("ANALYZE api_keys"))
            conn.execute(text("ANALYZE officer_duty"))
            conn.commit()
    duty = routing._DUTY
    baseline = (
        select(duty.c.officer_key_id)
        .where(duty.c.on_duty.is_(True))
        .order_by(duty.c.last_assigned_at.is_not(None), duty.c.last_assigned_at, duty.c.officer_key_id)
        .limit(1)
    )
    today = routing._ROTATION
    if engine.dialect.name == "postgresql":
        baseline, today = baseline.with_for_update(skip_locked=True), routing._ROTATION_SKIP_LOCKED
    best = {"baseline": float("inf"), "today": float("inf")}
    for _ in range(rounds):
        for name, query in (("baseline", baseline), ("today", today)):
            with engine.connect() as conn:
                started = time.perf_counter()
                for _ in range(queries):
                    conn.execute(query).scalar()
                    conn.rollback()
                best[name] = min(best[name], (time.perf_counter() - started) / queries)
    engine.dispose()
    return best["baseline"], best["today"]


def report(backend: str, baseline: float, today: float) -> None:
    print(f"{backend:10s} baseline {baseline * 1e6:7.0f} us/query  today {today * 1e6:7.0f} us/query  "
          f"today/baseline {today / baseline:.2f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--officers", type=int, default=50)
    parser.add_argument("--traders", type=int, default=2000, help="trader keys besides the officers'")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    sizes = {"officers": args.officers, "traders": args.traders, "queries": args.queries, "rounds": args.rounds}
    with tempfile.TemporaryDirectory() as tmp:
        report("sqlite", *measure(f"sqlite:///{tmp}/rotation.db", **sizes))
    server = os.environ.get("SMARTGATE_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    admin = create_engine(make_url(server).set(database="postgres"), isolation_level="AUTOCOMMIT")
    name = f"sg_bench_rotation_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        url = make_url(server).set(database=name).render_as_string(hide_password=False)
        report("postgresql", *measure(url, **sizes))
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
