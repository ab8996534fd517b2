"""`smartgate ledger` CLI: verify-bundle (offline and with --rpc), keygen; errors are one line, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ledger_golden import GOLDEN
from ledger_helpers import ORIGIN, make_events
from sqlalchemy import Engine
from typer.testing import CliRunner

from ledger import anchor, bundle
from ledger.checkpoint import Signer
from ledger.cli import app
from ledger.keys import load_signer
from ledger.writer import LedgerWriter

runner = CliRunner()
GOLDEN_BUNDLE = GOLDEN / "bundle-DECL-0001.json"
GOLDEN_KEY = json.loads((GOLDEN / "expected.json").read_text())["public_key"]


def test_verify_golden_bundle_offline() -> None:
    result = runner.invoke(app, ["verify-bundle", str(GOLDEN_BUNDLE), "--key", GOLDEN_KEY])
    assert result.exit_code == 0, result.output
    assert "OK: subject 'DECL-0001': 5 entries" in result.output
    assert "pinned with --key" in result.output
    assert "not anchored" in result.output


def test_edited_bundle_fails_with_one_line(tmp_path: Path) -> None:
    doc = json.loads(GOLDEN_BUNDLE.read_text())
    doc["entries"][0]["index"] = 2
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(doc))
    result = runner.invoke(app, ["verify-bundle", str(edited)])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: bundle does NOT verify")
    assert result.stderr.count("\n") == 1
    missing = runner.invoke(app, ["verify-bundle", str(tmp_path / "nope.json")])
    assert missing.exit_code == 1
    assert "cannot read" in missing.stderr
    badkey = runner.invoke(app, ["verify-bundle", str(GOLDEN_BUNDLE), "--key", "junk"])
    assert badkey.exit_code == 1
    assert "verifier key" in badkey.stderr


@pytest.mark.anvil
def test_verify_bundle_with_rpc_on_anvil(anvil_url: str, sqlite_engine: Engine, signer: Signer, tmp_path: Path) -> None:
    w3 = anchor.connect(anvil_url)
    anchorer = anchor.Anchorer(w3, anchor.deploy_anchor_contract(w3), chain_label="anvil (local test node)")
    writer = LedgerWriter(sqlite_engine, signer=signer, origin=ORIGIN)
    writer.append(make_events(12))
    writer.checkpoint()
    writer.anchor(anchorer)
    path = tmp_path / "b.json"
    path.write_bytes(bundle.dumps(bundle.build_bundle(sqlite_engine, "DECL-0001", signer)))
    result = runner.invoke(app, ["verify-bundle", str(path), "--rpc", anvil_url, "--key", signer.verifier.vkey])
    assert result.exit_code == 0, result.output
    assert "verified on chain" in result.output
    down = runner.invoke(app, ["verify-bundle", str(path), "--rpc", "http://127.0.0.1:9"])
    assert down.exit_code == 1
    assert "cannot reach" in down.stderr


def test_keygen() -> None:
    result = runner.invoke(app, ["keygen", "customs.example/ledger"])
    assert result.exit_code == 0
    signer = load_signer(result.stdout.strip())
    assert signer.name == "customs.example/ledger"
    assert result.stderr == f"vkey: {signer.verifier.vkey}\n"  # what witnesses need before a key rotation
    refused = runner.invoke(app, ["keygen", "x-dev"])
    assert refused.exit_code == 1
    assert "reserved" in refused.stderr
