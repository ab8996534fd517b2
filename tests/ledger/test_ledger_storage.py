"""Storage, writer and reader on SQLite and PostgreSQL: proofs from O(log n) node reads, append-only triggers."""

from __future__ import annotations

import pytest
from ledger_helpers import ORIGIN, make_events
from sqlalchemy import Engine, event, exc, text

from ledger import merkle, storage
from ledger.checkpoint import Signer, open_checkpoint
from ledger.leaf import Leaf
from ledger.reader import LedgerReader
from ledger.verify import verify_consistency, verify_inclusion
from ledger.writer import LedgerWriter


def test_schema_statements_cover_both_dialects() -> None:
    for dialect in ("sqlite", "postgresql"):
        stmts = storage.ledger_schema_statements(dialect)
        joined = "\n".join(stmts)
        for table in ("ledger_entries", "ledger_nodes", "ledger_checkpoints", "ledger_anchors", "ledger_keys"):
            assert f"CREATE TABLE {table}" in joined
        assert joined.count("CREATE TRIGGER") == (15 if dialect == "sqlite" else 5)
        # Alembic's op.execute(str) wraps each statement in text(): nothing in it may look like a bind parameter.
        for stmt in stmts:
            assert text(stmt).compile().params == {}, stmt
    with pytest.raises(ValueError, match="unsupported"):
        storage.ledger_schema_statements("mysql")


def test_append_read_and_prove(engine: Engine, signer: Signer) -> None:
    writer = LedgerWriter(engine, signer=signer, origin=ORIGIN)
    events = make_events(150)
    # Uneven batches: the writer must resume the tree from the stored right edge every time.
    for lo, hi in ((0, 1), (1, 2), (2, 37), (37, 64), (64, 65), (65, 150)):
        writer.append(events[lo:hi])
    reader = LedgerReader(engine)
    assert reader.size() == 150
    leaves = [e.leaf for e in (reader.entry(i) for i in range(150)) if e is not None]
    tree = merkle.MemoryTree(merkle.leaf_hashes(leaves))
    for size in (1, 2, 3, 64, 65, 99, 150):
        assert reader.root(size) == tree.root(size)
    for index, size in ((0, 1), (5, 150), (63, 64), (64, 65), (149, 150), (77, 99)):
        proof = reader.inclusion_proof(index, size)
        assert proof == tree.inclusion_proof(index, size)
        verify_inclusion(merkle.leaf_hash(leaves[index]), index, size, proof, tree.root(size))
    for size1, size2 in ((1, 150), (37, 64), (64, 65), (65, 150), (99, 150)):
        proof = reader.consistency_proof(size1, size2)
        assert proof == tree.consistency_proof(size1, size2)
        verify_consistency(size1, size2, proof, tree.root(size1), tree.root(size2))

    size, note = writer.checkpoint()
    cp = open_checkpoint(note, signer.verifier, origin=ORIGIN)
    assert (cp.size, cp.root_hash) == (150, tree.root())
    assert writer.checkpoint() == (size, note)  # idempotent at the same size


def test_subject_chains_and_idempotent_appends(engine: Engine, signer: Signer) -> None:
    writer = LedgerWriter(engine, signer=signer, origin=ORIGIN)
    events = make_events(30, subjects=3)
    first = writer.append(events[:20])
    again = writer.append(events[15:30])
    assert [a.duplicate for a in again] == [True] * 5 + [False] * 10
    assert [a.index for a in again[:5]] == [15, 16, 17, 18, 19]
    assert [a.leaf_hash for a in again[:5]] == [a.leaf_hash for a in first[15:20]]
    assert LedgerReader(engine).size() == 30
    for subject in ("DECL-0000", "DECL-0001", "DECL-0002"):
        rows = LedgerReader(engine).subject_entries(subject)
        assert len(rows) == 10
        prev = None
        for row in rows:
            leaf = Leaf.from_bytes(row.leaf)
            assert leaf.prev_hash_bytes == prev
            prev = row.leaf_hash


def test_inclusion_proof_is_one_query_of_log_n_nodes(engine: Engine, signer: Signer) -> None:
    writer = LedgerWriter(engine, signer=signer, origin=ORIGIN)
    writer.append(make_events(1000))
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    proof = LedgerReader(engine).inclusion_proof(517, 1000)
    assert len(statements) == 1
    assert "ledger_nodes" in statements[0]
    assert len(proof) <= 10  # ceil(log2(1000))
    needed = merkle.nodes_for_ranges(merkle.inclusion_ranges(517, 1000))
    assert len(needed) <= 2 * 10


