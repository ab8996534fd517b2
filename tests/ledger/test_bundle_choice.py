"""The checkpoint a bundle proves against, chosen by index lookups, is the one the full scan of every checkpoint row
chose (issue 13: a bundle request read every checkpoint row, 3.17 s at 50,000 checkpoints)."""

from __future__ import annotations

import random

import pytest
from ledger_helpers import ORIGIN, make_events
from sqlalchemy import Engine, event

from ledger import bundle, reader, storage
from ledger.anchor import AnchorReceipt
from ledger.checkpoint import Signer, checkpoint_hash
from ledger.writer import LedgerWriter, record_anchor


def scanned_choice(conn, first: int, last: int) -> tuple[int, bool] | None:
    """The choice as it was made before (services/provenance/service.py up to issue 13): read every checkpoint and
    every anchor; the latest anchored checkpoint covering `last`, else the latest covering it, else the latest
    covering `first`."""
    sizes = [size for size, _ in storage.all_checkpoints(conn)]
    anchored = {int(r["checkpoint_size"]) for r in storage.anchors_for(conn)}
    covering = [s for s in sizes if s > last]
    for pick in ([s for s in covering if s in anchored], covering):
        if pick:
            return pick[-1], True
    partial = [s for s in sizes if s > first]
    return (partial[-1], False) if partial else None


def anchor(engine: Engine, size: int, note: bytes, *, chain_id: int = 31337) -> None:
    receipt = AnchorReceipt(chain_id, "0x" + "11" * 20, "0x" + f"{size:064x}", size, "test", checkpoint_hash(note))
    with engine.begin() as conn:
        record_anchor(conn, size, receipt)


def grow(engine: Engine, signer: Signer, *, steps: int, seed: int) -> dict[int, bytes]:
    """A log grown in uneven steps, a checkpoint after most of them, some of those anchored (one on two chains)."""
    rng = random.Random(seed)
    writer = LedgerWriter(engine, signer=signer, origin=ORIGIN)
    notes: dict[int, bytes] = {}
    size = 0
    for step in range(steps):
        n = rng.randint(1, 7)
        writer.append(make_events(n, start=size, subjects=9))
        size += n
        if rng.random() < 0.8:
            cp_size, note = writer.checkpoint()
            notes[cp_size] = note
            if rng.random() < 0.3:
                anchor(engine, cp_size, note)
                if step % 5 == 0:
                    anchor(engine, cp_size, note, chain_id=1)
    return notes


def test_chosen_by_index_lookups_equals_the_full_scan_for_every_range(engine: Engine, signer: Signer) -> None:
    notes = grow(engine, signer, steps=60, seed=13)
    with engine.connect() as conn:
        size = storage.log_size(conn)
        assert len(notes) > 30
        assert len(storage.anchors_for(conn)) > 5
        cases = [(first, last) for first in range(-1, size + 1, 3) for last in range(first, size + 2, 5)]
        cases += [(0, 0), (size - 1, size - 1), (0, size - 1)]
        for first, last in cases:
            assert storage.bundle_checkpoint(conn, first=first, last=last) == scanned_choice(conn, first, last), (
                first,
                last,
            )


def test_every_subject_of_the_log_gets_the_scanned_choice(engine: Engine, signer: Signer) -> None:
    grow(engine, signer, steps=40, seed=7)
    with engine.connect() as conn:
        for subject in {r.subject for r in storage.iter_entries(conn)}:
            indices = [r.index for r in storage.subject_entries(conn, subject)]
            assert storage.bundle_checkpoint(conn, first=indices[0], last=indices[-1]) == scanned_choice(
                conn, indices[0], indices[-1]
            )


