"""The key history (issue 13 §3): validity per checkpoint size, key lists, a standalone log that rotates, and a
rotation checkpoint cosigned by the retiring key that witnesses, bundles and anchors accept."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from ledger_helpers import ORIGIN, make_events
from sqlalchemy import Engine

from ledger import bundle, reader, storage
from ledger.anchor import AnchorReceipt
from ledger.checkpoint import Checkpoint, Signer, checkpoint_hash, open_checkpoint
from ledger.fsck import fsck
from ledger.keyring import KeyHistory, KeyRotationError, parse_key_list
from ledger.verify import BundleError, CheckpointError, KeyValidityError
from ledger.witness import (
    Cosigner,
    Witness,
    WitnessRequestError,
    WitnessState,
    add_cosignatures,
    cosignatures,
    encode_add_checkpoint,
)
from ledger.writer import LedgerWriter, compact_range, record_anchor

A = Signer.from_seed(ORIGIN, hashlib.sha256(b"key a").digest())
B = Signer.from_seed(ORIGIN, hashlib.sha256(b"key b").digest())
C = Signer.from_seed("someone-else", hashlib.sha256(b"key c").digest())
ROOT = bytes(range(32))


def note(size: int, *signers: Signer) -> bytes:
    return Checkpoint(ORIGIN, size, ROOT).sign(*signers)


def test_each_size_is_verified_under_the_key_valid_at_it() -> None:
    history = KeyHistory.from_keys([(0, A.verifier, None), (10, B.verifier, None)])
    assert [k.span for k in history.keys] == ["0..9", "10.."]
    assert history.open(note(9, A))[1].verifier == A.verifier
    assert history.open(note(10, B))[1].verifier == B.verifier
    # The rotation's first checkpoint, cosigned by the retiring key, verifies under the new one.
    assert history.open(note(10, B, A))[1].verifier == B.verifier
    with pytest.raises(KeyValidityError) as late:
        history.open(note(11, A), index=11)
    assert str(late.value).startswith(
        f"checkpoint 11 is signed by key {ORIGIN} valid only for sizes 0..9, not by the key valid at size 11"
    )
    assert late.value.kind == "key-validity"
    assert (late.value.expected, late.value.found) == (B.verifier.vkey, A.verifier.vkey)
    with pytest.raises(KeyValidityError, match="valid only for sizes 10.."):
        history.open(note(3, B))
    with pytest.raises(CheckpointError, match="not signed by the expected key"):
        history.open(note(12, C))
    late_start = KeyHistory.from_keys([(5, A.verifier, None)])
    with pytest.raises(KeyValidityError, match="no key of the log's history is valid at size 2"):
        late_start.open(note(2, C))
    with pytest.raises(KeyValidityError, match="valid only for sizes 5.., not by the key valid at size 2"):
        late_start.open(note(2, A))
    # Pinned keys without a history: any of them at any size; pinning a history narrows it.
    assert KeyHistory.any_of([B.verifier, A.verifier]).open(note(11, A))[1].verifier == A.verifier
    with pytest.raises(CheckpointError, match="the key valid at size 11 is not pinned"):
        history.pinned([A.verifier]).open(note(11, B))
    with pytest.raises(CheckpointError, match="a key appears twice"):
        KeyHistory.from_keys([(0, A.verifier, None), (4, A.verifier, None)])


def test_key_lists_parse_from_the_endpoint_document_and_from_text() -> None:
    history = KeyHistory.from_keys([(0, A.verifier, datetime(2026, 1, 1, tzinfo=UTC)), (10, B.verifier, None)])
    doc = json.dumps(history.to_json(ORIGIN))
    assert [(k.valid_from_size, k.verifier) for k in parse_key_list(doc).keys] == [(0, A.verifier), (10, B.verifier)]
    text = f"# the log's keys\n{B.verifier.vkey} 10\n\n{A.verifier.vkey} 0  # first\n"
    assert parse_key_list(text).keys == parse_key_list(doc).keys
    assert parse_key_list(A.verifier.vkey).keys[0].valid_from_size == 0
    for bad in ("", "# nothing", f"{A.verifier.vkey}\n{B.verifier.vkey} 3", f"{A.verifier.vkey} x", '{"keys": [{}]}'):
        with pytest.raises(CheckpointError):
            parse_key_list(bad)


def test_a_standalone_log_rotates_and_fsck_follows(engine: Engine) -> None:
    first = LedgerWriter(engine, signer=A, origin=ORIGIN)
    first.append(make_events(5))
    size_a, _ = first.checkpoint()
    second = LedgerWriter(engine, signer=B, origin=ORIGIN)
    assert second.checkpoint()[0] == size_a  # nothing new: the stored checkpoint
    second.append(make_events(4, start=5))
    size_b, note_b = second.checkpoint()
    open_checkpoint(note_b, B.verifier, origin=ORIGIN)
    with engine.connect() as conn:
        recorded = KeyHistory.from_rows(storage.key_rows(conn))
    assert [(k.valid_from_size, k.verifier) for k in recorded.keys] == [(0, A.verifier), (size_a + 1, B.verifier)]
    assert fsck(engine, recorded, origin=ORIGIN).ok
    # One key for the whole log no longer fits it.
    single = fsck(engine, A.verifier, origin=ORIGIN)
    assert [p.index for p in single.problems] == [size_b]
    # The retired key never signs again.
    first.append(make_events(1, start=9))
    with pytest.raises(KeyRotationError, match="retired at checkpoint size"):
        first.checkpoint()


def test_the_rotation_checkpoint_is_witnessed_by_the_old_key_and_its_bundle_and_anchor_verify(
    engine: Engine, tmp_path: Path
) -> None:
    writer = LedgerWriter(engine, signer=A, origin=ORIGIN)
    writer.append(make_events(6))
    old_size, old_note = writer.checkpoint()
    # A witness told only the old key cosigns the rotation checkpoint (the old key signs it too) ...
    witness = Witness(Cosigner.from_seed("w.test", bytes(32)), {ORIGIN: [A.verifier]}, WitnessState(tmp_path / "w"))
    witness.add_checkpoint(encode_add_checkpoint(0, [], old_note))
    writer.append(make_events(5, start=6))
    with engine.begin() as conn:
        storage.insert_key(conn, old_size + 1, B.verifier.vkey, datetime.now(UTC))
        size = storage.log_size(conn)
        rotation = Checkpoint(ORIGIN, size, compact_range(conn, size).root()).sign(B, A)
        storage.insert_checkpoint(conn, size, rotation, datetime.now(UTC))
        proof = reader.consistency_proof(conn, old_size, size)
        record_anchor(
            conn,
            size,
            AnchorReceipt(1, "0x" + "ab" * 20, "0x" + "cd" * 32, 7, "test chain", checkpoint_hash(rotation)),
        )
    line = witness.add_checkpoint(encode_add_checkpoint(old_size, proof, rotation))
    with engine.connect() as conn:
        history = KeyHistory.from_rows(storage.key_rows(conn))
    assert fsck(engine, history, origin=ORIGIN).ok
    # ... but not a later one signed by the new key alone: give witnesses the new key before rotating.
    with engine.connect() as conn:
        later = Checkpoint(ORIGIN, size, compact_range(conn, size).root()).sign(B)
    with pytest.raises(WitnessRequestError) as refused:
        witness.add_checkpoint(encode_add_checkpoint(size, [], later))
    assert refused.value.status == 403

    # The bundle (signed by the new key) carries the cosigned rotation checkpoint; its anchor hashes the note with
    # both log signatures, and verifies with the history, with the new key pinned, or unpinned.
    doc = bundle.build_bundle(engine, "DECL-0001", B, size=size, cosignature_lines=[line])
    full = doc["checkpoint"].encode()
    assert cosignatures(full, [witness.cosigner.verifier])
    assert full == add_cosignatures(rotation, [line])
    for kwargs in ({"keys": history}, {"trusted_key": B.verifier}, {}):
        report = bundle.verify_bundle(doc, witnesses=[witness.cosigner.verifier], quorum=1, **kwargs)  # type: ignore[arg-type]
        assert report.tree_size == size
        assert report.checkpoint_key == B.verifier.vkey
        assert report.other_signatures == (0 if "keys" in kwargs else 1)  # the old key's line, unless known
    # A bundle of the new key against a checkpoint of the old one (just after a rotation) needs the history.
    early = bundle.build_bundle(engine, "DECL-0001", B, size=old_size)
    assert bundle.verify_bundle(early, keys=history).checkpoint_key == A.verifier.vkey
    with pytest.raises(CheckpointError, match="give the log's key history with --keys FILE"):
        bundle.verify_bundle(early)
    with pytest.raises(BundleError, match="bundle is signed by another key"):
        bundle.verify_bundle(early, trusted_key=A.verifier)
