"""Tamper tests: an attacker with database access (triggers dropped first) is caught by fsck, which names the index."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from ledger_helpers import ORIGIN, make_events
from sqlalchemy import Engine

from ledger import anchor, storage
from ledger.checkpoint import Checkpoint, Signer
from ledger.fsck import FsckReport, fsck
from ledger.leaf import Leaf
from ledger.verify import (
    AnchorError,
    ChainBroken,
    CheckpointError,
    LeafError,
    MissingEntry,
    PayloadHashMismatch,
    RolledBack,
    RootMismatch,
)
from ledger.writer import LedgerWriter

N = 40


@pytest.fixture
def ledger(engine: Engine, signer: Signer) -> dict[str, Any]:
    """A 40-entry log over 5 subjects with checkpoints at 20 and 40, both anchored on a development chain."""
    w3 = anchor.dev_chain()
    anchorer = anchor.Anchorer(w3, anchor.deploy_anchor_contract(w3), chain_label=anchor.DEV_CHAIN_LABEL)
    writer = LedgerWriter(engine, signer=signer, origin=ORIGIN)
    events = make_events(N)
    writer.append(events[:20])
    writer.checkpoint()
    writer.anchor(anchorer)
    writer.append(events[20:])
    writer.checkpoint()
    writer.anchor(anchorer)
    report = fsck(engine, signer.verifier, origin=ORIGIN, w3=w3)
    assert report.ok, report.problems
    assert (report.size, report.checkpoints, report.anchors, report.anchors_checked_on_chain) == (N, 2, 2, 2)
    return {"engine": engine, "signer": signer, "w3": w3}


def attack(engine: Engine, *sql: str, **params: Any) -> None:
    """Drop the append-only triggers, as an attacker with database access would, then run the statements."""
    from sqlalchemy import text

    with engine.begin() as conn:
        for stmt in storage.drop_trigger_statements(engine.dialect.name):
            conn.exec_driver_sql(stmt)
        for stmt in sql:
            conn.execute(text(stmt), params)


def check(ledger: dict[str, Any]) -> FsckReport:
    return fsck(ledger["engine"], ledger["signer"].verifier, origin=ORIGIN, w3=ledger["w3"])


def kinds_at(report: FsckReport, index: int) -> set[type]:
    return {type(p) for p in report.problems if p.index == index}


def test_triggers_block_the_attack_until_dropped(ledger: dict[str, Any]) -> None:
    from sqlalchemy import exc

    with pytest.raises(exc.DBAPIError, match="append-only"), ledger["engine"].begin() as conn:
        conn.exec_driver_sql("DELETE FROM ledger_entries WHERE idx = 3")
    assert check(ledger).ok


def test_one_byte_of_a_payload(ledger: dict[str, Any]) -> None:
    with ledger["engine"].connect() as conn:
        payload = storage.get_entry(conn, 7).payload  # type: ignore[union-attr]
    forged = payload[:5] + bytes([payload[5] ^ 1]) + payload[6:]
    attack(ledger["engine"], "UPDATE ledger_entries SET payload = :p WHERE idx = 7", p=forged)
    report = check(ledger)
    assert report.indices() == {7}
    (problem,) = report.problems
    assert isinstance(problem, PayloadHashMismatch)
    assert problem.found == hashlib.sha256(forged).hexdigest()
    assert problem.expected == hashlib.sha256(payload).hexdigest()


def test_delete_a_row(ledger: dict[str, Any]) -> None:
    attack(ledger["engine"], "DELETE FROM ledger_entries WHERE idx = 11")
    report = check(ledger)
    assert MissingEntry in kinds_at(report, 11)
    # The next entry of the same subject (DECL-0001: 1, 6, 11, 16...) now follows a hole in its chain.
    assert report.indices() == {11, 16}
    assert ChainBroken in kinds_at(report, 16)


def test_delete_the_last_row_and_its_leaf(ledger: dict[str, Any]) -> None:
    attack(
        ledger["engine"],
        "DELETE FROM ledger_entries WHERE idx = 39",
        "DELETE FROM ledger_nodes WHERE idx = 39 AND level = 0",
    )
    report = check(ledger)
    assert MissingEntry in kinds_at(report, 39)


def test_swap_two_rows(ledger: dict[str, Any]) -> None:
    attack(
        ledger["engine"],
        "CREATE TABLE swap_tmp AS SELECT * FROM ledger_entries WHERE idx IN (3, 12)",
        "DELETE FROM ledger_entries WHERE idx IN (3, 12)",
        "INSERT INTO ledger_entries (idx, event_id, subject, leaf_hash, leaf, payload) "
        "SELECT CASE WHEN idx = 3 THEN 12 ELSE 3 END, event_id, subject, leaf_hash, leaf, payload FROM swap_tmp",
    )
    report = check(ledger)
    # The tree's leaves pin every entry to its index: exactly the two swapped entries are named.
    assert {p.index for p in report.problems if isinstance(p, LeafError)} == {3, 12}
    # Subject chains through them and the signed roots break as well (evidence, not culprits); against the chain,
    # the latest anchored checkpoint no longer matches the log's root at its size.
    assert all(isinstance(p, LeafError | ChainBroken | RootMismatch | RolledBack) for p in report.problems)
    assert [p.message.split(":")[0] for p in report.problems if isinstance(p, RolledBack)] == ["rewritten"]


def test_forge_a_checkpoint(ledger: dict[str, Any]) -> None:
    forger = Signer.generate(ledger["signer"].name)  # same name, other key
    forged = Checkpoint(ORIGIN, 20, hashlib.sha256(b"other tree").digest()).sign(forger)
    attack(ledger["engine"], "UPDATE ledger_checkpoints SET note = :n WHERE size = 20", n=forged)
    report = check(ledger)
    assert CheckpointError in kinds_at(report, 20)


def test_edit_a_signed_checkpoint_root(ledger: dict[str, Any]) -> None:
    with ledger["engine"].connect() as conn:
        _, note = storage.get_checkpoint(conn, 20)  # type: ignore[misc]
    lines = note.split(b"\n")
    lines[2] = __import__("base64").b64encode(hashlib.sha256(b"x").digest())
    attack(ledger["engine"], "UPDATE ledger_checkpoints SET note = :n WHERE size = 20", n=b"\n".join(lines))
    report = check(ledger)
    assert any(isinstance(p, CheckpointError) and "invalid" in p.message for p in report.problems if p.index == 20)
    # Its anchor no longer matches either: the anchored hash is that of the original note.
    assert AnchorError in kinds_at(report, 20)


def test_insert_a_forged_checkpoint_even_with_triggers(ledger: dict[str, Any], signer: Signer) -> None:
    # Inserting is allowed by the triggers; a checkpoint not signed by the log key is still caught.
    forged = Checkpoint(ORIGIN, 30, hashlib.sha256(b"x").digest()).sign(Signer.generate("smartgate-test"))
    with ledger["engine"].begin() as conn:
        storage.insert_checkpoint(conn, 30, forged, __import__("datetime").datetime.now(__import__("datetime").UTC))
    assert CheckpointError in kinds_at(check(ledger), 30)


def test_rewrite_a_subject_chain(ledger: dict[str, Any]) -> None:
    # Subject DECL-0002 has entries 2, 7, 12, 17...; drop 7 from its history by relinking 12 to 2.
    engine = ledger["engine"]
    with engine.connect() as conn:
        e2, e12 = storage.get_entry(conn, 2), storage.get_entry(conn, 12)
    assert e2 is not None
    assert e12 is not None
    old = Leaf.from_bytes(e12.leaf)
    new = Leaf(old.subject, old.event_type, old.event_id, old.payload_sha256, old.time, e2.leaf_hash.hex())
    attack(
        engine,
        "UPDATE ledger_entries SET leaf = :l, leaf_hash = :h WHERE idx = 12",
        l=new.to_bytes(),
        h=new.hash(),
    )
    report = check(ledger)
    assert {ChainBroken, LeafError} <= kinds_at(report, 12)
    chain_problem = next(p for p in report.problems if isinstance(p, ChainBroken))
    assert chain_problem.expected == storage_leaf_hash(engine, 7)
    assert chain_problem.found == e2.leaf_hash


def storage_leaf_hash(engine: Engine, index: int) -> bytes:
    with engine.connect() as conn:
        entry = storage.get_entry(conn, index)
    assert entry is not None
    return entry.leaf_hash


def test_rewrite_history_including_the_tree(ledger: dict[str, Any], signer: Signer) -> None:
    """An attacker who also rewrites every tree node still cannot match the signed checkpoints."""
    from ledger import merkle

    engine = ledger["engine"]
    with engine.connect() as conn:
        entries = list(storage.iter_entries(conn))
    target = entries[12]
    old = Leaf.from_bytes(target.leaf)
    new = Leaf(
        old.subject,
        old.event_type,
        old.event_id,
        old.payload_sha256,
        "2030-01-01T00:00:00.000000Z",
        old.prev_subject_hash,
    )
    hashes = [e.leaf_hash for e in entries]
    hashes[12] = new.hash()
    rows: list[tuple[int, int, bytes]] = []
    cr = merkle.CompactRange()
    for h in hashes:
        cr.append(h, rows)
    # Later entries of the subject point at the old hash: relink them too, as a careful attacker would.
    attack(
        engine,
        "DELETE FROM ledger_nodes",
        "UPDATE ledger_entries SET leaf = :l, leaf_hash = :h WHERE idx = 12",
        l=new.to_bytes(),
        h=new.hash(),
    )
    with engine.begin() as conn:
        storage.insert_nodes(conn, rows)
    report = check(ledger)
    assert RootMismatch in kinds_at(report, 20)
    assert RootMismatch in kinds_at(report, 40)


def test_point_an_anchor_at_another_checkpoint(ledger: dict[str, Any]) -> None:
    with ledger["engine"].connect() as conn:
        _, note20 = storage.get_checkpoint(conn, 20)  # type: ignore[misc]
    attack(
        ledger["engine"],
        "UPDATE ledger_anchors SET checkpoint_sha256 = :h WHERE checkpoint_size = 40",
        h=hashlib.sha256(note20).digest(),
    )
    report = check(ledger)
    (problem,) = report.problems
    assert isinstance(problem, AnchorError)
    assert problem.index == 40


def test_point_an_anchor_at_another_transaction(ledger: dict[str, Any]) -> None:
    # Offline everything matches; only the chain knows that this transaction anchored checkpoint 20.
    attack(
        ledger["engine"],
        "UPDATE ledger_anchors SET tx_hash = (SELECT tx_hash FROM ledger_anchors WHERE checkpoint_size = 20), "
        "block_number = (SELECT block_number FROM ledger_anchors WHERE checkpoint_size = 20) "
        "WHERE checkpoint_size = 40",
    )
    assert fsck(ledger["engine"], ledger["signer"].verifier, origin=ORIGIN).ok
    report = check(ledger)
    (problem,) = report.problems
    assert isinstance(problem, AnchorError)
    assert problem.index == 40
    assert "did not anchor" in problem.message
