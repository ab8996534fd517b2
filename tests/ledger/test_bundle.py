"""Provenance bundles: verified offline with no database, any edited field fails, anchors checked on chain."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest
from ledger_helpers import ORIGIN, make_events
from sqlalchemy import Engine

from ledger import anchor, bundle
from ledger.checkpoint import Signer
from ledger.verify import (
    AnchorError,
    BundleError,
    ChainBroken,
    InclusionProofError,
    PayloadHashMismatch,
    VerificationError,
)
from ledger.writer import LedgerWriter

SUBJECT = "DECL-0002"


@pytest.fixture
def made(sqlite_engine: Engine, signer: Signer) -> dict[str, Any]:
    """A 50-entry log, a checkpoint anchored on a development chain, and the bundle of one subject."""
    w3 = anchor.dev_chain()
    anchorer = anchor.Anchorer(w3, anchor.deploy_anchor_contract(w3), chain_label=anchor.DEV_CHAIN_LABEL)
    writer = LedgerWriter(sqlite_engine, signer=signer, origin=ORIGIN)
    writer.append(make_events(50))
    writer.checkpoint()
    writer.anchor(anchorer)
    writer.append(make_events(5, start=50))  # after the checkpoint: not in the bundle
    return {"w3": w3, "bundle": bundle.build_bundle(sqlite_engine, SUBJECT, signer), "engine": sqlite_engine}


def test_bundle_verifies_offline(made: dict[str, Any], signer: Signer) -> None:
    report = bundle.verify_bundle(bundle.dumps(made["bundle"]), trusted_key=signer.verifier)
    assert report.subject == SUBJECT
    assert report.tree_size == 50
    assert report.entries == list(range(2, 50, 5))
    assert report.key_pinned
    assert len(report.anchors) == 1
    assert report.anchors[0].chain_label == anchor.DEV_CHAIN_LABEL
    assert report.anchors_checked_on_chain == 0


def test_bundle_anchors_verify_on_chain(made: dict[str, Any]) -> None:
    report = bundle.verify_bundle(made["bundle"], w3=made["w3"])
    assert report.anchors_checked_on_chain == 1
    assert not report.key_pinned


def _paths(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _paths(value, (*path, i))
    yield path


def _mutations(value: Any) -> list[Any]:
    if isinstance(value, bool) or value is None:
        return ["x", 0]
    if isinstance(value, int):
        return [value + 1, value - 1, str(value)]
    if isinstance(value, str):
        flipped = value[:-3] + ("A" if value[-3:-2] != "A" else "B") + value[-2:] if len(value) > 3 else value + "x"
        return [flipped, value + " ", ""]
    if isinstance(value, list):
        return [value[:-1], [*value, value[-1] if value else "x"], list(reversed(value)) if len(value) > 1 else None]
    if isinstance(value, dict):
        return [{**value, "extra": 1}, dict(list(value.items())[1:])]
    return []


def _set(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    doc = copy.deepcopy(doc)
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return doc


def test_every_edited_field_fails(made: dict[str, Any], signer: Signer) -> None:
    original = made["bundle"]
    tried = 0
    for path in _paths(original):
        current: Any = original
        for key in path:
            current = current[key]
        for mutated in _mutations(current):
            if mutated is None or mutated == current:
                continue
            edited = _set(original, path, mutated)
            tried += 1
            with pytest.raises(VerificationError):
                bundle.verify_bundle(json.dumps(edited).encode(), trusted_key=signer.verifier)
            # Unpinned too: the bundle's own signature covers every field.
            with pytest.raises(VerificationError):
                bundle.verify_bundle(edited)
    assert tried > 100
    # Removing a top-level field is an edit as well.
    for key in original:
        with pytest.raises(VerificationError):
            bundle.verify_bundle({k: v for k, v in original.items() if k != key})


def _resign(doc: dict[str, Any], signer: Signer) -> dict[str, Any]:
    """Re-sign an edited bundle with the real key: what a dishonest operator could do."""
    unsigned = {k: v for k, v in doc.items() if k != "signature"}
    sig = signer.sign(bundle._signed_message(unsigned))
    return {**unsigned, "signature": base64.b64encode(signer.verifier.key_id + sig).decode()}


def test_resigned_lies_are_still_caught(made: dict[str, Any], signer: Signer) -> None:
    """Even with the operator's key, the proofs, payloads, chains and anchors must hold."""
    original = made["bundle"]
    payload_edit = copy.deepcopy(original)
    payload_edit["entries"][3]["payload"] = base64.b64encode(b'{"n":17,"pad":"forged"}').decode()
    with pytest.raises(PayloadHashMismatch) as err:
        bundle.verify_bundle(_resign(payload_edit, signer))
    assert err.value.index == original["entries"][3]["index"]

    proof_edit = copy.deepcopy(original)
    proof_edit["entries"][1]["index"] += 1
    with pytest.raises(InclusionProofError):
        bundle.verify_bundle(_resign(proof_edit, signer))

    dropped = copy.deepcopy(original)
    del dropped["entries"][4]
    with pytest.raises(ChainBroken) as chain_err:
        bundle.verify_bundle(_resign(dropped, signer))
    assert chain_err.value.index == original["entries"][5]["index"]

    first_dropped = copy.deepcopy(original)
    del first_dropped["entries"][0]
    with pytest.raises(ChainBroken):
        bundle.verify_bundle(_resign(first_dropped, signer))

    other_tx = copy.deepcopy(original)
    other_tx["anchors"][0]["tx_hash"] = "0x" + "22" * 32
    bundle.verify_bundle(_resign(other_tx, signer))  # offline, a receipt is only a claim...
    with pytest.raises(AnchorError):
        bundle.verify_bundle(_resign(other_tx, signer), w3=made["w3"])  # ...that the chain refutes


def test_other_key_is_refused_when_pinned(made: dict[str, Any]) -> None:
    other = Signer.generate("smartgate-test")
    with pytest.raises(BundleError, match="another key"):
        bundle.verify_bundle(made["bundle"], trusted_key=other.verifier)


def test_build_without_payloads_and_errors(made: dict[str, Any], signer: Signer) -> None:
    slim = bundle.build_bundle(made["engine"], SUBJECT, signer, include_payloads=False)
    assert all(e["payload"] is None for e in slim["entries"])
    bundle.verify_bundle(slim, trusted_key=signer.verifier)
    with pytest.raises(LookupError):
        bundle.build_bundle(made["engine"], "NO-SUCH-SUBJECT", signer)
    with pytest.raises(BundleError, match="not JSON"):
        bundle.verify_bundle(b"{nope")
