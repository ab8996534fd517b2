"""A bundle's anchors on chain: any one that verifies anchors it, a missing one is named missing, and the verifier
says when no anchor was checked at all (library on eth-tester, `verify-bundle --rpc` on anvil)."""

from __future__ import annotations

import base64
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from ledger_helpers import ORIGIN, make_events
from sqlalchemy import Engine
from typer.testing import CliRunner

from ledger import anchor, bundle
from ledger.checkpoint import Signer
from ledger.cli import app
from ledger.verify import AnchorMissing
from ledger.writer import LedgerWriter

SUBJECT = "DECL-0001"
NO_CODE = "0x" + "11" * 20


def resign(doc: dict[str, Any], signer: Signer) -> dict[str, Any]:
    """Re-sign an edited bundle with the log key (the operator can always do this)."""
    unsigned = {k: v for k, v in doc.items() if k != "signature"}
    sig = signer.sign(bundle._signed_message(unsigned))
    return {**unsigned, "signature": base64.b64encode(signer.verifier.key_id + sig).decode()}


def with_anchors(doc: dict[str, Any], anchors: list[dict[str, Any]], signer: Signer) -> dict[str, Any]:
    return resign({**doc, "anchors": anchors}, signer)


def make(engine: Engine, signer: Signer, w3: Any, *, private_key: str | None = None) -> dict[str, Any]:
    """A 20-entry log whose checkpoint is anchored on `w3`, and one subject's bundle."""
    anchorer = anchor.Anchorer(w3, anchor.deploy_anchor_contract(w3, private_key=private_key), chain_label="test chain")
    writer = LedgerWriter(engine, signer=signer, origin=ORIGIN)
    writer.append(make_events(20))
    writer.checkpoint()
    receipt = writer.anchor(anchorer)
    return {"bundle": bundle.build_bundle(engine, SUBJECT, signer), "receipt": receipt}


@pytest.fixture
def made(sqlite_engine: Engine, signer: Signer) -> dict[str, Any]:
    w3 = anchor.dev_chain()
    return {"w3": w3, **make(sqlite_engine, signer, w3)}


def test_any_anchor_that_verifies_anchors_the_bundle_and_a_missing_one_is_named(
    made: dict[str, Any], signer: Signer
) -> None:
    real = made["receipt"]
    missing = replace(real, contract=NO_CODE)
    doc = with_anchors(made["bundle"], [missing.to_json(), real.to_json()], signer)
    report = bundle.verify_bundle(doc, w3=made["w3"])
    assert report.anchors_checked_on_chain == 1
    assert [c.status for c in report.anchor_checks] == ["missing", "verified"]
    assert "anchor missing on chain" in report.anchor_checks[0].detail


def test_a_bundle_whose_only_anchors_are_missing_fails_naming_them(made: dict[str, Any], signer: Signer) -> None:
    real = made["receipt"]
    gone_tx = replace(real, tx_hash="0x" + "22" * 32)
    gone_contract = replace(real, contract=NO_CODE)
    doc = with_anchors(made["bundle"], [gone_contract.to_json(), gone_tx.to_json()], signer)
    with pytest.raises(AnchorMissing, match="no anchor of the bundle verifies on chain .*: anchor missing on chain"):
        bundle.verify_bundle(doc, w3=made["w3"])


def test_anchors_of_another_chain_are_not_checked_and_that_is_said(made: dict[str, Any], signer: Signer) -> None:
    elsewhere = replace(made["receipt"], chain_id=1)
    report = bundle.verify_bundle(with_anchors(made["bundle"], [elsewhere.to_json()], signer), w3=made["w3"])
    assert report.anchors_checked_on_chain == 0
    assert [c.status for c in report.anchor_checks] == ["other-chain"]
    unanchored = bundle.verify_bundle(with_anchors(made["bundle"], [], signer), w3=made["w3"])
    assert unanchored.anchors_checked_on_chain == 0
    assert unanchored.anchor_checks == []


@pytest.mark.anvil
def test_verify_bundle_rpc_names_missing_anchors_and_unchecked_bundles(
    anvil_url: str, sqlite_engine: Engine, signer: Signer, tmp_path: Path
) -> None:
    w3 = anchor.connect(anvil_url)
    built = make(sqlite_engine, signer, w3)
    real = built["receipt"]
    missing = replace(real, contract=NO_CODE)
    runner = CliRunner()

    def run(doc: dict[str, Any]) -> Any:
        path = tmp_path / "bundle.json"
        path.write_bytes(bundle.dumps(doc))
        return runner.invoke(app, ["verify-bundle", str(path), "--rpc", anvil_url])

    both = run(with_anchors(built["bundle"], [missing.to_json(), real.to_json()], signer))
    assert both.exit_code == 0, both.output
    assert both.stdout.startswith("OK: subject")
    assert f"contract {NO_CODE}" in both.stdout
    assert "MISSING on chain: anchor missing on chain 31337: no contract at" in both.stdout
    assert f"tx {real.tx_hash} block {real.block_number}: verified on chain" in both.stdout
    assert "WARNING" not in both.stdout

    only_missing = run(with_anchors(built["bundle"], [missing.to_json()], signer))
    assert only_missing.exit_code == 1
    assert "bundle does NOT verify: no anchor of the bundle verifies on chain 31337: anchor missing" in (
        only_missing.stderr
    )
    assert only_missing.stderr.count("\n") == 1

    none = run(with_anchors(built["bundle"], [], signer))
    assert none.exit_code == 0, none.output
    assert "no anchor was checked on chain (the bundle has no anchor)" in none.stdout

    elsewhere = run(with_anchors(built["bundle"], [replace(real, chain_id=1).to_json()], signer))
    assert elsewhere.exit_code == 0, elsewhere.output
    assert "not checked (another chain)" in elsewhere.stdout
    assert "no anchor was checked on chain (none of its anchors is on the --rpc chain)" in elsewhere.stdout