def test_append_only_triggers(engine: Engine, signer: Signer) -> None:
    writer = LedgerWriter(engine, signer=signer, origin=ORIGIN)
    writer.append(make_events(3))
    writer.checkpoint()
    attempts = [
        "UPDATE ledger_entries SET subject = 'x' WHERE idx = 1",
        "DELETE FROM ledger_entries WHERE idx = 2",
        "DELETE FROM ledger_entries",
        "UPDATE ledger_nodes SET level = 9",
        "DELETE FROM ledger_nodes",
        "UPDATE ledger_checkpoints SET size = 1",
        "DELETE FROM ledger_checkpoints",
    ]
    if engine.dialect.name == "postgresql":
        attempts += ["TRUNCATE ledger_entries", "TRUNCATE ledger_nodes CASCADE"]
    for sql in attempts:
        with pytest.raises(exc.DBAPIError, match="append-only"), engine.begin() as conn:
            conn.exec_driver_sql(sql)
    assert LedgerReader(engine).size() == 3


def test_replace_and_upsert_cannot_overwrite(engine: Engine, signer: Signer) -> None:
    """INSERT OR REPLACE deletes the colliding row without firing DELETE triggers unless the connection set
    recursive_triggers (issue 13): a BEFORE INSERT guard refuses it on any connection; UPSERT fires UPDATE's."""
    writer = LedgerWriter(engine, signer=signer, origin=ORIGIN)
    writer.append(make_events(3))
    writer.checkpoint()
    with engine.connect() as conn:
        before = [storage.get_entry(conn, i) for i in range(3)]
        note = storage.get_checkpoint(conn)
    attempts = [
        "INSERT INTO ledger_entries (idx, event_id, subject, leaf_hash, leaf, payload) "
        "SELECT idx, event_id, 'forged', leaf_hash, leaf, payload FROM ledger_entries WHERE idx = 1 "
        "ON CONFLICT (idx) DO UPDATE SET subject = excluded.subject",
        "INSERT INTO ledger_checkpoints (size, note, created_at) SELECT size, note, created_at "
        "FROM ledger_checkpoints WHERE true ON CONFLICT (size) DO UPDATE SET note = excluded.note",
    ]
    if engine.dialect.name == "sqlite":
        attempts += [
            # Same index, new content; and a new index stealing a stored event id (REPLACE deletes that row).
            "INSERT OR REPLACE INTO ledger_entries (idx, event_id, subject, leaf_hash, leaf, payload) "
            "SELECT idx, event_id, 'forged', leaf_hash, leaf, payload FROM ledger_entries WHERE idx = 1",
            "REPLACE INTO ledger_entries (idx, event_id, subject, leaf_hash, leaf, payload) "
            "SELECT 7, event_id, subject, leaf_hash, leaf, payload FROM ledger_entries WHERE idx = 2",
            "INSERT OR REPLACE INTO ledger_nodes (level, idx, hash) VALUES (0, 0, zeroblob(32))",
            "INSERT OR REPLACE INTO ledger_checkpoints (size, note, created_at) "
            "SELECT size, X'00', created_at FROM ledger_checkpoints",
        ]
    for sql in attempts:
        with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                conn.exec_driver_sql("PRAGMA recursive_triggers=OFF")  # as an operator's sqlite3 shell has it
                conn.commit()
            with pytest.raises(exc.DBAPIError, match="append-only"), conn.begin():
                conn.exec_driver_sql(sql)
    with engine.connect() as conn:
        assert [storage.get_entry(conn, i) for i in range(3)] == before
        assert storage.log_size(conn) == 3
        assert storage.get_checkpoint(conn) == note


def test_primary_keys_stop_a_forked_index(engine: Engine, signer: Signer) -> None:
    writer = LedgerWriter(engine, signer=signer, origin=ORIGIN)
    writer.append(make_events(2))
    row = (1, "other", "s", b"0" * 32, b"{}", b"")
    with pytest.raises(exc.IntegrityError), engine.begin() as conn:
        storage.insert_entries(conn, [row])
