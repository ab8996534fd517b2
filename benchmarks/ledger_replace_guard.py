"""What the SQLite ledger's BEFORE INSERT guards (refusing INSERT OR REPLACE over a stored row, issue 13) cost an
append: the same entries appended to a ledger with the guards and to one without them (the baseline: the schema
before the guards), alternating, in the same run.

Usage: python benchmarks/ledger_replace_guard.py [--entries 20000] [--batch 500] [--rounds 3]
Prints the median of the rounds for each and the ratio guarded / baseline.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ledger import storage
from ledger.checkpoint import Signer
from ledger.writer import Event, LedgerWriter


def events(n: int) -> list[Event]:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    return [
        Event(
            subject=f"DECL-{i % 1000:06d}",
            event_type="declaration.submitted",
            event_id=f"evt-{i:09d}",
            payload=(f'{{"n":{i},"pad":"' + "x" * 200 + '"}').encode(),
            time=t0 + timedelta(seconds=i),
        )
        for i in range(n)
    ]


def append_seconds(batch_events: list[Event], batch: int, *, guarded: bool) -> float:
    with tempfile.TemporaryDirectory() as directory:
        engine = storage.sqlite_engine(f"{directory}/ledger.sqlite")
        with engine.begin() as conn:
            storage.install_schema(conn)
            if not guarded:
                for table in storage.TABLES:
                    conn.exec_driver_sql(f"DROP TRIGGER {table.name}_no_replace")
        writer = LedgerWriter(engine, signer=Signer.from_seed("bench", b"\x01" * 32), origin="bench/ledger")
        start = time.perf_counter()
        for lo in range(0, len(batch_events), batch):
            writer.append(batch_events[lo : lo + batch])
        elapsed = time.perf_counter() - start
        engine.dispose()
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    evs = events(args.entries)
    runs: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(args.rounds):
        for guarded in (False, True):
            runs[guarded].append(append_seconds(evs, args.batch, guarded=guarded))
    base, guarded = statistics.median(runs[False]), statistics.median(runs[True])
    print(f"SQLite append of {args.entries:,} entries in batches of {args.batch}, median of {args.rounds} rounds")
    print(f"  baseline (no REPLACE guard): {base:.3f} s  ({args.entries / base:,.0f} entries/s)")
    print(f"  with the guard:              {guarded:.3f} s  ({args.entries / guarded:,.0f} entries/s)")
    print(f"  ratio guarded / baseline:    {guarded / base:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
