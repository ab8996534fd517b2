"""Appending to the ledger: batched entries with their subject chains and tree nodes, checkpoints and anchors."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from ledger import storage
from ledger.checkpoint import Checkpoint, Signer, checkpoint_hash
from ledger.keyring import record_signing_key
from ledger.leaf import Leaf
from ledger.merkle import CompactRange, frontier, leaf_hash

if TYPE_CHECKING:
    from ledger.anchor import Anchorer, AnchorReceipt


@dataclass(frozen=True, slots=True)
class Event:
    """A domain event to log: who it is about, what happened, its unique id, raw payload and time."""

    subject: str
    event_type: str
    event_id: str
    payload: bytes
    time: datetime


@dataclass(frozen=True, slots=True)
class Appended:
    """Where an event landed; `duplicate` is True when its event id was already logged (idempotent append)."""

    index: int
    event_id: str
    leaf_hash: bytes
    duplicate: bool


def compact_range(conn: Connection, size: int) -> CompactRange:
    """Load the right edge of the stored tree of `size` leaves (≤ log2(size) node reads, one query)."""
    ids = frontier(size)
    found = storage.fetch_nodes(conn, ids)
    missing = [i for i in ids if i not in found]
    if missing:
        raise LookupError(f"tree nodes missing from storage: {missing}")
    return CompactRange(size, {level: found[(level, idx)] for level, idx in ids})


def append_events(conn: Connection, events: Sequence[Event]) -> list[Appended]:
    """Append events inside the caller's transaction: leaves, subject chains and every completed tree node."""
    storage.lock_for_append(conn)
    known = storage.existing_event_ids(conn, [e.event_id for e in events])
    size = storage.log_size(conn)
    tree = compact_range(conn, size)
    heads = storage.subject_heads(conn, {e.subject for e in events})
    entry_rows: list[tuple[Any, ...]] = []
    node_rows: list[tuple[int, int, bytes]] = []
    result: list[Appended] = []
    for ev in events:
        if ev.event_id in known:
            # At-least-once delivery: a replayed event is answered with where it already is, never appended twice.
            idx, prior = known[ev.event_id]
            result.append(Appended(idx, ev.event_id, prior, True))
            continue
        leaf = Leaf.create(
            subject=ev.subject,
            event_type=ev.event_type,
            event_id=ev.event_id,
            payload=ev.payload,
            time=ev.time,
            prev_subject_hash=heads.get(ev.subject),
        )
        leaf_bytes = leaf.to_bytes()
        h = leaf_hash(leaf_bytes)
        index = tree.size
        tree.append(h, node_rows)
        heads[ev.subject] = h
        entry_rows.append((index, ev.event_id, ev.subject, h, leaf_bytes, ev.payload))
        known[ev.event_id] = (index, h)
        result.append(Appended(index, ev.event_id, h, False))
    storage.insert_entries(conn, entry_rows)
    storage.insert_nodes(conn, node_rows)
    return result


def sign_checkpoint(conn: Connection, signer: Signer, origin: str) -> tuple[int, bytes]:
    """Sign and store a checkpoint at the current size (or return the stored one at that size). The signer is
    recorded in the log's key history first (a new key is a rotation: it signs from the next checkpoint on; a
    retired key raises `keyring.KeyRotationError`)."""
    size = storage.log_size(conn)
    existing = storage.get_checkpoint(conn, size)
    if existing is not None:
        return existing
    record = record_signing_key(conn, signer.verifier, origin=origin, now=datetime.now(UTC))
    own = record.history.find(signer.verifier)
    if own is not None and size < own.valid_from_size:
        raise LookupError(f"the key signs from size {own.valid_from_size}; the log has {size} entries")
    note = Checkpoint(origin, size, compact_range(conn, size).root()).sign(signer)
    storage.insert_checkpoint(conn, size, note, datetime.now(UTC))
    return size, note


def record_anchor(conn: Connection, size: int, receipt: AnchorReceipt) -> None:
    """Store an anchor receipt with its checkpoint."""
    storage.insert_anchor(
        conn,
        {
            "checkpoint_size": size,
            "chain_id": receipt.chain_id,
            "contract": receipt.contract,
            "tx_hash": receipt.tx_hash,
            "block_number": receipt.block_number,
            "chain_label": receipt.chain_label,
            "checkpoint_sha256": receipt.checkpoint_sha256,
            "created_at": datetime.now(UTC),
        },
    )


class LedgerWriter:
    """Convenience writer over an engine: one transaction per call."""

    def __init__(self, engine: Engine, *, signer: Signer, origin: str) -> None:
        """Bind storage, the checkpoint signer and the log's origin line."""
        self.engine = engine
        self.signer = signer
        self.origin = origin

    def append(self, events: Sequence[Event]) -> list[Appended]:
        """Append a batch of events durably, in one transaction."""
        with self.engine.begin() as conn:
            return append_events(conn, events)

    def checkpoint(self) -> tuple[int, bytes]:
        """Sign and store a checkpoint at the current size; return (size, signed note)."""
        with self.engine.begin() as conn:
            return sign_checkpoint(conn, self.signer, self.origin)

    def anchor(self, anchorer: Anchorer, size: int | None = None) -> AnchorReceipt:
        """Anchor a stored checkpoint (default: the latest) and store the receipt with it."""
        with self.engine.connect() as conn:
            found = storage.get_checkpoint(conn, size)
        if found is None:
            raise LookupError("no checkpoint to anchor")
        cp_size, note = found
        # The chain call happens outside any database transaction: it can take seconds.
        receipt = anchorer.anchor(checkpoint_hash(note))
        with self.engine.begin() as conn:
            record_anchor(conn, cp_size, receipt)
        return receipt
