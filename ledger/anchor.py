"""Anchoring checkpoint hashes on an EVM chain through web3.py: deploy the Anchor contract, anchor, verify."""

from __future__ import annotations

import hashlib
import sys
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from ledger.verify import AnchorError, AnchorMissing

if TYPE_CHECKING:  # web3 is heavy to import: only the functions that talk to a chain import it
    from web3 import Web3

# contracts/Anchor.sol compiled by the pinned solc (contracts/compile.py, see contracts/README.md), embedded so that
# the library works installed without contracts/; tests/ledger/test_contract.py checks they equal the compiler's output.
INIT_CODE_HEX = (
    "6080604052348015600f57600080fd5b50606f80601d6000396000f3fe6080604052348015600f57600080fd5b5060203614601c"
    "57600080fd5b3360263660006051565b6040517fcdfd8c88d25a86e1d49452dc0ae55de56801c9cf37d5b930dc3893c32d5e0b1e"
    "90600090a3005b80356020831015606957600019602084900360031b1b165b9291505056"
)
RUNTIME_CODE_HEX = (
    "6080604052348015600f57600080fd5b5060203614601c57600080fd5b3360263660006051565b6040517fcdfd8c88d25a86e1d4"
    "9452dc0ae55de56801c9cf37d5b930dc3893c32d5e0b1e90600090a3005b80356020831015606957600019602084900360031b1b"
    "165b9291505056"
)
# keccak256("Anchored(bytes32,address)")
ANCHORED_TOPIC = bytes.fromhex("cdfd8c88d25a86e1d49452dc0ae55de56801c9cf37d5b930dc3893c32d5e0b1e")
DEV_CHAIN_LABEL = "development chain (in-process eth-tester; its anchors vanish with the process)"


@dataclass(frozen=True, slots=True)
class AnchorReceipt:
    """Where a checkpoint hash was anchored: chain, contract, transaction and block."""

    chain_id: int
    contract: str
    tx_hash: str
    block_number: int
    chain_label: str
    checkpoint_sha256: bytes

    def to_json(self) -> dict[str, Any]:
        """Return the receipt as a JSON object (hash as hex)."""
        data = asdict(self)
        data["checkpoint_sha256"] = self.checkpoint_sha256.hex()
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AnchorReceipt:
        """Parse a receipt from its JSON object, checking the field types."""
        fields = {"chain_id", "contract", "tx_hash", "block_number", "chain_label", "checkpoint_sha256"}
        if not isinstance(data, dict) or set(data) != fields:
            raise AnchorError("anchor receipt has the wrong fields", expected=sorted(fields), found=data)
        ints = (data["chain_id"], data["block_number"])
        strs = (data["contract"], data["tx_hash"], data["chain_label"], data["checkpoint_sha256"])
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in ints) or not all(
            isinstance(v, str) for v in strs
        ):
            raise AnchorError("anchor receipt field has the wrong type", found=data)
        try:
            digest = bytes.fromhex(data["checkpoint_sha256"])
        except ValueError as exc:
            raise AnchorError("anchor checkpoint_sha256 is not hex", found=data["checkpoint_sha256"]) from exc
        return cls(
            chain_id=data["chain_id"],
            contract=data["contract"],
            tx_hash=data["tx_hash"],
            block_number=data["block_number"],
            chain_label=data["chain_label"],
            checkpoint_sha256=digest,
        )


