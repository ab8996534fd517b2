"""Proof verifiers and the verification error family; every error carries its evidence (index, expected, found)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ledger.merkle import HASH_SIZE, node_hash


class VerificationError(Exception):
    """Something does not verify; `index` locates it, `expected` and `found` are the evidence."""

    kind = "verification"

    def __init__(self, message: str, *, index: int | None = None, expected: Any = None, found: Any = None) -> None:
        """Build an error with its evidence."""
        super().__init__(message)
        self.message = message
        self.index = index
        self.expected = expected
        self.found = found

    def evidence(self) -> dict[str, Any]:
        """Return the evidence as JSON-ready values (bytes as hex)."""

        def show(value: Any) -> Any:
            return value.hex() if isinstance(value, bytes | bytearray) else value

        return {
            "kind": self.kind,
            "message": self.message,
            "index": self.index,
            "expected": show(self.expected),
            "found": show(self.found),
        }

    def __str__(self) -> str:
        """Render the message and the evidence on one line."""
        ev = self.evidence()
        parts = [self.message]
        if self.index is not None:
            parts.append(f"index={self.index}")
        if ev["expected"] is not None or ev["found"] is not None:
            parts.append(f"expected={ev['expected']} found={ev['found']}")
        return " ".join(parts)


class InclusionProofError(VerificationError):
    """An inclusion proof does not lead to the expected root."""

    kind = "inclusion"


class ConsistencyProofError(VerificationError):
    """A consistency proof does not link the two roots."""

    kind = "consistency"


class LeafError(VerificationError):
    """A leaf is malformed, not canonical, or its hash differs from the tree's."""

    kind = "leaf"


class PayloadHashMismatch(VerificationError):
    """A stored payload's SHA-256 differs from the one its leaf commits to."""

    kind = "payload"


class ChainBroken(VerificationError):
    """An entry's previous-subject hash does not name the subject's previous entry."""

    kind = "subject-chain"


class MissingEntry(VerificationError):
    """An index inside the log has no entry."""

    kind = "missing"


class NodeMismatch(VerificationError):
    """A stored interior hash differs from the hash recomputed from the entries."""

    kind = "node"


class RootMismatch(VerificationError):
    """A tree head differs from the one recomputed from the entries."""

    kind = "root"


class CheckpointError(VerificationError):
    """A checkpoint is malformed, signed by an unknown key, or its signature is invalid."""

    kind = "checkpoint"


class KeyValidityError(CheckpointError):
    """A checkpoint is signed by a key of the log, but not by the key valid at its size (key rotation)."""

    kind = "key-validity"


class AnchorError(VerificationError):
    """An anchor receipt does not show the checkpoint's hash on chain."""

    kind = "anchor"


class AnchorMissing(AnchorError):
    """An anchor is not on the chain at all: no Anchor contract at its address, or no such transaction (a chain
    reset, another chain behind the same URL, or a receipt that was never real)."""

    kind = "anchor-missing"


class RolledBack(VerificationError):
    """The log is shorter than, or differs from, what was anchored or witnessed: history was deleted or rewritten."""

    kind = "rollback"


class BundleError(VerificationError):
    """A provenance bundle is malformed or inconsistent."""

    kind = "bundle"


def _check_hash(value: bytes, what: str, error: type[VerificationError], index: int | None) -> None:
    if len(value) != HASH_SIZE:
        raise error(f"{what} is {len(value)} bytes, not {HASH_SIZE}", index=index, expected=HASH_SIZE, found=len(value))


def _inner_proof_size(index: int, size: int) -> int:
    return (index ^ (size - 1)).bit_length()


def _chain_inner(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    for i, h in enumerate(proof):
        seed = node_hash(seed, h) if (index >> i) & 1 == 0 else node_hash(h, seed)
    return seed


def _chain_inner_right(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    for i, h in enumerate(proof):
        if (index >> i) & 1:
            seed = node_hash(h, seed)
    return seed


def _chain_border_right(seed: bytes, proof: Sequence[bytes]) -> bytes:
    for h in proof:
        seed = node_hash(h, seed)
    return seed


def root_from_inclusion_proof(leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes:
    """Return the root that an inclusion proof implies, or raise InclusionProofError if it is malformed."""
    if not 0 <= index < size:
        raise InclusionProofError(f"index {index} is not below tree size {size}", index=index, found=size)
    _check_hash(leaf_hash, "leaf hash", InclusionProofError, index)
    for h in proof:
        _check_hash(h, "proof hash", InclusionProofError, index)
    inner = _inner_proof_size(index, size)
    border = bin(index >> inner).count("1")
    if len(proof) != inner + border:
        raise InclusionProofError(
            "inclusion proof has the wrong length", index=index, expected=inner + border, found=len(proof)
        )
    res = _chain_inner(leaf_hash, proof[:inner], index)
    return _chain_border_right(res, proof[inner:])


def verify_inclusion(leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> None:
    """Check that `leaf_hash` is leaf `index` of the tree of `size` leaves with head `root`."""
    _check_hash(root, "root", InclusionProofError, index)
    computed = root_from_inclusion_proof(leaf_hash, index, size, proof)
    if computed != root:
        raise InclusionProofError(
            "inclusion proof leads to a different root", index=index, expected=root, found=computed
        )


def verify_consistency(size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes) -> None:
    """Check that the tree of `size2` leaves with head `root2` extends the one of `size1` with head `root1`."""
    if size1 > size2:
        raise ConsistencyProofError("size1 is greater than size2", index=size1, expected=f"<= {size2}", found=size1)
    if size1 == 0:
        # An empty tree is trivially a prefix of anything, so a "proof" from it proves nothing: reject.
        raise ConsistencyProofError("consistency from an empty tree is meaningless", index=0, found=size2)
    if size1 == size2:
        if proof:
            raise ConsistencyProofError("equal sizes need an empty proof", index=size1, expected=0, found=len(proof))
        if root1 != root2:
            raise ConsistencyProofError("equal sizes but different roots", index=size1, expected=root1, found=root2)
        return
    if not proof:
        raise ConsistencyProofError("empty consistency proof", index=size1, expected="non-empty", found=0)
    for what, h in (("root1", root1), ("root2", root2), *(("proof hash", p) for p in proof)):
        _check_hash(h, what, ConsistencyProofError, size1)

    inner = _inner_proof_size(size1 - 1, size2)
    border = bin((size1 - 1) >> inner).count("1")
    shift = (size1 & -size1).bit_length() - 1
    inner -= shift
    # The proof starts with the hash of the 2^shift subtree, unless that subtree is the whole old tree.
    if size1 == 1 << shift:
        seed, rest = root1, list(proof)
    else:
        seed, rest = proof[0], list(proof[1:])
    expected_len = inner + border + (0 if size1 == 1 << shift else 1)
    if len(proof) != expected_len:
        raise ConsistencyProofError(
            "consistency proof has the wrong length", index=size1, expected=expected_len, found=len(proof)
        )
    mask = (size1 - 1) >> shift
    hash1 = _chain_border_right(_chain_inner_right(seed, rest[:inner], mask), rest[inner:])
    if hash1 != root1:
        raise ConsistencyProofError("proof does not lead to root1", index=size1, expected=root1, found=hash1)
    hash2 = _chain_border_right(_chain_inner(seed, rest[:inner], mask), rest[inner:])
    if hash2 != root2:
        raise ConsistencyProofError("proof does not lead to root2", index=size2, expected=root2, found=hash2)
