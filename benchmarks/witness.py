"""Witness round trip per checkpoint (not a test): the log submits a checkpoint with its consistency proof over HTTP,
the witness verifies the log signature and the proof, updates its SQLite state durably and cosigns, and the log
checks the cosignature.

Run: .venv/bin/python benchmarks/witness.py [--checkpoints 300] [--grow 100]
Baselines measured in the same run: an HTTP POST of the same body to an endpoint on the same server that answers a
fixed line (the HTTP floor), and the witness's work in process (no HTTP).
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
import uvicorn
from _harness import free_port
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from ledger.checkpoint import Checkpoint, Signer
from ledger.merkle import MemoryTree
from ledger.witness import Cosigner, Witness, WitnessState, encode_add_checkpoint
from ledger.witness_client import WitnessEndpoint, request_cosignature
from ledger.witness_server import create_witness_app

ORIGIN = "bench.smartgate/ledger"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--checkpoints", type=int, default=300)
    parser.add_argument("--grow", type=int, default=100, help="entries between checkpoints")
    args = parser.parse_args()
    log = Signer.from_seed("bench-log", hashlib.sha256(b"log").digest())
    tmp = Path(tempfile.mkdtemp())
    cosigners = [Cosigner.from_seed(f"w{i}.bench", hashlib.sha256(bytes([i])).digest()) for i in range(2)]
    served = Witness(cosigners[0], {ORIGIN: [log.verifier]}, WitnessState(tmp / "served.sqlite"))
    inproc = Witness(cosigners[1], {ORIGIN: [log.verifier]}, WitnessState(tmp / "inproc.sqlite"))
    app = create_witness_app(served)
    fixed = cosigners[0].cosign(b"x\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n", 1)

    async def floor(request: Request) -> PlainTextResponse:
        await request.body()
        return PlainTextResponse(fixed)

    app.router.routes.append(Route("/floor", floor, methods=["POST"]))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)

    tree = MemoryTree()
    endpoint = WitnessEndpoint(f"http://127.0.0.1:{port}", cosigners[0].verifier)
    round_trip: list[float] = []
    http_floor: list[float] = []
    in_process: list[float] = []
    old = 0
    with httpx.Client(timeout=10) as client:
        for _ in range(args.checkpoints):
            for _ in range(args.grow):
                tree.append(str(tree.size).encode())
            size = tree.size
            note = Checkpoint(ORIGIN, size, tree.root()).sign(log)
            proof = tree.consistency_proof(old, size) if old else []
            body = encode_add_checkpoint(old, proof, note)

            t = time.perf_counter()
            client.post(f"{endpoint.url}/floor", content=body)
            http_floor.append(time.perf_counter() - t)

            t = time.perf_counter()
            request_cosignature(client, endpoint, note, size, old, tree.consistency_proof)
            round_trip.append(time.perf_counter() - t)

            t = time.perf_counter()
            inproc.add_checkpoint(body)
            in_process.append(time.perf_counter() - t)
            old = size
    server.should_exit = True
    thread.join(timeout=10)

    def p(values: list[float], q: float) -> float:
        return statistics.quantiles(values, n=100)[int(q) - 1] * 1000

    print(f"{args.checkpoints} checkpoints, {args.grow} entries apart (final size {tree.size})")
    for label, values in (
        ("HTTP floor (same body, fixed answer)", http_floor),
        ("witness in process (verify + SQLite FULL + cosign)", in_process),
        ("witness round trip over HTTP (submit, verify, cosign, check)", round_trip),
    ):
        print(f"  {label:62s} p50 {p(values, 50):6.2f} ms  p99 {p(values, 99):6.2f} ms")
    print(
        f"  round trip / HTTP floor: {statistics.median(round_trip) / statistics.median(http_floor):.2f}x;"
        f" round trip / in process: {statistics.median(round_trip) / statistics.median(in_process):.2f}x"
    )


if __name__ == "__main__":
    main()
