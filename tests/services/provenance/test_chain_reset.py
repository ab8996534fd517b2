"""A reset or new chain behind the anchoring connection: the contract is redeployed with an alarm, and nothing is
ever recorded as anchored without the Anchored event on chain (eth-tester reset to genesis, and a restarted anvil)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from ledger import reader, storage
from ledger.anchor import connect, has_anchor_code, verify_anchor
from ledger.checkpoint import checkpoint_hash
from services.kernel.database import unit_of_work
from services.kernel.runtime import Runtime
from services.kernel.settings import KernelSettings
from services.provenance.anchoring import ChainAnchorer, new_dev_chain_anchorer
from services.provenance.checkpointer import Checkpointer
from services.provenance.models import AnchorContract
from services.provenance.service import Provenance
from tests.api.support import Api
from tests.conftest import AnvilNode

ALARM = "smartgate.provenance.anchoring"


def anchor_rows(runtime: Runtime) -> list[dict[str, Any]]:
    with runtime.engine.connect() as conn:
        return storage.anchors_for(conn)


def reset_to_genesis(anchorer: ChainAnchorer) -> None:
    """What a restarted development node does: same chain id, no contracts, no transactions."""
    anchorer.w3.provider.ethereum_tester.reset_to_genesis()  # type: ignore[attr-defined]


def test_after_a_chain_reset_the_contract_is_redeployed_with_an_alarm_before_anchoring(
    api: Api, trader: dict[str, str], runtime: Runtime, prov: Provenance, caplog: pytest.LogCaptureFixture
) -> None:
    chain = new_dev_chain_anchorer()
    checkpointer = Checkpointer(prov, anchorer_factory=lambda: chain)
    api.file(trader)
    runtime.relay.drain()
    first = checkpointer.checkpoint_now()
    assert first.anchored is not None
    old = first.anchored.contract
    reset_to_genesis(chain)
    assert not has_anchor_code(chain.w3, old)
    api.file(trader)
    runtime.relay.drain()
    with caplog.at_level(logging.WARNING, logger=ALARM):
        second = checkpointer.checkpoint_now()
    assert second.anchor_error is None
    assert second.anchored is not None
    assert second.signed is not None
    alarms = [r for r in caplog.records if r.name == ALARM and r.levelno >= logging.WARNING]
    assert len(alarms) == 1
    message = alarms[0].getMessage()
    assert f"anchor contract {old} has no code on chain" in message
    assert f"redeployed the Anchor contract at {second.anchored.contract}" in message
    # The new anchor is real: the contract holds the code and the transaction emitted the checkpoint's hash.
    assert has_anchor_code(chain.w3, second.anchored.contract)
    verify_anchor(chain.w3, second.anchored, checkpoint_hash(second.signed[1]), index=second.signed[0])
    assert [int(r["checkpoint_size"]) for r in anchor_rows(runtime)] == [first.signed[0], second.signed[0]]  # type: ignore[index]


def test_without_a_contract_book_anchoring_stops_with_an_alarm_and_nothing_is_recorded(
    api: Api, trader: dict[str, str], runtime: Runtime, prov: Provenance, caplog: pytest.LogCaptureFixture
) -> None:
    dev = new_dev_chain_anchorer()
    chain = ChainAnchorer(dev.w3, dev.contract, chain_label="pinned contract")  # no book: may not redeploy
    checkpointer = Checkpointer(prov, anchorer_factory=lambda: chain)
    reset_to_genesis(chain)
    api.file(trader)
    runtime.relay.drain()
    with caplog.at_level(logging.INFO):
        outcome = checkpointer.checkpoint_now()
    assert outcome.signed is not None
    assert outcome.anchored is None
    assert outcome.anchor_error is not None
    assert "no Anchor contract at" in outcome.anchor_error
    assert anchor_rows(runtime) == []
    assert not [r for r in caplog.records if r.getMessage() == "checkpoint anchored"]
    assert any("ALARM" in r.getMessage() and r.levelno == logging.ERROR for r in caplog.records)


def test_a_restarted_anvil_gets_a_new_contract_and_real_anchors(
    monkeypatch: pytest.MonkeyPatch,
    anvil_node: AnvilNode,
    settings: KernelSettings,
    runtime: Runtime,
    keys: Any,
    declaration_body: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from api.app import create_app

    monkeypatch.setenv("SMARTGATE_CHAIN_RPC_URL", anvil_node.url)
    app = create_app(settings, runtime=runtime)
    trader = keys.make("trader", "Lao Cai Fruit Export JSC")
    checkpointer: Checkpointer = runtime.extras["provenance.checkpointer"]
    with TestClient(app) as client:
        api = Api(client, runtime, declaration_body)
        api.file(trader)
        runtime.relay.drain()
        first = checkpointer.checkpoint_now()
        assert first.anchored is not None
        old = first.anchored.contract
        anvil_node.restart()
        w3 = connect(anvil_node.url)
        assert not has_anchor_code(w3, old)
        api.file(trader)
        runtime.relay.drain()
        with caplog.at_level(logging.INFO):
            outcomes = [checkpointer.checkpoint_now()]
            if outcomes[0].anchored is None:  # the old connection may fail once; the next pass reconnects
                outcomes.append(checkpointer.checkpoint_now())
        second = outcomes[-1]
        assert second.anchored is not None, [o.anchor_error for o in outcomes]
    assert not any(o.anchor_error is None and o.anchored is None for o in outcomes)
    alarms = [r.getMessage() for r in caplog.records if r.name == ALARM and r.levelno == logging.WARNING]
    assert any(f"anchor contract {old} has no code on chain 31337" in m for m in alarms), alarms
    anchored_logs = [r for r in caplog.records if r.getMessage() == "checkpoint anchored"]
    assert len(anchored_logs) == 1  # only the anchor that is on the chain now
    assert has_anchor_code(w3, second.anchored.contract)
    with runtime.engine.connect() as conn:
        size, note = storage.get_checkpoint(conn) or (0, b"")
        (row,) = storage.anchors_for(conn, size)
    verify_anchor(w3, reader.receipt_from_row(row), checkpoint_hash(note), index=size)
    with unit_of_work(runtime.read_sessions) as session:
        recorded = session.scalars(select(AnchorContract.contract)).all()
    assert second.anchored.contract in recorded
