"""Anchoring on both chains: the in-process eth-tester development chain and a real node (anvil from npm)."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Any

import pytest
from ledger_helpers import ANVIL_DEV_KEY

from ledger import anchor
from ledger.verify import AnchorError


@pytest.fixture(
    params=[
        "eth-tester",
        pytest.param("anvil", marks=pytest.mark.anvil),
        pytest.param("anvil-signed", marks=pytest.mark.anvil),
    ]
)
def chain(request: pytest.FixtureRequest) -> dict[str, Any]:
    """A chain with a deployed Anchor contract: dev chain, anvil (node account), anvil (locally signed txs)."""
    if request.param == "eth-tester":
        w3 = anchor.dev_chain()
        label, key = anchor.DEV_CHAIN_LABEL, None
    else:
        w3 = anchor.connect(request.getfixturevalue("anvil_url"))
        label = "anvil (local test node)"
        key = ANVIL_DEV_KEY if request.param == "anvil-signed" else None
    contract = anchor.deploy_anchor_contract(w3, private_key=key)
    return {
        "w3": w3,
        "contract": contract,
        "anchorer": anchor.Anchorer(w3, contract, chain_label=label, private_key=key),
    }


def test_anchor_and_verify(chain: dict[str, Any]) -> None:
    w3, anchorer = chain["w3"], chain["anchorer"]
    digest = hashlib.sha256(b"note 1").digest()
    receipt = anchorer.anchor(digest)
    assert receipt.chain_id == w3.eth.chain_id
    assert receipt.contract == chain["contract"]
    assert receipt.block_number >= 1
    assert receipt.tx_hash.startswith("0x")
    anchor.verify_anchor(w3, receipt, digest)
    assert anchor.AnchorReceipt.from_json(receipt.to_json()) == receipt


def test_verify_rejects_a_receipt_pointing_elsewhere(chain: dict[str, Any]) -> None:
    w3, anchorer = chain["w3"], chain["anchorer"]
    d1, d2 = hashlib.sha256(b"one").digest(), hashlib.sha256(b"two").digest()
    r1, r2 = anchorer.anchor(d1), anchorer.anchor(d2)
    # The receipt claims d1 but names the transaction that anchored d2: the chain says otherwise.
    forged = replace(r2, checkpoint_sha256=d1)
    with pytest.raises(AnchorError, match="did not anchor this checkpoint") as err:
        anchor.verify_anchor(w3, forged, d1, index=7)
    assert err.value.index == 7
    assert err.value.expected == d1
    assert err.value.found == d2
    with pytest.raises(AnchorError, match="another checkpoint hash"):
        anchor.verify_anchor(w3, r1, d2)
    with pytest.raises(AnchorError, match="another chain"):
        anchor.verify_anchor(w3, replace(r1, chain_id=r1.chain_id + 1), d1)
    with pytest.raises(AnchorError, match="another block"):
        anchor.verify_anchor(w3, replace(r1, block_number=r1.block_number + 100), d1)
    with pytest.raises(AnchorError, match="anchor missing on chain .*: no contract at"):
        anchor.verify_anchor(w3, replace(r1, contract=w3.eth.accounts[0]), d1)
    with pytest.raises(AnchorError, match="not found"):
        anchor.verify_anchor(w3, replace(r1, tx_hash="0x" + "11" * 32), d1)


def test_connect_fails_clearly_without_a_node() -> None:
    with pytest.raises(AnchorError, match="cannot reach"):
        anchor.connect("http://127.0.0.1:9", timeout_s=1)


def test_an_anchor_sent_to_an_address_without_code_raises_instead_of_returning_a_receipt(
    chain: dict[str, Any],
) -> None:
    """What a reset chain looks like to a sender: the call succeeds, nothing is emitted; that is no anchor."""
    w3 = chain["w3"]
    empty = "0x" + "11" * 20
    assert not anchor.has_anchor_code(w3, empty)
    assert anchor.has_anchor_code(w3, chain["contract"])
    lost = anchor.Anchorer(w3, empty, chain_label="reset", private_key=chain["anchorer"]._private_key)
    with pytest.raises(anchor.AnchorMissing, match="emitted no Anchored event: no Anchor contract at"):
        lost.anchor(hashlib.sha256(b"note").digest())


def test_a_receipt_of_a_reset_chain_is_named_missing() -> None:
    w3 = anchor.dev_chain()
    anchorer = anchor.Anchorer(w3, anchor.deploy_anchor_contract(w3), chain_label=anchor.DEV_CHAIN_LABEL)
    digest = hashlib.sha256(b"note").digest()
    receipt = anchorer.anchor(digest)
    w3.provider.ethereum_tester.reset_to_genesis()  # type: ignore[attr-defined]
    with pytest.raises(anchor.AnchorMissing, match="anchor missing on chain 131277322940537: no contract at"):
        anchor.verify_anchor(w3, receipt, digest, index=3)
    anchor.deploy_anchor_contract(w3)  # the same deployer and nonce: the same address again, but not the tx
    with pytest.raises(anchor.AnchorMissing, match="transaction not found"):
        anchor.verify_anchor(w3, receipt, digest, index=3)
