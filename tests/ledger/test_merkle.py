"""ledger.merkle against the naive recursive RFC 9162 definitions, for every tree size up to 300."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from naive_merkle import mth, path, proof

from ledger import merkle
from ledger.verify import verify_consistency, verify_inclusion

MAX = 300
LEAVES = [f"leaf {i}".encode() for i in range(MAX)]


@pytest.fixture(scope="module")
def tree() -> merkle.MemoryTree:
    """One incrementally built tree whose prefixes are all the trees of sizes 0..300."""
    t = merkle.MemoryTree()
    for leaf in LEAVES:
        t.append(leaf)
    return t


def test_hash_prefixes_are_rfc9162() -> None:
    assert merkle.leaf_hash(b"abc") == hashlib.sha256(b"\x00abc").digest()
    assert merkle.node_hash(b"l" * 32, b"r" * 32) == hashlib.sha256(b"\x01" + b"l" * 32 + b"r" * 32).digest()
    assert merkle.root([]) == hashlib.sha256(b"").digest()


def test_roots_match_naive_for_every_size(tree: merkle.MemoryTree) -> None:
    for n in range(MAX + 1):
        expected = mth(LEAVES[:n])
        assert merkle.root(LEAVES[:n]) == expected, n
        assert tree.root(n) == expected, n


def test_compact_range_root_and_nodes_match(tree: merkle.MemoryTree) -> None:
    cr = merkle.CompactRange()
    rows: list[tuple[int, int, bytes]] = []
    for n, leaf in enumerate(LEAVES, start=1):
        cr.append(merkle.leaf_hash(leaf), rows)
        assert cr.root() == tree.root(n)
    for level, idx, h in rows:
        assert tree.levels[level][idx] == h
    assert len(rows) == sum(len(level) for level in tree.levels)


def test_compact_range_resumes_from_a_stored_frontier(tree: merkle.MemoryTree) -> None:
    for size in (0, 1, 5, 64, 77, 255):
        pending = {lvl: h for (lvl, _), h in tree.nodes(merkle.frontier(size)).items()}
        cr = merkle.CompactRange(size, pending)
        rows: list[tuple[int, int, bytes]] = []
        for leaf in LEAVES[size:]:
            cr.append(merkle.leaf_hash(leaf), rows)
        assert cr.root() == tree.root()


def test_inclusion_proofs_match_naive_for_every_size(tree: merkle.MemoryTree) -> None:
    for n in range(1, MAX + 1):
        root = tree.root(n)
        # Every index for small trees; a spread of indices (edges included) for larger ones keeps this fast.
        indices = range(n) if n <= 64 else sorted({0, 1, n // 3, n // 2, n - 2, n - 1})
        for m in indices:
            p = tree.inclusion_proof(m, n)
            assert p == path(m, LEAVES[:n]), (m, n)
            verify_inclusion(merkle.leaf_hash(LEAVES[m]), m, n, p, root)


def test_consistency_proofs_match_naive_for_every_size(tree: merkle.MemoryTree) -> None:
    for n in range(1, MAX + 1):
        olds = range(1, n + 1) if n <= 64 else sorted({1, 2, n // 3, n // 2, n - 1, n})
        for m in olds:
            p = tree.consistency_proof(m, n)
            assert p == proof(m, LEAVES[:n]), (m, n)
            verify_consistency(m, n, p, tree.root(m), tree.root(n))


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_random_proofs_verify_and_a_flipped_bit_fails(data: st.DataObject) -> None:
    n = data.draw(st.integers(1, MAX))
    m = data.draw(st.integers(0, n - 1))
    leaves = LEAVES[:n]
    t = merkle.MemoryTree(merkle.leaf_hashes(leaves))
    p = t.inclusion_proof(m, n)
    verify_inclusion(merkle.leaf_hash(leaves[m]), m, n, p, mth(leaves))
    if p:
        k = data.draw(st.integers(0, len(p) - 1))
        bad = list(p)
        bad[k] = bytes([bad[k][0] ^ 1]) + bad[k][1:]
        with pytest.raises(Exception, match="different root"):
            verify_inclusion(merkle.leaf_hash(leaves[m]), m, n, bad, mth(leaves))
    old = data.draw(st.integers(1, n))
    c = t.consistency_proof(old, n)
    verify_consistency(old, n, c, mth(leaves[:old]), mth(leaves))
