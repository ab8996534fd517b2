"""The committed golden log is reproduced byte for byte by the writer, reader, checkpoint signer and bundler."""

from __future__ import annotations

import json
from pathlib import Path

from ledger_golden import GOLDEN, produce
from naive_merkle import mth, path

from ledger import bundle
from ledger.checkpoint import Verifier, open_checkpoint
from ledger.leaf import Leaf


def test_code_reproduces_the_golden_files(tmp_path: Path) -> None:
    for name, data in produce(tmp_path).items():
        assert (GOLDEN / name).read_bytes() == data, f"golden/{name} differs (see tests/ledger/ledger_golden.py)"


def test_golden_files_agree_with_the_naive_reference() -> None:
    leaves = (GOLDEN / "leaves.jsonl").read_bytes().splitlines()
    expected = json.loads((GOLDEN / "expected.json").read_text())
    assert len(leaves) == 20
    for n in range(21):
        assert expected["roots"][str(n)] == mth(leaves[:n]).hex()
    for key, proof in expected["inclusion"].items():
        i, n = map(int, key.split("/"))
        assert proof == [h.hex() for h in path(i, leaves[:n])]
    heads: dict[str, str] = {}
    for i, raw in enumerate(leaves):
        leaf = Leaf.from_bytes(raw, index=i)
        assert leaf.prev_subject_hash == heads.get(leaf.subject)
        heads[leaf.subject] = expected["leaf_hashes"][i]
    key = Verifier.from_vkey(expected["public_key"])
    cp = open_checkpoint((GOLDEN / "checkpoint.txt").read_bytes(), key, origin=expected["origin"])
    assert cp.root_hash.hex() == expected["roots"]["20"]
    report = bundle.verify_bundle((GOLDEN / "bundle-DECL-0001.json").read_bytes(), trusted_key=key)
    assert report.entries == [1, 5, 9, 13, 17]
