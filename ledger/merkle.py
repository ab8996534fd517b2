"""RFC 9162 Merkle tree: leaf and node hashing, roots, and inclusion/consistency proofs over stored subtrees."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence

HASH_SIZE = 32
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_ROOT = hashlib.sha256(b"").digest()

# A perfect subtree: (level, index) covers leaves [index << level, (index + 1) << level).
NodeId = tuple[int, int]


def leaf_hash(leaf: bytes) -> bytes:
    """Return SHA-256(0x00 ‖ leaf)."""
    return hashlib.sha256(LEAF_PREFIX + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return SHA-256(0x01 ‖ left ‖ right)."""
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


# Hashers already fed the domain prefix: copying one is cheaper than creating a hasher (OpenSSL 3 looks the
# algorithm up on every construction) and saves concatenating the prefix onto every input.
_LEAF_HASHER = hashlib.sha256(LEAF_PREFIX)
_NODE_HASHER = hashlib.sha256(NODE_PREFIX)


def leaf_hashes(leaves: Iterable[bytes]) -> list[bytes]:
    """Hash many leaves in a tight loop (this is where a million-leaf tree spends half its time)."""
    out: list[bytes] = []
    append, copy = out.append, _LEAF_HASHER.copy
    for leaf in leaves:
        h = copy()
        h.update(leaf)
        append(h.digest())
    return out


def _reduce_level(level: list[bytes]) -> list[bytes]:
    """Hash adjacent pairs of a level; an odd last node is promoted unchanged."""
    out: list[bytes] = []
    append, copy = out.append, _NODE_HASHER.copy
    it = iter(level)
    for left, right in zip(it, it, strict=False):
        h = copy()
        h.update(left)
        h.update(right)
        append(h.digest())
    if len(level) & 1:
        out.append(level[-1])
    return out


def root_from_hashes(hashes: Sequence[bytes]) -> bytes:
    """Return the tree head over already-hashed leaves.

    Reducing level by level and promoting an odd last node unchanged gives exactly the RFC 9162 split at the largest
    power of two, without recursion or per-node objects.
    """
    if not hashes:
        return EMPTY_ROOT
    level = list(hashes)
    while len(level) > 1:
        level = _reduce_level(level)
    return level[0]


def root(leaves: Iterable[bytes]) -> bytes:
    """Return the tree head (MTH) over raw leaves."""
    return root_from_hashes(leaf_hashes(leaves))


