"""The log as C2SP tiles (not a test): a monitor reads a whole log of 1M entries from the platform's tile endpoints
and, as the baseline measured in the same run, from `python -m http.server` serving the same tiles written to disk.

Run: .venv/bin/python benchmarks/tiles.py [--entries 1000000] [--rounds 2] [--parallel 4] [--workdir DIR]
Target (issue 13 §5): the platform serves the whole log to a monitor at ≥ 50 % of the static server's rate.

The log is built in the platform's SQLite database (migrated as `smartgate migrate` does) with the ledger writer in
batches of 50,000 (synchronous=OFF and no append-only triggers while building, restored before serving: building
is not what is measured), signed with the key the server is then started with. The platform is `smartgate serve
--services provenance` under uvicorn on 127.0.0.1; the static server serves a directory holding `checkpoint`,
`tile/<L>/<N>[.p/<W>]` and `tile/entries/...` files read from the same database. Three clients, each run against
both servers in alternating rounds:

- fetch: every tile and bundle fetched without compression and nothing else (the servers' share): tiles per second;
- monitor: `ledger.monitor.Monitor.check` from the empty tree (fetch every entry bundle and level-0 tile, hash
  every leaf, rebuild the tree, compare the root and the upper tiles), asking for identity: the same bytes from
  both servers; entries verified per second;
- monitor-gz: the same, accepting gzip as `smartgate ledger monitor` does: the platform then gzips the entry
  bundles (the spec's SHOULD; ~3.3x fewer bytes on a real network, pure cost on loopback), the static server not.

It prints per round the rate, the server's CPU time per request, and the ratios platform / static.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from sqlalchemy import create_engine, event

from benchmarks._harness import free_port, start_server, stop_server, tree_cpu_seconds, wait_quiet
from ledger import storage, tiles
from ledger.checkpoint import Signer
from ledger.monitor import Monitor, TileFetcher
from ledger.writer import Event, LedgerWriter
from services.kernel.migrate import upgrade

ORIGIN = "bench.smartgate/ledger"
BATCH = 50_000
# fetch: every tile, no compression, no verification; monitor: Monitor.check asking for identity (the same bytes
# both servers send); monitor-gz: as `smartgate ledger monitor` asks (gzip, identity): the platform gzips bundles.
KINDS = ("fetch", "monitor", "monitor-gz")


def events(start: int, n: int) -> list[Event]:
    """Declaration-like events: uuid-shaped ids over 100,000 subjects (leaves of ~330 bytes, as the platform's)."""
    t0 = datetime(2026, 3, 1, tzinfo=UTC)
    out = []
    for i in range(start, start + n):
        h = hashlib.sha256(i.to_bytes(8, "big")).hexdigest()
        subject = f"{h[:8]}-{h[8:12]}-4{h[13:16]}-8{h[17:20]}-{h[20:32]}"
        out.append(
            Event(
                subject=subject if i % 7 else f"{h[32:40]}-0000-4000-8000-{h[40:52]}",
                event_type="declaration.amended",
                event_id=f"{h[:8]}-{h[8:12]}-7{h[13:16]}-9{h[17:20]}-{h[20:32]}",
                payload=f'{{"declaration_id":"{subject}","n":{i}}}'.encode(),
                time=t0 + timedelta(milliseconds=i),
            )
        )
    return out


def build(url: str, entries: int, signer: Signer) -> float:
    """Append `entries` events through the ledger writer and sign a checkpoint; return the seconds it took."""
    engine = create_engine(url)

    @event.listens_for(engine, "connect")
    def _fast(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.execute("PRAGMA journal_mode=WAL")
        dbapi_conn.execute("PRAGMA synchronous=OFF")

    # Building only: the append-only triggers' per-row probes halve the insert rate; they are back before serving.
    with engine.begin() as conn:
        for stmt in storage.drop_trigger_statements("sqlite"):
            conn.exec_driver_sql(stmt)
    writer = LedgerWriter(engine, signer=signer, origin=ORIGIN)
    t0 = time.perf_counter()
    for start in range(0, entries, BATCH):
        writer.append(events(start, min(BATCH, entries - start)))
        done = min(start + BATCH, entries)
        if done % 200_000 == 0 or done == entries:
            print(f"  built {done:,} entries ({done / (time.perf_counter() - t0):,.0f}/s)", flush=True)
    size, _ = writer.checkpoint()
    assert size == entries
    with engine.begin() as conn:
        for stmt in storage.trigger_statements("sqlite"):
            conn.exec_driver_sql(stmt)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return time.perf_counter() - t0


def write_static(url: str, directory: Path, size: int) -> int:
    """Write the checkpoint, every tile and every entry bundle of the log as files; return how many."""
    engine = create_engine(url)
    count = 0
    with engine.connect() as conn:
        found = storage.get_checkpoint(conn)
        assert found is not None
        (directory / "checkpoint").write_bytes(found[1])
        (directory / "healthz").write_text("ok\n")  # what the harness polls before measuring
        for tile in [*tiles.tiles_for_size(size), *tiles.entry_bundles(0, size)]:
            path = directory / tile.path
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(tiles.read_tile(conn, tile))
            count += 1
    engine.dispose()
    return count


def fetch_all(prefix: str, size: int, parallel: int) -> int:
    """Fetch the checkpoint, every tile and every entry bundle (no verification); return the request count."""
    paths = ["checkpoint", *(t.path for t in [*tiles.tiles_for_size(size), *tiles.entry_bundles(0, size)])]
    fetcher = TileFetcher(prefix, parallel=parallel, accept_encoding="identity")
    try:
        for i in range(0, len(paths), 128):
            fetcher.get_many(paths[i : i + 128])
    finally:
        fetcher.close()
    return len(paths)


def monitor_all(prefix: str, signer: Signer, size: int, parallel: int, encoding: str) -> int:
    """A monitor's first check of the whole log; return its request count."""
    fetcher = TileFetcher(prefix, parallel=parallel, accept_encoding=encoding)
    try:
        state, report = Monitor(fetcher, key=signer.verifier).check(None)
    finally:
        fetcher.close()
    assert state.size == size
    assert report.entries == size
    return report.requests


def main() -> None:
    """Parse arguments, build, serve both ways, measure, report."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--parallel", type=int, default=4, help="concurrent requests of the client")
    parser.add_argument(
        "--workdir", type=Path, help="keep the database and the tile files here, and reuse them on the next run"
    )
    args = parser.parse_args()
    signer = Signer.from_seed("bench-log", hashlib.sha256(b"bench tiles").digest())
    with tempfile.TemporaryDirectory(prefix="smartgate-tiles-") as tmpdir:
        tmp = args.workdir or Path(tmpdir)
        tmp.mkdir(parents=True, exist_ok=True)
        built = tmp / f"built-{args.entries}"
        url = f"sqlite:///{tmp / f'bench-{args.entries}.db'}"
        static_dir = tmp / f"static-{args.entries}"
        if built.exists():
            print(f"reusing the log of {args.entries:,} entries in {tmp}")
        else:
            upgrade(url)
            print(f"building a log of {args.entries:,} entries (ledger writer, batches of {BATCH:,}) ...", flush=True)
            seconds = build(url, args.entries, signer)
            print(f"built in {seconds:.0f} s ({args.entries / seconds:,.0f} entries/s)")
            static_dir.mkdir()
            t0 = time.perf_counter()
            files = write_static(url, static_dir, args.entries)
            print(f"wrote {files:,} tile files in {time.perf_counter() - t0:.0f} s")
            built.touch()

        env = {
            "SMARTGATE_DATABASE_URL": url,
            "SMARTGATE_SECRET_KEY": "bench-" + "x" * 40,
            "SMARTGATE_ENVIRONMENT": "development",
            "SMARTGATE_VAR_DIR": str(tmp / "var"),
            "SMARTGATE_LOG_LEVEL": "WARNING",
            "SMARTGATE_LEDGER_SIGNING_KEY": signer.skey(),
            "SMARTGATE_LEDGER_ORIGIN": ORIGIN,
            "SMARTGATE_LEDGER_ANCHOR_SECONDS": "0",
        }
        python = sys.executable
        platform_port, static_port = free_port(), free_port()
        servers = []
        try:
            platform = start_server(
                [python, "-m", "api.cli", "serve", "--services", "provenance", "--no-console", "--host", "127.0.0.1",
                 "--port", str(platform_port)], env=env, port=platform_port, timeout=120,
            )  # fmt: skip
            servers.append(platform)
            static = start_server(
                [python, "-m", "http.server", "--bind", "127.0.0.1", "--directory", str(static_dir), str(static_port)],
                env={}, port=static_port,
            )  # fmt: skip
            servers.append(static)
            prefixes = {
                "static": (f"http://127.0.0.1:{static_port}", static.pid),
                "platform": (f"http://127.0.0.1:{platform_port}/api/v1/ledger/log", platform.pid),
            }
            for name, (prefix, _) in prefixes.items():  # same bytes both ways
                for path in (
                    "checkpoint",
                    "tile/0/000",
                    "tile/entries/000",
                    tiles.tiles_for_size(args.entries)[-1].path,
                ):
                    got = httpx.get(f"{prefix}/{path}", timeout=30)
                    assert got.status_code == 200, (name, path, got.status_code)
                    assert got.content == (static_dir / path).read_bytes(), (name, path)
            results: dict[tuple[str, str], list[tuple[float, float]]] = {}
            for n in range(args.rounds):
                for kind in KINDS:
                    for name, (prefix, pid) in prefixes.items():
                        wait_quiet([p.pid for p in servers])
                        cpu0, t0 = tree_cpu_seconds(pid), time.perf_counter()
                        if kind == "fetch":
                            requests = fetch_all(prefix, args.entries, args.parallel)
                            units = requests
                        else:
                            encoding = "gzip, identity" if kind == "monitor-gz" else "identity"
                            requests = monitor_all(prefix, signer, args.entries, args.parallel, encoding)
                            units = args.entries
                        wall = time.perf_counter() - t0
                        cpu_ms = (tree_cpu_seconds(pid) - cpu0) * 1000 / requests
                        results.setdefault((kind, name), []).append((units / wall, cpu_ms))
                        unit = "tiles/s" if kind == "fetch" else "entries/s"
                        print(
                            f"round {n + 1}: {kind:<10} {name:<9} {units / wall:12,.0f} {unit:<9} "
                            f"({requests:,} requests in {wall:5.1f} s, server CPU {cpu_ms:.2f} ms/request)",
                            flush=True,
                        )
        finally:
            for proc in reversed(servers):
                stop_server(proc)
    print(f"\nA log of {args.entries:,} entries, client with {args.parallel} concurrent requests (best round):")
    for kind in KINDS:
        best = {name: max(results[kind, name]) for name in ("static", "platform")}
        ratio = best["platform"][0] / best["static"][0]
        unit = "tiles/s" if kind == "fetch" else "entries verified/s"
        print(
            f"  {kind:<10} static {best['static'][0]:12,.0f} {unit}, platform {best['platform'][0]:12,.0f} {unit}: "
            f"ratio {ratio:.2f} (target ≥ 0.50); server CPU {best['static'][1]:.2f} vs {best['platform'][1]:.2f} "
            "ms/request"
        )
    print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
