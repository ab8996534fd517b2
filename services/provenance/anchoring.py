"""The anchor chain: an in-process development chain by default, or a JSON-RPC node with a remembered contract."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from ledger.anchor import DEV_CHAIN_LABEL, RUNTIME_CODE_HEX, Anchorer, AnchorReceipt
from services.kernel.database import unit_of_work
from services.provenance.models import AnchorContract
from services.provenance.settings import ProvenanceSettings

if TYPE_CHECKING:
    from web3 import Web3

logger = logging.getLogger("smartgate.provenance.anchoring")


class ChainAnchorer:
    """One Anchor contract on one chain; calls are serialised (eth-tester is not thread-safe)."""

    def __init__(self, w3: Web3, contract: str, *, chain_label: str, private_key: str | None = None) -> None:
        """Bind the chain, the contract and the label receipts will carry."""
        self.w3 = w3
        self.anchorer = Anchorer(w3, contract, chain_label=chain_label, private_key=private_key)
        self.chain_id = int(w3.eth.chain_id)
        self.lock = threading.Lock()

    @property
    def contract(self) -> str:
        """The checksummed contract address."""
        return self.anchorer.contract

    @property
    def chain_label(self) -> str:
        """How receipts name the chain."""
        return self.anchorer.chain_label

    def anchor(self, checkpoint_sha256: bytes) -> AnchorReceipt:
        """Anchor one checkpoint hash and wait for it to be mined."""
        with self.lock:
            return self.anchorer.anchor(checkpoint_sha256)


_dev_lock = threading.Lock()
_dev_anchorer: ChainAnchorer | None = None


def dev_chain_anchorer() -> ChainAnchorer:
    """The process's development chain (in-process eth-tester) with the Anchor contract deployed once on it."""
    global _dev_anchorer
    with _dev_lock:
        if _dev_anchorer is None:
            from ledger.anchor import deploy_anchor_contract, dev_chain

            w3 = dev_chain()
            contract = deploy_anchor_contract(w3)
            _dev_anchorer = ChainAnchorer(w3, contract, chain_label=DEV_CHAIN_LABEL)
            logger.warning("anchoring on a development chain: %s", DEV_CHAIN_LABEL)
        return _dev_anchorer


def rpc_label(settings: ProvenanceSettings, chain_id: int) -> str:
    """The label of a JSON-RPC chain: the configured one, or the chain id and host (never the URL's secrets)."""
    if settings.chain_label:
        return settings.chain_label
    host = urlsplit(settings.chain_rpc_url).hostname or "?"
    return f"EVM chain {chain_id} via {host}"


def rpc_anchorer(settings: ProvenanceSettings, sessions: sessionmaker[Session]) -> ChainAnchorer:
    """Connect to the configured JSON-RPC chain and use our Anchor contract there, deploying it on first use."""
    from ledger.anchor import connect, deploy_anchor_contract

    w3 = connect(settings.chain_rpc_url)
    chain_id = int(w3.eth.chain_id)
    private_key = settings.chain_private_key.get_secret_value() or None
    runtime_code = bytes.fromhex(RUNTIME_CODE_HEX)
    with unit_of_work(sessions) as session:
        known = session.scalars(
            select(AnchorContract.contract)
            .where(AnchorContract.chain_id == chain_id)
            .order_by(AnchorContract.deployed_at.desc())
        ).all()
    # A development node that was restarted keeps its chain id but not its contracts: check the code is there.
    contract = next((c for c in known if bytes(w3.eth.get_code(c)) == runtime_code), None)  # type: ignore[arg-type]
    if contract is None:
        contract = deploy_anchor_contract(w3, private_key=private_key)
        with unit_of_work(sessions) as session:
            session.add(AnchorContract(chain_id=chain_id, contract=contract))
        logger.info("deployed the Anchor contract", extra={"chain_id": chain_id, "contract": contract})
    return ChainAnchorer(w3, contract, chain_label=rpc_label(settings, chain_id), private_key=private_key)


def make_anchorer(settings: ProvenanceSettings, sessions: sessionmaker[Session]) -> ChainAnchorer:
    """The anchorer the settings ask for: JSON-RPC when a URL is set, else the development chain."""
    if settings.chain_rpc_url:
        return rpc_anchorer(settings, sessions)
    return dev_chain_anchorer()
