"""Rollback: entries deleted from an index onward, with their tree nodes, checkpoints and anchor rows, leave a log
consistent with itself; only what was anchored on chain (or witnessed) shows the cut. SQLite and PostgreSQL,
eth-tester and anvil."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from ledger_helpers import ORIGIN, make_events
from sqlalchemy import Engine, text

from ledger import anchor, chainlog, storage
from ledger.checkpoint import Signer, checkpoint_hash
from ledger.fsck import FsckReport, fsck
from ledger.verify import RolledBack
from ledger.writer import LedgerWriter

SIZES = (100, 200, 300, 350, 400)
CUT = 300


@pytest.fixture(params=["eth-tester", pytest.param("anvil", marks=pytest.mark.anvil)])
def ledger(request: pytest.FixtureRequest, engine: Engine, signer: Signer) -> dict[str, Any]:
    """A 400-entry log with checkpoints at 100, 200, 300, 350 and 400, each anchored on the chain."""
    if request.param == "eth-tester":
        w3 = anchor.dev_chain()
    else:
        w3 = anchor.connect(request.getfixturevalue("anvil_url"))
    contract = anchor.deploy_anchor_contract(w3)
    anchorer = anchor.Anchorer(w3, contract, chain_label="test chain")
    writer = LedgerWriter(engine, signer=signer, origin=ORIGIN)
    events = make_events(SIZES[-1])
    done = 0
    for size in SIZES:
        writer.append(events[done:size])
        writer.checkpoint()
        writer.anchor(anchorer)
        done = size
    ledger = {
        "engine": engine,
        "signer": signer,
        "w3": w3,
        "contract": contract,
        "writer": writer,
        "anchorer": anchorer,
    }
    report = check(ledger, chain=True)
    assert report.ok, report.problems
    assert (report.entries, report.chain_events, report.latest_chain_anchor) == (400, 5, 400)
    return ledger


def check(ledger: dict[str, Any], *, chain: bool) -> FsckReport:
    return fsck(ledger["engine"], ledger["signer"].verifier, origin=ORIGIN, w3=ledger["w3"] if chain else None)


def cut(engine: Engine, k: int, *, checkpoints: bool = True) -> None:
    """Delete entries k.. and every tree node covering them (and, by default, the checkpoints beyond k and their
    anchor rows), as an attacker with the database would after dropping the triggers."""
    statements = [
        "DELETE FROM ledger_entries WHERE idx >= :k",
        "DELETE FROM ledger_nodes WHERE ((idx + 1) << level) > :k",
    ]
    if checkpoints:
        statements += [
            "DELETE FROM ledger_anchors WHERE checkpoint_size > :k",
            "DELETE FROM ledger_checkpoints WHERE size > :k",
        ]
    with engine.begin() as conn:
        for stmt in storage.drop_trigger_statements(engine.dialect.name):
            conn.exec_driver_sql(stmt)
        for stmt in statements:
            conn.execute(text(stmt), {"k": k})


def test_a_deleted_suffix_with_its_checkpoints_passes_offline_but_not_against_the_chain(
    ledger: dict[str, Any],
) -> None:
    cut(ledger["engine"], CUT)
    offline = check(ledger, chain=False)
    # The documented limit: the remaining log is consistent with itself.
    assert offline.ok, offline.problems
    assert (offline.entries, offline.checkpoints, offline.anchors) == (CUT, 3, 3)
    report = check(ledger, chain=True)
    assert report.anchors_checked_on_chain == 3
    rollback = report.rollback
    assert rollback is not None
    assert rollback.kind == "rollback"
    assert rollback.index == CUT
    assert "rolled back: the latest checkpoint anchored on chain (block" in rollback.message
    assert f"is not in the log of {CUT} entries, and 2 anchored checkpoint(s) are missing" in rollback.message
    assert "\n" not in str(rollback)
    assert report.chain_events == 5
    assert report.latest_chain_anchor is None


def test_a_deleted_suffix_whose_checkpoints_remain_is_caught_offline_and_on_chain(ledger: dict[str, Any]) -> None:
    cut(ledger["engine"], CUT, checkpoints=False)
    offline = check(ledger, chain=False)
    assert offline.rollback is not None
    assert str(offline.rollback).startswith(f"rolled back: checkpoint 400 was signed but the log has {CUT} entries")
    report = check(ledger, chain=True)
    messages = [p.message for p in report.problems if isinstance(p, RolledBack)]
    assert f"but the log has {CUT} entries" in messages[-1]
    assert "the latest anchored checkpoint (block" in messages[-1]
    assert report.latest_chain_anchor == 400


def test_a_log_that_grew_again_after_the_cut_is_still_caught(ledger: dict[str, Any]) -> None:
    """The service went on after the rollback: new entries, a new checkpoint anchored on chain after the cut one."""
    cut(ledger["engine"], CUT)
    other = make_events(150, start=10_000)
    ledger["writer"].append(other)
    ledger["writer"].checkpoint()
    ledger["writer"].anchor(ledger["anchorer"])
    assert check(ledger, chain=False).ok
    report = check(ledger, chain=True)
    assert report.latest_chain_anchor == CUT + 150
    rollback = report.rollback
    assert rollback is not None
    assert "rolled back: a checkpoint anchored on chain (block" in rollback.message
    assert "2 anchored checkpoint(s) are missing" in rollback.message


def test_anchors_sent_by_others_to_the_contract_do_not_count(ledger: dict[str, Any]) -> None:
    """Anyone may call the Anchor contract; only the senders of the log's own anchors speak for it."""
    w3 = ledger["w3"]
    stranger = w3.eth.accounts[1]
    tx = w3.eth.send_transaction({"from": stranger, "to": ledger["contract"], "data": hashlib.sha256(b"spam").digest()})
    w3.eth.wait_for_transaction_receipt(tx)
    report = check(ledger, chain=True)
    assert report.ok, report.problems
    assert report.chain_events == 5
    events = chainlog.anchored_events(w3, [ledger["contract"]])
    assert len(events) == 6
    assert events[-1].sender == stranger


def test_the_audit_reads_each_anchored_hash_in_chain_order(ledger: dict[str, Any]) -> None:
    with ledger["engine"].connect() as conn:
        notes = dict(storage.all_checkpoints(conn))
    events = chainlog.anchored_events(ledger["w3"], [ledger["contract"]], chunk_blocks=2)
    assert [e.checkpoint_sha256 for e in events] == [checkpoint_hash(notes[s]) for s in SIZES]
    assert [e.block_number for e in events] == sorted(e.block_number for e in events)
