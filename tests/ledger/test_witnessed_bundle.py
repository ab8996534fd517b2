"""A witnessed bundle: the log's checkpoints go to a witness, bundles carry its cosignature, and `verify-bundle
--witness --quorum` fails for a checkpoint the witness did not cosign (a rewritten history: fork or rollback)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from ledger_helpers import ORIGIN, make_events
from sqlalchemy import Engine
from starlette.testclient import TestClient
from typer.testing import CliRunner

from ledger import anchor, bundle, reader, storage
from ledger.checkpoint import Signer
from ledger.cli import app
from ledger.verify import CheckpointError
from ledger.witness import Cosigner, Witness, WitnessState
from ledger.witness_client import WitnessEndpoint, WitnessRefused, request_cosignature
from ledger.witness_server import create_witness_app
from ledger.writer import LedgerWriter

SUBJECT = "DECL-0001"
runner = CliRunner()


def _cosigner(i: int) -> Cosigner:
    return Cosigner.from_seed(f"w{i}.witness.test", hashlib.sha256(b"witness %d" % i).digest())


class Setup:
    def __init__(self, engine: Engine, signer: Signer, tmp_path: Path) -> None:
        self.engine, self.signer = engine, signer
        self.writer = LedgerWriter(engine, signer=signer, origin=ORIGIN)
        self.witnesses = [
            Witness(_cosigner(i), {ORIGIN: [signer.verifier]}, WitnessState(tmp_path / f"w{i}.sqlite"))
            for i in range(3)
        ]
        self.clients = [
            TestClient(create_witness_app(w), base_url=f"http://w{i}") for i, w in enumerate(self.witnesses)
        ]
        self.endpoints = [WitnessEndpoint(f"http://w{i}", w.cosigner.verifier) for i, w in enumerate(self.witnesses)]

    def proof(self, old: int, new: int) -> list[bytes]:
        with self.engine.connect() as conn:
            return reader.consistency_proof(conn, old, new)

    def witness(self, size: int, note: bytes, which: range | list[int], old: int = 0) -> list[str]:
        """Submit to the chosen witnesses (claiming `old`; a 409 tells each one's real size)."""
        return [request_cosignature(self.clients[i], self.endpoints[i], note, size, old, self.proof)[0] for i in which]

    def bundle(self, lines: list[str], path: Path) -> Path:
        path.write_bytes(bundle.dumps(bundle.build_bundle(self.engine, SUBJECT, self.signer, cosignature_lines=lines)))
        return path

    def keys(self) -> list[str]:
        return [e.key.vkey for e in self.endpoints]


def _verify(path: Path, *args: str) -> Any:
    return runner.invoke(app, ["verify-bundle", str(path), *args])


def test_witnessed_bundle_verifies_with_quorum_and_fails_short_of_it(
    engine: Engine, signer: Signer, tmp_path: Path
) -> None:
    s = Setup(engine, signer, tmp_path)
    s.writer.append(make_events(10))
    s.witness(*s.writer.checkpoint(), range(3))
    s.writer.append(make_events(13, start=10))
    size, note = s.writer.checkpoint()
    # The witnesses are at 10; the client claims 0 and learns that from the 409, then sends the proof from 10.
    lines = s.witness(size, note, [0, 1])
    path = s.bundle(lines, tmp_path / "b.json")
    w = [a for key in s.keys() for a in ("--witness", key)]

    ok = _verify(path, "--key", signer.verifier.vkey, *w, "--quorum", "2")
    assert ok.exit_code == 0, ok.output
    assert "witnessed:  2 of 3 witnesses (quorum 2)" in ok.output
    assert ok.output.count("cosigned:   w") == 2
    short = _verify(path, *w, "--quorum", "3")
    assert short.exit_code == 1
    assert "not witnessed" in short.stderr
    # Default quorum: every witness given.
    assert _verify(path, *w).exit_code == 1
    assert _verify(path, "--witness", s.keys()[0]).exit_code == 0
    # Without --witness the lines are still there, counted, and the log key still verifies the note.
    plain = _verify(path, "--key", signer.verifier.vkey)
    assert plain.exit_code == 0, plain.output
    assert "2 other signature line(s)" in plain.output
    assert _verify(path, "--quorum", "1").exit_code == 1
    assert "needs at least one --witness" in _verify(path, "--quorum", "1").stderr
    bad = _verify(path, "--witness", signer.verifier.vkey)
    assert bad.exit_code == 1
    assert "0x04" in bad.stderr


def test_cosignatures_do_not_break_anchors(engine: Engine, signer: Signer, tmp_path: Path) -> None:
    s = Setup(engine, signer, tmp_path)
    w3 = anchor.dev_chain()
    anchorer = anchor.Anchorer(w3, anchor.deploy_anchor_contract(w3), chain_label="test chain")
    s.writer.append(make_events(8))
    size, note = s.writer.checkpoint()
    s.writer.anchor(anchorer)
    lines = s.witness(size, note, range(3))
    doc = bundle.build_bundle(engine, SUBJECT, signer, cosignature_lines=lines)
    report = bundle.verify_bundle(doc, w3=w3, witnesses=[e.key for e in s.endpoints], quorum=3)
    assert report.anchors_checked_on_chain == 1
    assert sorted(c.witness.name for c in report.cosignatures) == [f"w{i}.witness.test" for i in range(3)]


def _fresh_sqlite(path: Path) -> Engine:
    other = storage.sqlite_engine(str(path))
    with other.begin() as conn:
        storage.install_schema(conn)
    return other


def test_rewritten_history_is_refused_and_its_bundle_fails(engine: Engine, signer: Signer, tmp_path: Path) -> None:
    honest = Setup(engine, signer, tmp_path)
    honest.writer.append(make_events(12))
    size, note = honest.writer.checkpoint()
    good = honest.witness(size, note, range(3))
    w = [a for key in honest.keys() for a in ("--witness", key)]

    # The operator rewrites history into another database, same key: one payload differs, same size (a fork).
    events = make_events(12)
    events[5] = make_events(12, payload_size=41)[5]
    sqlite_engine = _fresh_sqlite(tmp_path / "fork.sqlite")
    forked = LedgerWriter(sqlite_engine, signer=signer, origin=ORIGIN)
    forked.append(events)
    fsize, fnote = forked.checkpoint()
    assert fsize == size
    assert fnote != note
    for i in range(3):
        with pytest.raises(WitnessRefused) as info:
            request_cosignature(honest.clients[i], honest.endpoints[i], fnote, fsize, size, honest.proof)
        assert info.value.status == 409
    # Its bundle is unwitnessed; pasting the honest cosignatures onto it does not help.
    fork_bundle = tmp_path / "fork.json"
    fork_bundle.write_bytes(bundle.dumps(bundle.build_bundle(sqlite_engine, SUBJECT, signer, cosignature_lines=good)))
    result = _verify(fork_bundle, *w, "--quorum", "1")
    assert result.exit_code == 1
    assert "not witnessed" in result.stderr

    # Rollback: the operator cuts the log to 7 entries and signs that; the witnesses are at 12.
    cut = LedgerWriter(_fresh_sqlite(tmp_path / "cut.sqlite"), signer=signer, origin=ORIGIN)
    cut.append(make_events(7))
    csize, cnote = cut.checkpoint()
    for i in range(3):
        with pytest.raises(WitnessRefused, match="beyond this checkpoint"):
            request_cosignature(honest.clients[i], honest.endpoints[i], cnote, csize, 0, honest.proof)
    # The honest extension is still cosigned.
    honest.writer.append(make_events(3, start=12))
    assert len(honest.witness(*honest.writer.checkpoint(), range(3))) == 3
    assert json.loads(honest.bundle(good, tmp_path / "h.json").read_text())["checkpoint"].count("\u2014") == 4


def test_library_quorum_error_names_who_signed(engine: Engine, signer: Signer, tmp_path: Path) -> None:
    s = Setup(engine, signer, tmp_path)
    s.writer.append(make_events(4))
    lines = s.witness(*s.writer.checkpoint(), [2])
    doc = bundle.build_bundle(engine, SUBJECT, signer, cosignature_lines=lines)
    with pytest.raises(CheckpointError, match="not witnessed") as info:
        bundle.verify_bundle(doc, witnesses=[e.key for e in s.endpoints], quorum=2)
    assert "w2.witness.test" in str(info.value)
