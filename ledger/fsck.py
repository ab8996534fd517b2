"""Offline checker: recompute everything stored from the entries and report each inconsistency with its evidence."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from ledger import storage
from ledger.checkpoint import Verifier, checkpoint_hash
from ledger.keyring import KeyHistory
from ledger.leaf import Leaf
from ledger.merkle import MemoryTree, leaf_hash, node_hash
from ledger.reader import receipt_from_row
from ledger.verify import (
    AnchorError,
    ChainBroken,
    CheckpointError,
    LeafError,
    MissingEntry,
    NodeMismatch,
    PayloadHashMismatch,
    RolledBack,
    RootMismatch,
    VerificationError,
)
from ledger.witness import CosignatureVerifier, add_cosignatures, require_quorum

if TYPE_CHECKING:
    from web3 import Web3

_ZERO = bytes(32)


@dataclass
class FsckReport:
    """What fsck checked and every problem it found (empty when the log is sound)."""

    size: int = 0
    checkpoints: int = 0
    anchors: int = 0
    anchors_checked_on_chain: int = 0
    entries: int = 0  # one past the highest stored entry index
    chain_events: int | None = None  # Anchored events of the log read from the chain (None: the chain not read)
    latest_chain_anchor: int | None = None  # size of the latest checkpoint anchored on chain, if the log holds it
    latest_witnessed: int | None = None  # the largest checkpoint size with a stored witness cosignature
    witnessed_by: list[str] = field(default_factory=list)  # witnesses whose valid cosignatures met the quorum
    problems: list[VerificationError] = field(default_factory=list)
    truncated: bool = False

    @property
    def rollback(self) -> RolledBack | None:
        """The first rollback found (the log is shorter than, or differs from, what was anchored)."""
        return next((p for p in self.problems if isinstance(p, RolledBack)), None)

    @property
    def ok(self) -> bool:
        """Return whether no problem was found."""
        return not self.problems

    def indices(self) -> set[int]:
        """Return every index named by a problem."""
        return {p.index for p in self.problems if p.index is not None}


class _Problems:
    def __init__(self, report: FsckReport, limit: int) -> None:
        self.report, self.limit = report, limit

    def add(self, problem: VerificationError) -> None:
        if len(self.report.problems) < self.limit:
            self.report.problems.append(problem)
        else:
            self.report.truncated = True


def fsck(  # noqa: C901 - one pass over the log, each check in the order it is reported
    engine: Engine,
    keys: KeyHistory | Verifier,
    *,
    origin: str | None = None,
    w3: Web3 | None = None,
    contracts: Iterable[str] = (),
    max_problems: int = 1000,
    cosignature_lines: Mapping[int, Sequence[str]] | None = None,
    witnesses: Sequence[CosignatureVerifier] = (),
    quorum: int = 0,
) -> FsckReport:
    """Check a stored ledger: leaves, payloads, subject chains, tree nodes, signed checkpoints and anchors.

    Each checkpoint is verified under the key of `keys` valid at its size (a single Verifier: one key for the whole
    log). With `w3`, also every anchor of that chain on chain, and the log against every Anchored event of its
    contracts (those of its anchor rows, plus `contracts`): a deleted or rewritten suffix is a `RolledBack` problem.
    Without a chain, a suffix deleted together with its checkpoints and anchor rows cannot be seen.

    `cosignature_lines` are the witnesses' stored cosignatures per checkpoint size: a cosigned size beyond the log
    is a `RolledBack` problem; with `quorum` > 0 the latest checkpoint must carry valid cosignatures by at least
    `quorum` of `witnesses`.

    Memory is O(n) hashes (about 150 MB at a million entries): the whole tree is recomputed in memory.
    """
    history = keys if isinstance(keys, KeyHistory) else KeyHistory.single(keys)
    report = FsckReport()
    out = _Problems(report, max_problems)
    with engine.connect() as conn:
        stored: list[list[bytes | None]] = []
        for level, idx, h in storage.iter_nodes(conn):
            while len(stored) <= level:
                stored.append([])
            level_row = stored[level]
            if idx >= len(level_row):
                level_row.extend([None] * (idx + 1 - len(level_row)))
            level_row[idx] = h

        computed: list[bytes] = []
        heads: dict[str, bytes] = {}
        for entry in storage.iter_entries(conn):
            while len(computed) < entry.index:
                out.add(MissingEntry("entry row is missing", index=len(computed)))
                fallback = stored[0][len(computed)] if stored and len(computed) < len(stored[0]) else None
                computed.append(fallback or _ZERO)
            computed.append(_check_entry(entry, heads, stored, out))

        cps = storage.all_checkpoints(conn)
        anchor_rows = storage.anchors_for(conn)

    leaves_stored = len(stored[0]) if stored else 0
    last_cp = cps[-1][0] if cps else 0
    report.entries = len(computed)
    if last_cp > report.entries:
        out.add(
            RolledBack(
                f"rolled back: checkpoint {last_cp} was signed but the log has {report.entries} entries",
                index=report.entries,
                expected=last_cp,
                found=report.entries,
            )
        )
    report.size = max(len(computed), leaves_stored, last_cp)
    for index in range(len(computed), report.size):
        out.add(MissingEntry("entry row is missing at the end of the log", index=index))
        computed.append((stored[0][index] or _ZERO) if index < leaves_stored else _ZERO)

    _check_nodes(stored, out)
    tree = MemoryTree(computed)
    notes: dict[int, bytes] = {}
    roots: dict[int, bytes] = {}  # the signed root of each checkpoint whose signature verifies
    for size, note in cps:
        report.checkpoints += 1
        notes[size] = note
        try:
            cp, _key = history.open(note, origin=origin, index=size)
        except VerificationError as exc:
            out.add(exc)
            continue
        if cp.size != size:
            out.add(RootMismatch("checkpoint row size differs from its note", index=size, found=cp.size))
            continue
        roots[size] = cp.root_hash
        root = tree.root(size)
        if cp.root_hash != root:
            out.add(
                RootMismatch(
                    "signed root differs from the entries' root", index=size, expected=cp.root_hash, found=root
                )
            )

    for anchor_row in anchor_rows:
        report.anchors += 1
        receipt = receipt_from_row(anchor_row)
        size = int(anchor_row["checkpoint_size"])
        anchored_note = notes.get(size)
        if anchored_note is None:
            out.add(AnchorError("anchor of a checkpoint that is not stored", index=size))
            continue
        expected = checkpoint_hash(anchored_note)
        if receipt.checkpoint_sha256 != expected:
            out.add(
                AnchorError(
                    "anchor names another checkpoint hash",
                    index=size,
                    expected=expected,
                    found=receipt.checkpoint_sha256,
                )
            )
            continue
        if w3 is not None and int(w3.eth.chain_id) == receipt.chain_id:
            from ledger.anchor import verify_anchor

            try:
                verify_anchor(w3, receipt, expected, index=size)
                report.anchors_checked_on_chain += 1
            except VerificationError as exc:
                out.add(exc)
    if w3 is not None:
        _audit_chain(w3, report, out, anchor_rows, contracts, notes, roots, tree)
    _audit_witnesses(report, out, cps, cosignature_lines or {}, witnesses, quorum)
    return report


def _audit_witnesses(
    report: FsckReport,
    out: _Problems,
    cps: list[tuple[int, bytes]],
    lines: Mapping[int, Sequence[str]],
    witnesses: Sequence[CosignatureVerifier],
    quorum: int,
) -> None:
    """Hold the log to what its witnesses cosigned: no cosigned size beyond the log; a quorum on the latest."""
    notes = dict(cps)
    named = {w.vkey for w in witnesses}
    # A cosignature row names the checkpoint size a witness cosigned: the witness keeps that size as its state and
    # will refuse anything smaller, so a larger size than the log's is a deleted suffix.
    cosigned = [size for size, rows in lines.items() if rows]
    if cosigned:
        report.latest_witnessed = max(cosigned)
    beyond = [size for size in cosigned if size > report.entries]
    if beyond:
        top = max(beyond)
        held = "" if top in notes else " (its checkpoint row is gone too)"
        out.add(
            RolledBack(
                f"rolled back: a witness cosigned the checkpoint of size {top}{held} but the log has "
                f"{report.entries} entries",
                index=report.entries,
                expected=top,
                found=report.entries,
            )
        )
    if quorum <= 0 or not witnesses:
        return
    if not cps:
        out.add(CheckpointError("no checkpoint to hold to the witnesses' quorum", expected=quorum, found=0))
        return
    size, note = cps[-1]
    full = add_cosignatures(note, lines.get(size, ()))
    try:
        valid = require_quorum(full, witnesses, quorum)
    except CheckpointError as exc:
        out.add(
            CheckpointError(
                f"the latest checkpoint ({size}) is not witnessed: fewer than {quorum} valid cosignatures by "
                f"{len(named)} given witness(es)",
                index=size,
                expected=exc.expected,
                found=exc.found,
            )
        )
        return
    report.witnessed_by = [c.witness.vkey for c in valid]


def _audit_chain(
    w3: Web3,
    report: FsckReport,
    out: _Problems,
    anchor_rows: list[dict[str, Any]],
    contracts: Iterable[str],
    notes: dict[int, bytes],
    roots: dict[int, bytes],
    tree: MemoryTree,
) -> None:
    """Hold the log to the Anchored events of its contracts on the connected chain (see ledger.chainlog)."""
    from web3 import Web3

    from ledger.chainlog import anchored_events, audit

    chain_id = int(w3.eth.chain_id)
    here = [r for r in anchor_rows if int(r["chain_id"]) == chain_id]
    addresses = {Web3.to_checksum_address(r["contract"]) for r in here}
    addresses |= {Web3.to_checksum_address(c) for c in contracts}
    if not addresses:
        return
    start = min((int(r["block_number"]) for r in here), default=0)
    events = anchored_events(w3, addresses, from_block=start)
    # Anyone may call the contract: count the senders of the log's own anchors (all senders if none is left).
    own = {(str(r["tx_hash"]).lower(), bytes(r["checkpoint_sha256"])) for r in here}
    senders = {e.sender for e in events if (e.tx_hash.lower(), e.checkpoint_sha256) in own} or None
    by_hash = {checkpoint_hash(note): size for size, note in notes.items()}
    result = audit(
        events,
        by_hash,
        report.entries,
        lambda size: size in roots and size <= report.entries and tree.root(size) == roots[size],
        senders=senders,
    )
    report.chain_events = result.events
    report.latest_chain_anchor = result.latest_size
    for problem in result.problems:
        out.add(problem)


def _check_entry(
    entry: storage.EntryRow, heads: dict[str, bytes], stored: list[list[bytes | None]], out: _Problems
) -> bytes:
    """Check one entry against itself, its subject chain and the stored tree leaf; return its true leaf hash."""
    i = entry.index
    h = leaf_hash(entry.leaf)
    if entry.leaf_hash != h:
        out.add(LeafError("stored leaf hash differs from the leaf bytes", index=i, expected=h, found=entry.leaf_hash))
    tree_leaf = stored[0][i] if stored and i < len(stored[0]) else None
    if tree_leaf != h:
        out.add(LeafError("entry differs from the tree's leaf at its index", index=i, expected=tree_leaf, found=h))
    try:
        leaf = Leaf.from_bytes(entry.leaf, index=i)
    except VerificationError as exc:
        out.add(exc)
        return h
    if leaf.subject != entry.subject or leaf.event_id != entry.event_id:
        out.add(
            LeafError(
                "entry columns differ from its leaf",
                index=i,
                expected=[leaf.subject, leaf.event_id],
                found=[entry.subject, entry.event_id],
            )
        )
    digest = hashlib.sha256(entry.payload).hexdigest()
    if digest != leaf.payload_sha256:
        out.add(
            PayloadHashMismatch("payload differs from its leaf", index=i, expected=leaf.payload_sha256, found=digest)
        )
    prev = heads.get(leaf.subject)
    if leaf.prev_hash_bytes != prev:
        out.add(
            ChainBroken(f"subject {leaf.subject!r} chain broken", index=i, expected=prev, found=leaf.prev_hash_bytes)
        )
    heads[leaf.subject] = h
    return h


def _check_nodes(stored: list[list[bytes | None]], out: _Problems) -> None:
    """Check that every stored interior node is the hash of its two stored children, and none is missing."""
    level = 1
    # Go up while a level is expected (its children pair up) or present, so a missing top level is noticed too.
    while level < len(stored) or (stored and len(stored[level - 1]) >= 2):
        if len(stored) <= level:
            stored.append([])
        below, row = stored[level - 1], stored[level]
        for idx in range(max(len(below) // 2, len(row))):
            found = row[idx] if idx < len(row) else None
            left = below[2 * idx] if 2 * idx < len(below) else None
            right = below[2 * idx + 1] if 2 * idx + 1 < len(below) else None
            expected = node_hash(left, right) if left is not None and right is not None else None
            if found != expected:
                out.add(
                    NodeMismatch(
                        f"stored tree node (level {level}, index {idx}) differs from its children",
                        index=idx << level,
                        expected=expected,
                        found=found,
                    )
                )
        level += 1
