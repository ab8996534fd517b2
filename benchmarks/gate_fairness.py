"""Gate fairness: a normal truck's latency on lane B alone and while lane A posts six 6000x6600 PNGs; the hostile
request's answer time; the server's peak and settled memory (RSS).

Two server configurations, each a fresh `smartgate serve` (the whole platform, as `make run`, models loaded at
start): the default limits, where the 40-megapixel images are refused from their headers (413), and raised pixel
limits (SMARTGATE_OCR_MAX_IMAGE_PIXELS / _MAX_EVENT_PIXELS), where they are decoded, reduced and read, so the
fair scheduler and the per-event deadline are what protect lane B.

    .venv/bin/python benchmarks/gate_fairness.py [--backend postgresql] [--normal 8]
"""

from __future__ import annotations

import argparse
import io
import secrets
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._harness import ROOT, free_port, start_server, stop_server, wait_quiet
from benchmarks.api_filing import database, drop, migrate_with_trader_key, server_env
from services.kernel.auth import Role, create_key
from services.kernel.database import make_engine, make_sessionmaker, unit_of_work

DOOR = (ROOT / "docs" / "examples" / "gate-door.jpg").read_bytes()
RAISED = {"SMARTGATE_OCR_MAX_IMAGE_PIXELS": "40000000", "SMARTGATE_OCR_MAX_EVENT_PIXELS": "240000000"}


def hostile_png(width: int, height: int) -> bytes:
    """The audit's image: one flat colour, a few tens of kB, width x height pixels once decoded."""
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (width, height), (30, 60, 120)).save(out, format="PNG", optimize=True)
    return out.getvalue()


def gate_key(url: str, secret: str) -> str:
    """A gate camera's API key in the benchmark database."""
    engine = make_engine(url)
    with unit_of_work(make_sessionmaker(engine)) as session:
        _, key = create_key(session, secret_key=secret, role=Role.gate)
    engine.dispose()
    return key


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    """A /proc/<pid>/status memory figure in MB (VmRSS: now; VmHWM: the peak so far)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Poster:
    """Posts gate events; every post is its own capture (camera of this run, time), so none is answered as a retry."""

    def __init__(self, base: str, key: str) -> None:
        self.base, self.key, self.n = base, key, 0
        self.run = secrets.token_hex(4)
        self.lock = threading.Lock()

    def post(self, lane: str, images: list[bytes], *, kind: str) -> tuple[int, float, dict[str, Any]]:
        """(status, seconds, JSON body) of one POST /api/v1/gate/events."""
        with self.lock:
            self.n += 1
            n = self.n
        files = [("image", (f"{kind}{i}.{'jpg' if kind == 'door' else 'png'}", img)) for i, img in enumerate(images)]
        data = {"lane": lane, "direction": "in", "camera_id": f"BENCH-{lane}-{self.run}",
                "taken_at": f"2026-12-02T{n // 3600 % 24:02d}:{n // 60 % 60:02d}:{n % 60:02d}+07:00"}  # fmt: skip
        t0 = time.perf_counter()
        resp = httpx.post(f"{self.base}/api/v1/gate/events", data=data, files=files,
                          headers={"Authorization": f"Bearer {self.key}"}, timeout=600)  # fmt: skip
        seconds = time.perf_counter() - t0
        if resp.status_code == 200:
            raise RuntimeError("a post was answered as a retry: the benchmark must not reuse a capture")
        return resp.status_code, seconds, resp.json()


def scenario(name: str, env: dict[str, str], key: str, hostile: bytes, normal: int) -> dict[str, Any]:
    """One server: lane B alone, then lane B while lane A posts six hostile images; memory sampled throughout."""
    port = free_port()
    proc = start_server([sys.executable, "-m", "api.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
                        env=env, port=port, timeout=120)  # fmt: skip
    try:
        wait_quiet([proc.pid])  # the models load in a worker at start
        poster = Poster(f"http://127.0.0.1:{port}", key)
        for _ in range(2):
            poster.post("IN-2", [DOOR], kind="door")  # warm: first reads, connections
        alone = [poster.post("IN-2", [DOOR], kind="door")[1] for _ in range(normal)]
        rss_before = rss_mb(proc.pid)
        peak = [rss_before]
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                peak.append(rss_mb(proc.pid))
                time.sleep(0.05)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        hostile_result: dict[str, Any] = {}

        def attack() -> None:
            hostile_result["status"], hostile_result["seconds"], hostile_result["body"] = poster.post(
                "IN-1", [hostile] * 6, kind="hostile"
            )

        attacker = threading.Thread(target=attack)
        attacker.start()
        time.sleep(0.2)  # lane A's upload is in and its first image being decoded
        during: list[float] = []
        statuses: list[int] = []
        # Lane B keeps sending trucks while lane A's request is open (at least `normal` of them).
        while attacker.is_alive() or len(during) < normal:
            status, seconds, _ = poster.post("IN-2", [DOOR], kind="door")
            during.append(seconds)
            statuses.append(status)
        attacker.join()
        time.sleep(2.0)
        stop.set()
        sampler.join()
        body = hostile_result["body"]
        reads = body.get("reads", []) if hostile_result["status"] == 201 else []
        return {
            "name": name,
            "alone_p50": statistics.median(alone),
            "during_p50": statistics.median(during),
            "during_max": max(during),
            "normal_ok": statuses.count(201),
            "normal_n": len(statuses),
            "hostile_status": hostile_result["status"],
            "hostile_code": body.get("code"),
            "hostile_seconds": hostile_result["seconds"],
            "hostile_failed": sum(r.get("status") == "failed" for r in reads),
            "rss_before": rss_before,
            "rss_peak": max(peak),
            "rss_after": rss_mb(proc.pid),
        }
    finally:
        stop_server(proc)


def main() -> None:
    """Run both configurations and print one line each."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--normal", type=int, default=8, help="normal trucks per phase (lane B)")
    parser.add_argument("--size", default="6000x6600", help="the hostile images' WIDTHxHEIGHT")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    hostile = hostile_png(width, height)
    print(f"hostile image: {width}x{height} PNG, {len(hostile) / 1024:.0f} kB; normal: gate-door.jpg; "
          f"backend {args.backend}")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        url, dbname = database(args.backend, tmp)
        secret = secrets.token_urlsafe(40)
        try:
            migrate_with_trader_key(url, secret)
            key = gate_key(url, secret)
            env = server_env(url, secret, tmp / "var")
            results = [
                scenario("default limits", env, key, hostile, args.normal),
                scenario("raised pixel limits", {**env, **RAISED}, key, hostile, args.normal),
            ]
        finally:
            drop(dbname)
    for r in results:
        delay = r["during_p50"] - r["alone_p50"]
        print(
            f"{r['name']:<20} lane B p50 alone {r['alone_p50'] * 1000:6.0f} ms, "
            f"during {r['during_p50'] * 1000:6.0f} ms "
            f"(x{r['during_p50'] / r['alone_p50']:.2f}, +{delay * 1000:.0f} ms; worst {r['during_max'] * 1000:.0f} ms; "
            f"{r['normal_ok']}/{r['normal_n']} answered 201) | lane A: {r['hostile_status']} "
            f"{r['hostile_code'] or ''} in {r['hostile_seconds']:.2f} s, {r['hostile_failed']}/6 failed | "
            f"RSS {r['rss_before']:.0f} MB before, peak {r['rss_peak']:.0f}, after {r['rss_after']:.0f}"
        )


if __name__ == "__main__":
    main()