def load_chain_libraries() -> None:
    """Import web3 and eth-tester now, in the calling thread, leaving the interpreter's recursion limit as it was.

    They take seconds to import, and some of what they import (py_ecc, py-evm) raises the interpreter's recursion
    limit to 100,000 as it loads. That limit is the only guard of C code that recurses per level of its input (the
    `json` parser among it): raised, a deeply nested request body overflows the C stack and kills the process. So
    the limit is put back once they are loaded; the anchor contract's calls are shallow and need no more. Done
    lazily in a background thread, the change could also land while another thread is inside CPython 3.11's AST
    code ("SystemError: AST constructor recursion depth mismatch"): a process that will anchor loads them up front.
    """
    limit = sys.getrecursionlimit()
    try:
        import eth_tester  # noqa: F401
        import web3  # noqa: F401
        from web3 import EthereumTesterProvider  # noqa: F401

        try:
            from eth_tester import PyEVMBackend  # noqa: F401 - imports py-evm, which raises the limit too
        except ImportError:  # eth-tester without py-evm: EthereumTesterProvider cannot run, connect() still can
            pass
    finally:
        sys.setrecursionlimit(limit)


def dev_chain() -> Web3:
    """Return a Web3 on a fresh in-process eth-tester chain (a development chain)."""
    load_chain_libraries()
    from web3 import EthereumTesterProvider, Web3

    return Web3(EthereumTesterProvider())


def connect(rpc_url: str, *, timeout_s: float = 10.0) -> Web3:
    """Return a Web3 on a JSON-RPC endpoint, failing with AnchorError if it does not answer."""
    load_chain_libraries()
    from web3 import Web3

    w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": timeout_s}))
    try:
        w3.eth.chain_id  # noqa: B018 - a cheap call that proves the endpoint answers
    except Exception as exc:  # any transport failure means the same thing here: no usable node
        raise AnchorError(f"cannot reach JSON-RPC endpoint {rpc_url}: {exc}") from exc
    return w3


def _send(w3: Web3, tx: dict[str, Any], private_key: str | None) -> Any:
    """Send a transaction from a node-managed account, or sign it locally when a private key is given."""
    if private_key is None:
        if "from" not in tx:
            tx["from"] = w3.eth.default_account if w3.eth.default_account else w3.eth.accounts[0]
        tx_hash = w3.eth.send_transaction(tx)  # type: ignore[arg-type]
    else:
        account = w3.eth.account.from_key(private_key)
        tx.update(
            {
                "from": account.address,
                "nonce": w3.eth.get_transaction_count(account.address, "pending"),
                "chainId": w3.eth.chain_id,
                "gasPrice": w3.eth.gas_price,
            }
        )
        tx["gas"] = w3.eth.estimate_gas(tx)  # type: ignore[arg-type]
        signed = account.sign_transaction(tx)
        tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60)
    if receipt["status"] != 1:
        raise AnchorError("transaction reverted", found=tx_hash.hex())
    return receipt


def deploy_anchor_contract(w3: Web3, *, private_key: str | None = None) -> str:
    """Deploy the Anchor contract and return its checksummed address."""
    receipt = _send(w3, {"data": bytes.fromhex(INIT_CODE_HEX)}, private_key)
    address = receipt["contractAddress"]
    if bytes(w3.eth.get_code(address)) != bytes.fromhex(RUNTIME_CODE_HEX):
        raise AnchorError("deployed code differs from the Anchor runtime", found=address)
    return str(address)


def has_anchor_code(w3: Web3, address: str) -> bool:
    """Whether `address` holds exactly the Anchor runtime code (`eth_getCode`): false after a chain reset."""
    from web3 import Web3

    return bytes(w3.eth.get_code(Web3.to_checksum_address(address))) == bytes.fromhex(RUNTIME_CODE_HEX)


def anchored_hashes(receipt: Any, contract: str) -> list[bytes]:
    """The hashes a mined transaction's receipt shows anchored by the Anchor contract at `contract`."""
    from web3 import Web3

    found = []
    for log in receipt["logs"]:
        topics = [bytes(t) for t in log["topics"]]
        if Web3.to_checksum_address(log["address"]) != contract or not topics or topics[0] != ANCHORED_TOPIC:
            continue
        found.append(topics[1] if len(topics) >= 2 else b"")
    return found


