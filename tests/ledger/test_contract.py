"""The Anchor contract: the committed bytecode is the pinned solc's output for Anchor.sol; it behaves as documented."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from eth_utils import keccak

from ledger import anchor

REPO = Path(__file__).resolve().parents[2]
CONTRACTS = REPO / "contracts"


def _compile_module() -> Any:
    spec = importlib.util.spec_from_file_location("anchor_compile", CONTRACTS / "compile.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


compile_py = _compile_module()


@pytest.fixture(scope="module")
def compiled() -> dict[str, str]:
    """The files compile.py would write, from a fresh compile; skip without node + the pinned solc, FAIL under CI."""
    try:
        return dict(compile_py.compile_outputs())
    except compile_py.CompilerUnavailable as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true requires the contract build check: {exc}")
        pytest.skip(str(exc))


def test_committed_files_are_the_compilers_output(compiled: dict[str, str]) -> None:
    assert set(compiled) == {"Anchor.bin", "Anchor.runtime.bin", "Anchor.abi.json", "Anchor.sha256"}
    for name, text in compiled.items():
        assert (CONTRACTS / name).read_text() == text, f"contracts/{name} is stale: run python contracts/compile.py"


def test_library_embeds_the_committed_bytecode() -> None:
    init = bytes.fromhex((CONTRACTS / "Anchor.bin").read_text().strip())
    runtime = bytes.fromhex((CONTRACTS / "Anchor.runtime.bin").read_text().strip())
    sums = (CONTRACTS / "Anchor.sha256").read_text()
    assert f"{hashlib.sha256(init).hexdigest()}  Anchor.bin" in sums
    assert f"{hashlib.sha256(runtime).hexdigest()}  Anchor.runtime.bin" in sums
    # The library embeds the same bytes (it must work when installed without the contracts/ folder).
    assert bytes.fromhex(anchor.INIT_CODE_HEX) == init, "update INIT_CODE_HEX in ledger/anchor.py from Anchor.bin"
    assert bytes.fromhex(anchor.RUNTIME_CODE_HEX) == runtime, "update RUNTIME_CODE_HEX from Anchor.runtime.bin"
    assert init.endswith(runtime)


def test_one_pinned_compiler_version() -> None:
    # The source's pragma, compile.py's pin and what system-deps.sh installs are the same exact version.
    version = compile_py.SOLC_VERSION
    assert re.fullmatch(r"\d+\.\d+\.\d+", version)
    assert f"pragma solidity {version};" in (CONTRACTS / "Anchor.sol").read_text()
    assert "contracts/compile.py" in (REPO / "scripts" / "system-deps.sh").read_text()
    assert compile_py.SETTINGS["evmVersion"] == "paris"
    assert compile_py.SETTINGS["optimizer"] == {"enabled": True, "runs": 200}


def test_compiler_errors_and_warnings_fail_the_build() -> None:
    output = {"errors": [{"severity": "warning", "formattedMessage": "Warning: unused variable\n"}], "contracts": {}}
    with pytest.raises(compile_py.CompileError, match="unused variable"):
        compile_py.outputs_from(output)


def test_topic_matches_the_solidity_event_and_abi() -> None:
    abi = json.loads((CONTRACTS / "Anchor.abi.json").read_text())
    ev = next(item for item in abi if item["type"] == "event")
    signature = f"{ev['name']}({','.join(i['type'] for i in ev['inputs'])})"
    assert signature == "Anchored(bytes32,address)"
    assert [i["indexed"] for i in ev["inputs"]] == [True, True]
    assert keccak(text=signature) == anchor.ANCHORED_TOPIC
    assert {"type": "fallback", "stateMutability": "nonpayable"} in abi
    assert [item["type"] for item in abi] == ["event", "fallback"]  # no functions: calldata is the bare hash


@pytest.fixture(params=["eth-tester", pytest.param("anvil", marks=pytest.mark.anvil)])
def w3(request: pytest.FixtureRequest) -> Any:
    """A chain to deploy on: the in-process eth-tester chain, or anvil."""
    if request.param == "eth-tester":
        return anchor.dev_chain()
    return anchor.connect(request.getfixturevalue("anvil_url"))


def test_deployed_contract_behaviour(w3: Any) -> None:
    address = anchor.deploy_anchor_contract(w3)
    assert bytes(w3.eth.get_code(address)) == bytes.fromhex(anchor.RUNTIME_CODE_HEX)
    sender = w3.eth.accounts[0]
    for digest in (hashlib.sha256(b"checkpoint").digest(), bytes(32), b"\xff" * 32):
        tx = w3.eth.send_transaction({"from": sender, "to": address, "data": digest})
        receipt = w3.eth.wait_for_transaction_receipt(tx)
        assert receipt["status"] == 1
        (log,) = receipt["logs"]
        assert log["address"] == address
        assert [bytes(t) for t in log["topics"]] == [
            anchor.ANCHORED_TOPIC,
            digest,
            bytes(12) + bytes.fromhex(sender[2:]),
        ]
        assert bytes(log["data"]) == b""
    digest = hashlib.sha256(b"checkpoint").digest()
    bad_calls: list[dict[str, Any]] = [
        {"data": digest[:31]},
        {"data": digest + b"\x00"},
        {"data": b""},
        {"data": digest, "value": 1},
    ]
    for bad in bad_calls:
        with pytest.raises(Exception, match="revert"):
            w3.eth.send_transaction({"from": sender, "to": address, **bad})


def test_deploying_with_value_reverts(w3: Any) -> None:
    sender = w3.eth.accounts[0]
    with pytest.raises(Exception, match="revert"):
        w3.eth.send_transaction({"from": sender, "data": bytes.fromhex(anchor.INIT_CODE_HEX), "value": 1})


def test_a_missing_compiler_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(compile_py, "SOLC_JS", tmp_path / "solc")
    with pytest.raises(compile_py.CompilerUnavailable, match=r"solc 0\.8\.\d+ not installed in \.tools/"):
        compile_py.run_solc(compile_py.standard_json_input())
    assert compile_py.main(["--check"]) == 2
