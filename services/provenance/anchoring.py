"""The anchor chain: an in-process development chain by default, or a JSON-RPC node with a remembered contract."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from ledger.anchor import DEV_CHAIN_LABEL, Anchorer, AnchorReceipt, deploy_anchor_contract, has_anchor_code
from ledger.verify import AnchorMissing
from services.kernel.database import unit_of_work
from services.provenance.models import AnchorContract
from services.provenance.settings import ProvenanceSettings

if TYPE_CHECKING:
    from web3 import Web3

logger = logging.getLogger("smartgate.provenance.anchoring")


class ContractBook(Protocol):
    """Where the Anchor contracts this service deployed are remembered, per chain id."""

    def known(self, chain_id: int) -> list[str]:
        """Contracts deployed on `chain_id`, newest first."""

    def record(self, chain_id: int, contract: str) -> None:
        """Remember a newly deployed contract."""


class MemoryBook:
    """A contract book for the in-process development chain (it lives as long as the chain does)."""

    def __init__(self) -> None:
        """Start empty."""
        self._contracts: dict[int, list[str]] = {}

    def known(self, chain_id: int) -> list[str]:
        """Contracts deployed on `chain_id`, newest first."""
        return list(reversed(self._contracts.get(chain_id, [])))

    def record(self, chain_id: int, contract: str) -> None:
        """Remember a newly deployed contract."""
        self._contracts.setdefault(chain_id, []).append(contract)


class DatabaseBook:
    """The contracts deployed on JSON-RPC chains, in `provenance_anchor_contracts`."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        """Bind the service's sessions."""
        self.sessions = sessions

    def known(self, chain_id: int) -> list[str]:
        """Contracts deployed on `chain_id`, newest first."""
        with unit_of_work(self.sessions) as session:
            return list(
                session.scalars(
                    select(AnchorContract.contract)
                    .where(AnchorContract.chain_id == chain_id)
                    .order_by(AnchorContract.deployed_at.desc())
                ).all()
            )

    def record(self, chain_id: int, contract: str) -> None:
        """Remember a newly deployed contract (a reset chain can give a redeployment the address it had)."""
        with unit_of_work(self.sessions) as session:
            if session.get(AnchorContract, (chain_id, contract)) is None:
                session.add(AnchorContract(chain_id=chain_id, contract=contract))


def resolve_contract(
    w3: Web3, chain_id: int, book: ContractBook, *, private_key: str | None, previous: str | None = None
) -> str:
    """A contract of ours that holds the Anchor code on this chain, deploying (and recording) one if none does.

    A development node that was restarted keeps its chain id but not its contracts; a URL can also lead to a new
    chain. A contract that vanished is an alarm: its anchors are gone with it.
    """
    known = book.known(chain_id)
    contract = next((c for c in known if has_anchor_code(w3, c)), None)
    if contract is not None:
        return contract
    contract = deploy_anchor_contract(w3, private_key=private_key)
    book.record(chain_id, contract)
    lost = [previous] if previous else known
    if lost:
        logger.warning(
            "ALARM: anchor contract %s has no code on chain %s (chain reset or new chain): its anchors are gone; "
            "redeployed the Anchor contract at %s",
            ", ".join(lost),
            chain_id,
            contract,
            extra={"chain_id": chain_id, "old_contract": lost, "contract": contract},
        )
    else:
        logger.info("deployed the Anchor contract", extra={"chain_id": chain_id, "contract": contract})
    return contract