def test_no_checkpoint_or_none_yet_covering(engine: Engine, signer: Signer) -> None:
    writer = LedgerWriter(engine, signer=signer, origin=ORIGIN)
    writer.append(make_events(4))
    with engine.connect() as conn:
        assert storage.bundle_checkpoint(conn, first=0, last=3) is None
    size, _ = writer.checkpoint()
    writer.append(make_events(4, start=4))
    with engine.connect() as conn:
        assert storage.bundle_checkpoint(conn, first=4, last=7) is None  # the checkpoint stops before them
        assert storage.bundle_checkpoint(conn, first=2, last=6) == (size, False)  # covers the first only
        assert storage.bundle_checkpoint(conn, first=0, last=3) == (size, True)


def test_a_newer_unanchored_checkpoint_loses_to_an_anchored_one_that_covers(engine: Engine, signer: Signer) -> None:
    writer = LedgerWriter(engine, signer=signer, origin=ORIGIN)
    writer.append(make_events(5))
    anchored, note = writer.checkpoint()
    anchor(engine, anchored, note)
    writer.append(make_events(5, start=5))
    newer, _ = writer.checkpoint()
    with engine.connect() as conn:
        assert storage.bundle_checkpoint(conn, first=0, last=4) == (anchored, True)
        assert storage.bundle_checkpoint(conn, first=0, last=5) == (newer, True)
        assert storage.bundle_checkpoint(conn, first=-1, last=-1) == (anchored, True)  # the library's default


def test_the_library_bundle_reads_no_checkpoint_row_but_its_own(engine: Engine, signer: Signer) -> None:
    """The bundle reads a bounded number of checkpoint rows, however many there are (the scan read them all)."""
    notes = grow(engine, signer, steps=50, seed=3)
    statements: list[str] = []

    def seen(_conn, _cursor, statement, _params, _context, _many) -> None:  # type: ignore[no-untyped-def]
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", seen)
    try:
        doc = bundle.build_bundle(engine, "DECL-0003", signer)
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert bundle.verify_bundle(bundle.dumps(doc), trusted_key=signer.verifier).tree_size in notes
    touching = [s for s in statements if "ledger_checkpoints" in s]
    assert touching
    assert all("LIMIT" in s.upper() or "WHERE" in s.upper() for s in touching), touching
    assert not [s for s in statements if "ledger_anchors" in s and "WHERE" not in s.upper()]


@pytest.mark.parametrize("size_given", [True, False])
def test_the_library_bundle_picks_the_latest_anchored_else_the_latest(
    engine: Engine, signer: Signer, size_given: bool
) -> None:
    writer = LedgerWriter(engine, signer=signer, origin=ORIGIN)
    writer.append(make_events(6))
    first, note = writer.checkpoint()
    anchor(engine, first, note)
    writer.append(make_events(6, start=6))
    latest, _ = writer.checkpoint()
    doc = bundle.build_bundle(engine, "DECL-0001", signer, size=latest if size_given else None)
    report = bundle.verify_bundle(bundle.dumps(doc), trusted_key=signer.verifier)
    assert report.tree_size == (latest if size_given else first)
    assert len(report.anchors) == (0 if size_given else 1)
    with pytest.raises(LookupError):
        bundle.build_bundle(engine, "DECL-0001", signer, size=latest + 1)


def test_an_empty_log_has_nothing_to_bundle(engine: Engine, signer: Signer) -> None:
    with pytest.raises(LookupError):
        bundle.build_bundle(engine, "DECL-0001", signer)
    with engine.connect() as conn:
        assert storage.bundle_checkpoint(conn, first=-1, last=-1) is None


def test_a_bundles_proofs_in_one_query_equal_the_proofs_one_by_one(engine: Engine, signer: Signer) -> None:
    grow(engine, signer, steps=30, seed=5)
    with engine.connect() as conn:
        size = storage.log_size(conn)
        for cut in (1, size // 2, size):
            indices = list(range(0, cut, 3))
            assert reader.inclusion_proofs(conn, indices, cut) == [
                reader.inclusion_proof(conn, i, cut) for i in indices
            ]
        assert reader.inclusion_proofs(conn, [], size) == []
