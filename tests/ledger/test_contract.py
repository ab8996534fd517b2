"""The Anchor contract: committed bytecode equals a fresh build of contracts/build.py, and it behaves as documented."""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest
from eth_utils import keccak

from ledger import anchor

CONTRACTS = Path(__file__).resolve().parents[2] / "contracts"


def _build_module() -> Any:
    spec = importlib.util.spec_from_file_location("anchor_build", CONTRACTS / "build.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_rebuild_gives_the_committed_bytes() -> None:
    outputs = _build_module().build()
    for name, text in outputs.items():
        assert (CONTRACTS / name).read_text() == text, name
    init = bytes.fromhex((CONTRACTS / "Anchor.bin").read_text().strip())
    runtime = bytes.fromhex((CONTRACTS / "Anchor.runtime.bin").read_text().strip())
    sums = (CONTRACTS / "Anchor.sha256").read_text()
    assert hashlib.sha256(init).hexdigest() in sums
    assert hashlib.sha256(runtime).hexdigest() in sums
    # The library embeds the same bytes (it must work when installed without the contracts/ folder).
    assert bytes.fromhex(anchor.INIT_CODE_HEX) == init
    assert bytes.fromhex(anchor.RUNTIME_CODE_HEX) == runtime
    assert init.endswith(runtime)


def test_topic_matches_the_solidity_event_and_abi() -> None:
    abi = json.loads((CONTRACTS / "Anchor.abi.json").read_text())
    ev = next(item for item in abi if item["type"] == "event")
    signature = f"{ev['name']}({','.join(i['type'] for i in ev['inputs'])})"
    assert signature == "Anchored(bytes32,address)"
    assert keccak(text=signature) == anchor.ANCHORED_TOPIC
    assert (
        "event Anchored(bytes32 indexed checkpointHash, address indexed sender);"
        in (CONTRACTS / "Anchor.sol").read_text()
    )


def test_deployed_contract_behaviour() -> None:
    w3 = anchor.dev_chain()
    address = anchor.deploy_anchor_contract(w3)
    sender = w3.eth.accounts[0]
    digest = hashlib.sha256(b"checkpoint").digest()
    tx = w3.eth.send_transaction({"from": sender, "to": address, "data": digest})
    receipt = w3.eth.wait_for_transaction_receipt(tx)
    (log,) = receipt["logs"]
    assert [bytes(t) for t in log["topics"]] == [
        anchor.ANCHORED_TOPIC,
        digest,
        bytes(12) + bytes.fromhex(sender[2:]),
    ]
    assert bytes(log["data"]) == b""
    bad_calls: list[dict[str, Any]] = [
        {"data": digest[:31]},
        {"data": digest + b"\x00"},
        {"data": b""},
        {"data": digest, "value": 1},
    ]
    for bad in bad_calls:
        with pytest.raises(Exception, match="revert"):
            w3.eth.send_transaction({"from": sender, "to": address, **bad})  # type: ignore[typeddict-item]
