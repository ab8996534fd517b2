"""Reading the ledger: entries, subject histories, roots, proofs and checkpoints, each in O(log n) node reads."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from ledger import storage
from ledger.anchor import AnchorReceipt
from ledger.merkle import EMPTY_ROOT, consistency_ranges, hashes_for_ranges, inclusion_ranges


def root_at(conn: Connection, size: int) -> bytes:
    """Return the tree head of the first `size` entries from stored nodes."""
    if size == 0:
        return EMPTY_ROOT
    return hashes_for_ranges([(0, size)], lambda ids: storage.fetch_nodes(conn, ids))[0]


def inclusion_proof(conn: Connection, index: int, size: int) -> list[bytes]:
    """Return the inclusion proof of entry `index` in the tree of `size` entries (one node query)."""
    return hashes_for_ranges(inclusion_ranges(index, size), lambda ids: storage.fetch_nodes(conn, ids))


def inclusion_proofs(conn: Connection, indices: list[int], size: int) -> list[list[bytes]]:
    """Return the inclusion proofs of several entries in the tree of `size` entries, in one node query (a bundle's
    entries share the upper nodes of their proofs)."""
    per_entry = [inclusion_ranges(index, size) for index in indices]
    hashes = hashes_for_ranges([r for ranges in per_entry for r in ranges], lambda ids: storage.fetch_nodes(conn, ids))
    proofs, start = [], 0
    for ranges in per_entry:
        proofs.append(hashes[start : start + len(ranges)])
        start += len(ranges)
    return proofs


def consistency_proof(conn: Connection, size1: int, size2: int) -> list[bytes]:
    """Return the consistency proof between two tree sizes (one node query)."""
    return hashes_for_ranges(consistency_ranges(size1, size2), lambda ids: storage.fetch_nodes(conn, ids))


def receipt_from_row(row: Mapping[str, Any]) -> AnchorReceipt:
    """Turn a stored anchor row into a receipt."""
    return AnchorReceipt(
        chain_id=int(row["chain_id"]),
        contract=row["contract"],
        tx_hash=row["tx_hash"],
        block_number=int(row["block_number"]),
        chain_label=row["chain_label"],
        checkpoint_sha256=bytes(row["checkpoint_sha256"]),
    )


class LedgerReader:
    """Read-only access to a stored ledger."""

    def __init__(self, engine: Engine) -> None:
        """Bind the storage engine."""
        self.engine = engine

    def size(self) -> int:
        """Return the number of entries."""
        with self.engine.connect() as conn:
            return storage.log_size(conn)

    def root(self, size: int | None = None) -> bytes:
        """Return the tree head at `size` (default: current size)."""
        with self.engine.connect() as conn:
            return root_at(conn, storage.log_size(conn) if size is None else size)

    def entry(self, index: int) -> storage.EntryRow | None:
        """Return the entry at `index`."""
        with self.engine.connect() as conn:
            return storage.get_entry(conn, index)

    def entry_by_event_id(self, event_id: str) -> storage.EntryRow | None:
        """Return the entry that logged `event_id`."""
        with self.engine.connect() as conn:
            return storage.get_entry_by_event_id(conn, event_id)

    def subject_entries(self, subject: str, *, below: int | None = None) -> list[storage.EntryRow]:
        """Return a subject's entries in log order."""
        with self.engine.connect() as conn:
            return storage.subject_entries(conn, subject, below=below)

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """Return the inclusion proof of entry `index` in the tree of `size` entries."""
        with self.engine.connect() as conn:
            return inclusion_proof(conn, index, size)

    def consistency_proof(self, size1: int, size2: int) -> list[bytes]:
        """Return the consistency proof from `size1` to `size2`."""
        with self.engine.connect() as conn:
            return consistency_proof(conn, size1, size2)

    def checkpoint(self, size: int | None = None) -> tuple[int, bytes] | None:
        """Return (size, signed note) of the checkpoint at `size`, or the latest."""
        with self.engine.connect() as conn:
            return storage.get_checkpoint(conn, size)

    def anchors(self, size: int) -> list[AnchorReceipt]:
        """Return the anchor receipts stored with the checkpoint at `size`."""
        with self.engine.connect() as conn:
            return [receipt_from_row(r) for r in storage.anchors_for(conn, size)]
