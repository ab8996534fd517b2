"""Chain-side cost of the anchoring checks (not a test): the eth_getCode check before each anchor, and reading a
log's Anchored events for the rollback audit of `ledger verify --rpc`.

Run: .venv/bin/python benchmarks/chainlog.py [--anchors 1000]
(needs anvil: npm install --prefix .tools @foundry-rs/anvil)
Ratios are against one anchor (transaction, receipt, event check) and web3's formatted eth_getLogs, measured in the
same run on the same anvil.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _harness import free_port

from ledger import anchor, chainlog

ROOT = Path(__file__).resolve().parents[1]


def anvil_binary() -> str:
    """The anvil binary from .tools (npm) or PATH."""
    found = sorted((ROOT / ".tools" / "node_modules").glob("@foundry-rs/anvil-*/bin/anvil"))
    binary = str(found[0]) if found else shutil.which("anvil")
    if binary is None:
        raise SystemExit("anvil not found: npm install --prefix .tools @foundry-rs/anvil")
    return binary


def main() -> None:
    """Anchor N hashes on a fresh anvil, then time the checks and the reads."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--anchors", type=int, default=1000)
    args = parser.parse_args()
    port = free_port()
    proc = subprocess.Popen(
        [anvil_binary(), "--host", "127.0.0.1", "--port", str(port), "--silent"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                w3 = anchor.connect(f"http://127.0.0.1:{port}", timeout_s=2)
                break
            except anchor.AnchorError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        contract = anchor.deploy_anchor_contract(w3)
        anchorer = anchor.Anchorer(w3, contract, chain_label="bench")
        n = args.anchors
        t0 = time.perf_counter()
        for i in range(n):
            anchorer.anchor(hashlib.sha256(str(i).encode()).digest())
        per_anchor = (time.perf_counter() - t0) / n

        t0 = time.perf_counter()
        for _ in range(100):
            anchor.has_anchor_code(w3, contract)
        get_code = (time.perf_counter() - t0) / 100

        t0 = time.perf_counter()
        formatted = w3.eth.get_logs({"address": contract, "topics": [anchor.ANCHORED_TOPIC], "fromBlock": 0})  # type: ignore[list-item]
        web3_read = time.perf_counter() - t0
        t0 = time.perf_counter()
        events = chainlog.anchored_events(w3, [contract])
        raw_read = time.perf_counter() - t0
        assert len(events) == len(formatted) == n
    finally:
        proc.terminate()
        proc.wait()
    print(f"anchor (transaction, receipt, Anchored event check), baseline: {per_anchor * 1000:.2f} ms")
    print(f"eth_getCode check before each anchor: {get_code * 1000:.2f} ms = {get_code / per_anchor:.1%} of an anchor")
    print(
        f"read {n} Anchored events: web3 get_logs {web3_read * 1000:.0f} ms ({web3_read / n * 1e6:.0f} us/event), "
        f"chainlog.anchored_events {raw_read * 1000:.0f} ms ({raw_read / n * 1e6:.0f} us/event) = "
        f"{web3_read / raw_read:.1f}x faster; reading one event costs {raw_read / n / per_anchor:.2%} of an anchor"
    )


if __name__ == "__main__":
    main()
