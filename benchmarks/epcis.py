"""EPCIS capture and query: events captured per second (schema + CBV + GS1 validation, event hash, insert with the
EPC index and the ledger's outbox rows) against a bare insert of the same JSON documents, then query latency with
`--query-events` events stored, in one run.

Usage: python benchmarks/epcis.py [--events 5000] [--query-events 100000] [--fill bulk|capture]
                                  [--backend sqlite|postgresql]
PostgreSQL uses SMARTGATE_BENCH_PG_URL (default postgresql+psycopg://postgres@127.0.0.1:5432/postgres as admin).
Documents of 1,000 events, one transaction each, through the service layer (no HTTP). The issue's figure is at
1,000,000 stored events (`--query-events 1000000`).

Filling to `--query-events`: `--fill capture` (the capture code, `service.store`, a document of 1,000 events per
transaction: about an hour for 1M on a 2-core machine) or `--fill bulk` (the default): the same stored rows built
by the same function the capture uses (`service.prepare`: eventID, recordTime, CBV 2.0 hash, bizStep, location,
EPC index rows, the ledger's outbox row), inserted with the same statements in transactions of 20,000 events, with
neither the schema validation (the fill's generated events are valid: the first `--events` are validated) nor the
look-up of already stored eventIDs (generated events are all distinct; their hash is their id).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, Column, MetaData, String, Table, create_engine, insert, text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from services.kernel.auth import Principal, Role
from services.kernel.database import make_engine, make_sessionmaker, table_of, unit_of_work
from services.kernel.migrate import upgrade
from services.kernel.outbox import record_events
from services.traceability import service, validation
from services.traceability.models import EpcisEvent, EpcisEventEpc
from tests.services.traceability.generate import CONTEXT, document, event

DOC = 1000
PRINCIPAL = Principal(key_id="bench", role=Role.producer, organisation_id=None)


def database(backend: str, tmp: Path) -> tuple[str, Any]:
    if backend == "sqlite":
        url = f"sqlite:///{tmp / 'bench.db'}"
        upgrade(url)
        return url, None
    admin_url = os.environ.get("SMARTGATE_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    name = f"sg_bench_epcis_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    return url, (admin, name)


def capture(sessions: Any, events: list[dict[str, Any]], *, check: bool = True) -> None:
    for start in range(0, len(events), DOC):
        doc = document(events[start : start + DOC])
        if check:
            assert validation.document_errors(doc) == []
        with unit_of_work(sessions) as session:
            outcome = service.store(
                session, doc["epcisBody"]["eventList"], CONTEXT, capture_id=None, principal=PRINCIPAL
            )
            assert not outcome.errors


BULK = 20 * DOC


def bulk_fill(sessions: Any, events: list[dict[str, Any]]) -> None:
    """Store `events` as `service.store` would (same rows, same statements), without validation or the duplicate
    look-up, in one transaction."""
    now = service.utcnow()
    prepared = [service.prepare(e, CONTEXT, capture_id=None, actor=PRINCIPAL.actor, now=now) for e in events]
    with unit_of_work(sessions) as session:
        session.execute(insert(table_of(EpcisEvent)), [p.row for p in prepared])
        session.execute(insert(table_of(EpcisEventEpc)), [e for p in prepared for e in p.epcs])
        record_events(session, [p.outbox for p in prepared])


def bare(engine: Any, events: list[dict[str, Any]]) -> None:
    table = Table("bench_bare", MetaData(), Column("id", String(36), primary_key=True), Column("body", JSON))
    table.create(engine, checkfirst=True)
    for start in range(0, len(events), DOC):
        with engine.begin() as conn:
            conn.execute(insert(table), [{"id": uuid.uuid4().hex, "body": e} for e in events[start : start + DOC]])


def unique(rng: random.Random, count: int) -> list[dict[str, Any]]:
    events = [event(rng) for _ in range(count)]
    for e in events:
        e.pop("eventID", None)  # the hash is the id: generated events are all distinct
    return events


def latency(sessions: Any, q: service.Query, runs: int = 30) -> tuple[float, float, int]:
    times, found = [], 0
    for _ in range(runs):
        started = time.perf_counter()
        with unit_of_work(sessions) as session:
            found = len(service.query(session, q, after=None, limit=30))
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95) - 1], found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--query-events", type=int, default=100_000)
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--fill", choices=["bulk", "capture"], default="bulk")
    args = parser.parse_args()
    rng = random.Random(1)
    with tempfile.TemporaryDirectory() as tmp:
        url, cleanup = database(args.backend, Path(tmp))
        engine = make_engine(url)
        sessions = make_sessionmaker(engine)
        try:
            events = unique(rng, args.events)
            started = time.perf_counter()
            bare(engine, events)
            bare_rate = len(events) / (time.perf_counter() - started)
            started = time.perf_counter()
            capture(sessions, events)
            capture_rate = len(events) / (time.perf_counter() - started)
            print(
                f"{args.backend}: bare insert {bare_rate:,.0f} events/s; capture {capture_rate:,.0f} events/s "
                f"(validate, hash, index, outbox): {bare_rate / capture_rate:.1f}x the bare insert's cost"
            )
            remaining = args.query_events - len(events)
            fill_started = time.perf_counter()
            while remaining > 0:
                batch = unique(rng, min(remaining, BULK if args.fill == "bulk" else 10 * DOC))
                if args.fill == "bulk":
                    bulk_fill(sessions, batch)
                else:
                    capture(sessions, batch, check=False)
                remaining -= len(batch)
                done = args.query_events - remaining
                if done % 100_000 < len(batch):
                    print(f"  {done:,} events, {time.perf_counter() - fill_started:,.0f} s", flush=True)
            elapsed = time.perf_counter() - fill_started
            print(f"filled to {args.query_events:,} events ({args.fill}) in {elapsed:,.0f} s")
            probe = events[0]
            epc = next(e for e in events if e.get("epcList"))["epcList"][0]
            from services.traceability import identifiers

            queries = {
                "EQ_bizStep=shipping (first page of 30)": service.Query(biz_steps=("shipping",)),
                "MATCH_epc (one EPC)": service.Query(epcs=(identifiers.normalise(epc),)),
                "GE/LT_eventTime one day": service.Query(
                    ge_event_time=service.dt.datetime(2026, 6, 1, tzinfo=service.dt.UTC),
                    lt_event_time=service.dt.datetime(2026, 6, 2, tzinfo=service.dt.UTC),
                ),
                "EQ_bizLocation + EQ_bizStep": service.Query(
                    biz_locations=(identifiers.normalise(probe["bizLocation"]["id"]),)
                    if probe.get("bizLocation")
                    else (),
                    biz_steps=("receiving",),
                ),
            }
            for name, q in queries.items():
                p50, p95, found = latency(sessions, q)
                print(f"  query {name}: p50 {p50:.1f} ms, p95 {p95:.1f} ms ({found} events)")
        finally:
            engine.dispose()
            if cleanup is not None:
                admin, name = cleanup
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