class Anchorer:
    """Sends checkpoint hashes to one deployed Anchor contract."""

    def __init__(self, w3: Web3, contract: str, *, chain_label: str, private_key: str | None = None) -> None:
        """Bind a chain connection, a contract address, a human label for the chain and an optional signer key."""
        from web3 import Web3

        self.w3 = w3
        self.contract = Web3.to_checksum_address(contract)
        self.chain_label = chain_label
        self._private_key = private_key

    def anchor(self, checkpoint_sha256: bytes) -> AnchorReceipt:
        """Anchor a 32-byte checkpoint hash and return the receipt once the transaction is mined."""
        if len(checkpoint_sha256) != 32:
            raise ValueError("an anchored hash is 32 bytes")
        receipt = _send(self.w3, {"to": self.contract, "data": checkpoint_sha256}, self._private_key)
        # A call to an address without code succeeds and emits nothing (a reset chain): only the event anchors.
        if checkpoint_sha256 not in anchored_hashes(receipt, self.contract):
            raise AnchorMissing(
                f"anchoring transaction emitted no Anchored event: no Anchor contract at {self.contract}? "
                "(chain reset or new chain)",
                expected=checkpoint_sha256,
                found="0x" + bytes(receipt["transactionHash"]).hex(),
            )
        return AnchorReceipt(
            chain_id=int(self.w3.eth.chain_id),
            contract=self.contract,
            tx_hash="0x" + bytes(receipt["transactionHash"]).hex(),
            block_number=int(receipt["blockNumber"]),
            chain_label=self.chain_label,
            checkpoint_sha256=checkpoint_sha256,
        )


def verify_anchor(w3: Web3, receipt: AnchorReceipt, expected_hash: bytes, *, index: int | None = None) -> None:
    """Check on chain that the receipt's transaction emitted Anchored(expected_hash) from the Anchor contract."""
    from web3 import Web3
    from web3.exceptions import TransactionNotFound

    if receipt.checkpoint_sha256 != expected_hash:
        raise AnchorError(
            "anchor receipt names another checkpoint hash",
            index=index,
            expected=expected_hash,
            found=receipt.checkpoint_sha256,
        )
    chain_id = int(w3.eth.chain_id)
    if chain_id != receipt.chain_id:
        raise AnchorError("connected to another chain", index=index, expected=receipt.chain_id, found=chain_id)
    contract = Web3.to_checksum_address(receipt.contract)
    code = bytes(w3.eth.get_code(contract))
    if not code:
        raise AnchorMissing(
            f"anchor missing on chain {chain_id}: no contract at {contract} (chain reset, or never deployed here)",
            index=index,
            found=receipt.tx_hash,
        )
    if code != bytes.fromhex(RUNTIME_CODE_HEX):
        raise AnchorError(
            f"the address {contract} does not hold the Anchor contract",
            index=index,
            expected=hashlib.sha256(bytes.fromhex(RUNTIME_CODE_HEX)).hexdigest(),
            found=hashlib.sha256(code).hexdigest(),
        )
    try:
        tx_receipt = w3.eth.get_transaction_receipt(receipt.tx_hash)  # type: ignore[arg-type]
    except TransactionNotFound as exc:
        raise AnchorMissing(
            f"anchor missing on chain {chain_id}: transaction not found", index=index, found=receipt.tx_hash
        ) from exc
    if tx_receipt["status"] != 1:
        raise AnchorError("anchor transaction reverted", index=index, found=receipt.tx_hash)
    if int(tx_receipt["blockNumber"]) != receipt.block_number:
        raise AnchorError(
            "anchor transaction is in another block",
            index=index,
            expected=receipt.block_number,
            found=int(tx_receipt["blockNumber"]),
        )
    found_hashes = anchored_hashes(tx_receipt, contract)
    if expected_hash in found_hashes:
        return
    raise AnchorError(
        "anchor transaction did not anchor this checkpoint",
        index=index,
        expected=expected_hash,
        found=found_hashes[0] if len(found_hashes) == 1 else found_hashes,
    )