def largest_power_of_two_below(n: int) -> int:
    """Return the largest power of two strictly less than n (n ≥ 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def perfect_subtrees(start: int, end: int) -> list[NodeId]:
    """Decompose [start, end) — an RFC 9162 subtree range — into perfect subtrees, left to right."""
    nodes: list[NodeId] = []
    while start < end:
        size = end - start
        if size & (size - 1) == 0 and start % size == 0:
            nodes.append((size.bit_length() - 1, start >> (size.bit_length() - 1)))
            break
        # Ranges that appear in proofs are either perfect or right-edge ranges whose left part is the largest
        # power of two below their size, and that left part is aligned.
        k = largest_power_of_two_below(size)
        nodes.append((k.bit_length() - 1, start >> (k.bit_length() - 1)))
        start += k
    return nodes


def fold_right(hashes: Sequence[bytes]) -> bytes:
    """Combine perfect-subtree hashes of a right-edge range: H(a, H(b, H(c, d)))."""
    acc = hashes[-1]
    for h in reversed(hashes[:-1]):
        acc = node_hash(h, acc)
    return acc


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """Return the subtree ranges whose hashes form the RFC 9162 inclusion proof of `index` in a tree of `size`."""
    if not 0 <= index < size:
        raise ValueError(f"index {index} out of range for tree size {size}")
    ranges: list[tuple[int, int]] = []
    lo, hi = 0, size
    # Walk down from the root; the proof lists siblings from the leaf up, so reverse at the end.
    while hi - lo > 1:
        k = largest_power_of_two_below(hi - lo)
        if index < lo + k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo = lo + k
    ranges.reverse()
    return ranges


def consistency_ranges(size1: int, size2: int) -> list[tuple[int, int]]:
    """Return the subtree ranges whose hashes form the RFC 9162 consistency proof between two sizes."""
    if not 0 < size1 <= size2:
        raise ValueError(f"no consistency proof from size {size1} to {size2}")
    if size1 == size2:
        return []
    ranges: list[tuple[int, int]] = []
    lo, hi, m, complete = 0, size2, size1, True
    # SUBPROOF(m, D[lo:hi], b) of RFC 9162 §2.1.4.2, unrolled; collected root-first, reversed at the end.
    while True:
        n = hi - lo
        if m == n:
            if not complete:
                ranges.append((lo, hi))
            break
        k = largest_power_of_two_below(n)
        if m <= k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo, m, complete = lo + k, m - k, False
    ranges.reverse()
    return ranges


def nodes_for_ranges(ranges: Iterable[tuple[int, int]]) -> list[NodeId]:
    """Return every perfect subtree needed to hash the given ranges (deduplicated, stable order)."""
    seen: dict[NodeId, None] = {}
    for start, end in ranges:
        for node in perfect_subtrees(start, end):
            seen.setdefault(node, None)
    return list(seen)


def hashes_for_ranges(
    ranges: Sequence[tuple[int, int]], fetch: Callable[[list[NodeId]], Mapping[NodeId, bytes]]
) -> list[bytes]:
    """Hash each range from perfect-subtree hashes obtained with ONE call to `fetch` (O(log n) nodes)."""
    needed = nodes_for_ranges(ranges)
    found = fetch(needed)
    missing = [node for node in needed if node not in found]
    if missing:
        raise LookupError(f"tree nodes missing from storage: {missing[:5]}")
    return [fold_right([found[node] for node in perfect_subtrees(start, end)]) for start, end in ranges]


class MemoryTree:
    """An in-memory tree that keeps every perfect subtree hash, for proofs without storage."""

    def __init__(self, hashes: Iterable[bytes] = ()) -> None:
        """Create a tree, optionally from leaf hashes."""
        self.levels: list[list[bytes]] = [[]]
        for h in hashes:
            self.append_hash(h)

    @property
    def size(self) -> int:
        """Number of leaves."""
        return len(self.levels[0])

    def append(self, leaf: bytes) -> int:
        """Append a raw leaf, returning its index."""
        return self.append_hash(leaf_hash(leaf))

    def append_hash(self, h: bytes) -> int:
        """Append a leaf hash, returning its index; completes every perfect subtree the leaf closes."""
        index = len(self.levels[0])
        self.levels[0].append(h)
        level, i = 0, index
        while i & 1:
            h = node_hash(self.levels[level][i - 1], h)
            level, i = level + 1, i >> 1
            if len(self.levels) == level:
                self.levels.append([])
            self.levels[level].append(h)
        return index

    def nodes(self, ids: Iterable[NodeId]) -> dict[NodeId, bytes]:
        """Return the stored hashes of the given perfect subtrees."""
        return {(lvl, idx): self.levels[lvl][idx] for lvl, idx in ids}

    def root(self, size: int | None = None) -> bytes:
        """Return the root of the first `size` leaves (default: all)."""
        size = self.size if size is None else size
        if not 0 <= size <= self.size:
            raise ValueError(f"size {size} beyond tree size {self.size}")
        if size == 0:
            return EMPTY_ROOT
        return hashes_for_ranges([(0, size)], self.nodes)[0]

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """Return the inclusion proof of leaf `index` in the tree of `size` leaves."""
        size = self.size if size is None else size
        return hashes_for_ranges(inclusion_ranges(index, size), self.nodes)

    def consistency_proof(self, size1: int, size2: int | None = None) -> list[bytes]:
        """Return the consistency proof from `size1` to `size2` leaves."""
        size2 = self.size if size2 is None else size2
        return hashes_for_ranges(consistency_ranges(size1, size2), self.nodes)


def frontier(size: int) -> list[NodeId]:
    """Return the perfect subtrees that make up a tree of `size` leaves, largest first (the 'compact range')."""
    return perfect_subtrees(0, size) if size else []


class CompactRange:
    """The right edge of a growing tree: appends leaf hashes and yields the perfect subtrees they complete."""

    def __init__(self, size: int = 0, pending: Mapping[int, bytes] | None = None) -> None:
        """Start from a tree of `size` leaves whose frontier hashes are given per level."""
        self.size = size
        self.pending: dict[int, bytes] = dict(pending or {})
        expected = {level for level, _ in frontier(size)}
        if set(self.pending) != expected:
            raise ValueError(f"frontier of size {size} needs levels {sorted(expected)}, got {sorted(self.pending)}")

    def append(self, h: bytes, out: list[tuple[int, int, bytes]]) -> None:
        """Append a leaf hash, adding every completed (level, index, hash) — the leaf itself first — to `out`."""
        i = self.size
        out.append((0, i, h))
        level = 0
        while i & 1:
            h = node_hash(self.pending.pop(level), h)
            level, i = level + 1, i >> 1
            out.append((level, i, h))
        self.pending[level] = h
        self.size += 1

    def root(self) -> bytes:
        """Return the root of the tree so far."""
        if not self.size:
            return EMPTY_ROOT
        levels = sorted(self.pending)
        acc = self.pending[levels[0]]
        for level in levels[1:]:
            acc = node_hash(self.pending[level], acc)
        return acc