class ChainAnchorer:
    """One Anchor contract on one chain; calls are serialised (eth-tester is not thread-safe).

    Before each anchor it checks (`eth_getCode`) that the contract is still there; with a contract book it
    redeploys on a reset or new chain (with an alarm), without one it refuses to anchor.
    """

    def __init__(
        self,
        w3: Web3,
        contract: str,
        *,
        chain_label: str | Callable[[int], str],
        private_key: str | None = None,
        book: ContractBook | None = None,
    ) -> None:
        """Bind the chain, the contract, the label receipts will carry (or how to name a chain id), and where
        redeployed contracts are recorded."""
        self.w3 = w3
        self._label = chain_label
        self._private_key = private_key
        self.book = book
        self.chain_id = int(w3.eth.chain_id)
        self.anchorer = Anchorer(w3, contract, chain_label=self._label_of(self.chain_id), private_key=private_key)
        self.lock = threading.Lock()

    def _label_of(self, chain_id: int) -> str:
        return self._label if isinstance(self._label, str) else self._label(chain_id)

    @property
    def contract(self) -> str:
        """The checksummed contract address."""
        return self.anchorer.contract

    @property
    def chain_label(self) -> str:
        """How receipts name the chain."""
        return self.anchorer.chain_label

    def ensure_contract(self) -> None:
        """Check the contract still holds the Anchor code on the connected chain; redeploy if it does not."""
        with self.lock:
            self._ensure_contract()

    def _ensure_contract(self) -> None:
        chain_id = int(self.w3.eth.chain_id)
        if chain_id == self.chain_id and has_anchor_code(self.w3, self.contract):
            return
        old = f"{self.contract} (chain {self.chain_id})"
        if self.book is None:
            logger.error(
                "ALARM: anchor contract %s has no code on the connected chain %s; anchoring stopped",
                old,
                chain_id,
                extra={"chain_id": chain_id, "old_contract": self.contract},
            )
            raise AnchorMissing(f"no Anchor contract at {old} on the connected chain {chain_id}; not anchoring")
        contract = resolve_contract(self.w3, chain_id, self.book, private_key=self._private_key, previous=self.contract)
        self.chain_id = chain_id
        self.anchorer = Anchorer(self.w3, contract, chain_label=self._label_of(chain_id), private_key=self._private_key)

    def anchor(self, checkpoint_sha256: bytes) -> AnchorReceipt:
        """Anchor one checkpoint hash and wait for it to be mined, once the contract is known to be there."""
        with self.lock:
            self._ensure_contract()
            return self.anchorer.anchor(checkpoint_sha256)


_dev_lock = threading.Lock()
_dev_anchorer: ChainAnchorer | None = None


def dev_chain_anchorer() -> ChainAnchorer:
    """The process's development chain (in-process eth-tester) with the Anchor contract deployed once on it."""
    global _dev_anchorer
    with _dev_lock:
        if _dev_anchorer is None:
            _dev_anchorer = new_dev_chain_anchorer()
            logger.warning("anchoring on a development chain: %s", DEV_CHAIN_LABEL)
        return _dev_anchorer


def new_dev_chain_anchorer() -> ChainAnchorer:
    """A fresh in-process eth-tester chain with the Anchor contract deployed on it."""
    from ledger.anchor import dev_chain

    w3 = dev_chain()
    book = MemoryBook()
    contract = resolve_contract(w3, int(w3.eth.chain_id), book, private_key=None)
    return ChainAnchorer(w3, contract, chain_label=DEV_CHAIN_LABEL, book=book)


def rpc_label(settings: ProvenanceSettings, chain_id: int) -> str:
    """The label of a JSON-RPC chain: the configured one, or the chain id and host (never the URL's secrets)."""
    if settings.chain_label:
        return settings.chain_label
    host = urlsplit(settings.chain_rpc_url).hostname or "?"
    return f"EVM chain {chain_id} via {host}"


def rpc_anchorer(settings: ProvenanceSettings, sessions: sessionmaker[Session]) -> ChainAnchorer:
    """Connect to the configured JSON-RPC chain and use our Anchor contract there, deploying it on first use."""
    from ledger.anchor import connect

    w3 = connect(settings.chain_rpc_url)
    chain_id = int(w3.eth.chain_id)
    private_key = settings.chain_private_key.get_secret_value() or None
    book = DatabaseBook(sessions)
    contract = resolve_contract(w3, chain_id, book, private_key=private_key)
    return ChainAnchorer(
        w3,
        contract,
        chain_label=lambda cid: rpc_label(settings, cid),
        private_key=private_key,
        book=book,
    )


def make_anchorer(settings: ProvenanceSettings, sessions: sessionmaker[Session]) -> ChainAnchorer:
    """The anchorer the settings ask for: JSON-RPC when a URL is set, else the development chain."""
    if settings.chain_rpc_url:
        return rpc_anchorer(settings, sessions)
    return dev_chain_anchorer()
