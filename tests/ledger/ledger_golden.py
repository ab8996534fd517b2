"""Produce the golden log's files from the committed events; run as a script to (re)write tests/ledger/golden/."""

from __future__ import annotations

import json
import sys
import tempfile
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
GOLDEN = HERE / "golden"
sys.path.insert(0, str(HERE.parents[1]))

from ledger import bundle, merkle, storage  # noqa: E402
from ledger.checkpoint import Signer  # noqa: E402
from ledger.reader import LedgerReader  # noqa: E402
from ledger.writer import Event, LedgerWriter  # noqa: E402

ORIGIN = "smartgate.test/ledger"
SEED = bytes(range(32))  # public test key, also in ledger_helpers.TEST_SEED


def load_events() -> list[Event]:
    """Read the golden input events."""
    raw = json.loads((GOLDEN / "events.json").read_text())
    return [
        Event(e["subject"], e["event_type"], e["event_id"], e["payload"].encode(), datetime.fromisoformat(e["time"]))
        for e in raw
    ]


def produce(workdir: Path) -> dict[str, bytes]:
    """Append the golden events through the real writer on SQLite and render every expected output."""
    signer = Signer.from_seed("smartgate-test", SEED)
    engine = storage.sqlite_engine(str(workdir / "golden.sqlite"))
    with engine.begin() as conn:
        storage.install_schema(conn)
    writer = LedgerWriter(engine, signer=signer, origin=ORIGIN)
    events = load_events()
    writer.append(events[:7])
    writer.append(events[7:])
    _, note = writer.checkpoint()
    reader = LedgerReader(engine)
    size = reader.size()
    entries = [reader.entry(i) for i in range(size)]
    leaves = [e.leaf for e in entries if e is not None]
    tree = merkle.MemoryTree(merkle.leaf_hashes(leaves))
    expected = {
        "origin": ORIGIN,
        "public_key": signer.verifier.vkey,
        "leaf_hashes": [merkle.leaf_hash(leaf).hex() for leaf in leaves],
        "roots": {str(n): tree.root(n).hex() for n in range(size + 1)},
        "inclusion": {f"{i}/{size}": [h.hex() for h in reader.inclusion_proof(i, size)] for i in (0, 7, 13, size - 1)},
        "consistency": {f"{m}/{size}": [h.hex() for h in reader.consistency_proof(m, size)] for m in (1, 7, 13, 16)},
    }
    out = {
        "leaves.jsonl": b"".join(leaf + b"\n" for leaf in leaves),
        "expected.json": json.dumps(expected, indent=2).encode() + b"\n",
        "checkpoint.txt": note,
        "bundle-DECL-0001.json": bundle.dumps(bundle.build_bundle(engine, "DECL-0001", signer)),
    }
    engine.dispose()
    return out


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in produce(Path(tmp)).items():
            (GOLDEN / name).write_bytes(data)
