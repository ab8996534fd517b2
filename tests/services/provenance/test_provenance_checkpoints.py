"""Checkpoints cover new entries, extend the previous one, and are anchored (eth-tester and a real anvil node)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from ledger import reader, storage
from ledger.anchor import DEV_CHAIN_LABEL, connect, verify_anchor
from ledger.checkpoint import checkpoint_hash, open_checkpoint
from ledger.keys import KeyConfigError
from services.kernel.database import unit_of_work
from services.kernel.runtime import Runtime
from services.kernel.settings import KernelSettings
from services.provenance.anchoring import ChainAnchorer, dev_chain_anchorer
from services.provenance.checkpointer import Checkpointer, LedgerInconsistent
from services.provenance.cli import app as ledger_app
from services.provenance.models import AnchorContract
from services.provenance.service import Provenance
from services.provenance.settings import ProvenanceSettings, provenance_settings
from tests.api.support import Api
from tests.services.provenance.conftest import settle, tamper
from tests.support import wait_for


def log_size(runtime: Runtime) -> int:
    with runtime.engine.connect() as conn:
        return storage.log_size(conn)


def test_a_checkpoint_covers_new_entries_and_is_anchored_on_the_development_chain(
    api: Api, trader: dict[str, str], runtime: Runtime, prov: Provenance, checkpointer: Checkpointer
) -> None:
    api.file(trader, submit=True)
    runtime.relay.drain()
    outcome = checkpointer.checkpoint_now()
    assert outcome.signed is not None
    assert outcome.anchored is not None
    assert outcome.anchor_error is None
    size, note = outcome.signed
    assert size == log_size(runtime) > 0
    cp = open_checkpoint(note, prov.verifier, origin="kimthanh.smartgate/ledger")
    with runtime.engine.connect() as conn:
        assert cp.root_hash == reader.root_at(conn, size)
        rows = storage.anchors_for(conn, size)
    assert len(rows) == 1
    assert rows[0]["chain_label"] == DEV_CHAIN_LABEL
    receipt = reader.receipt_from_row(rows[0])
    assert receipt == outcome.anchored
    dev = dev_chain_anchorer()
    with dev.lock:
        verify_anchor(dev.w3, receipt, checkpoint_hash(note), index=size)
    # Nothing new: no second checkpoint, no second anchor.
    again = checkpointer.checkpoint_now()
    assert again.signed is None
    assert again.anchored is None


def test_each_checkpoint_extends_the_previous_one(
    api: Api, trader: dict[str, str], runtime: Runtime, prov: Provenance, checkpointer: Checkpointer
) -> None:
    api.file(trader)
    settle(runtime, checkpointer)
    api.file(trader, submit=True)
    settle(runtime, checkpointer)
    with runtime.engine.connect() as conn:
        cps = storage.all_checkpoints(conn)
        assert len(cps) == 2
        assert cps[0][0] < cps[1][0]
        assert {int(r["checkpoint_size"]) for r in storage.anchors_for(conn)} == {cps[0][0], cps[1][0]}


def test_an_anchoring_failure_keeps_the_checkpoint_and_a_later_pass_anchors_it(
    api: Api, trader: dict[str, str], runtime: Runtime, prov: Provenance
) -> None:
    chain: dict[str, Callable[[], ChainAnchorer]] = {}

    def flaky() -> ChainAnchorer:
        return chain["factory"]()

    def down() -> ChainAnchorer:
        raise ConnectionError("node unreachable")

    chain["factory"] = down
    checkpointer = Checkpointer(prov, anchorer_factory=flaky)
    api.file(trader)
    runtime.relay.drain()
    first = checkpointer.checkpoint_now()
    assert first.signed is not None
    assert first.anchored is None
    assert first.anchor_error is not None
    assert "node unreachable" in first.anchor_error
    size = first.signed[0]
    with runtime.engine.connect() as conn:
        assert storage.get_checkpoint(conn) == first.signed
        assert storage.anchors_for(conn, size) == []
    chain["factory"] = dev_chain_anchorer
    second = checkpointer.checkpoint_now()
    assert second.signed is None  # the log did not grow
    assert second.anchored is not None
    assert second.anchored.checkpoint_sha256 == checkpoint_hash(first.signed[1])


def test_no_checkpoint_is_signed_over_a_tree_that_does_not_extend_the_last_one(
    api: Api, trader: dict[str, str], runtime: Runtime, database_url: str, checkpointer: Checkpointer
) -> None:
    api.file(trader, submit=True)
    settle(runtime, checkpointer)
    with runtime.engine.connect() as conn:
        signed_size = storage.log_size(conn)
    assert signed_size >= 2
    # An attacker rewrites the largest stored subtree of the signed tree (what roots and proofs are folded from);
    # then the log grows.
    level = signed_size.bit_length() - 1
    tamper(
        database_url,
        ("UPDATE ledger_nodes SET hash = :h WHERE level = :level AND idx = 0", {"h": b"\x07" * 32, "level": level}),
    )
    api.file(trader)
    runtime.relay.drain()
    with pytest.raises(LedgerInconsistent) as caught:
        checkpointer.checkpoint_now()
    assert caught.value.error is not None
    assert caught.value.error.kind == "consistency"
    with runtime.engine.connect() as conn:
        assert [s for s, _ in storage.all_checkpoints(conn)] == [signed_size]


def test_the_background_thread_covers_new_entries_within_seconds(
    monkeypatch: pytest.MonkeyPatch, settings: KernelSettings, runtime: Runtime, keys: Any, declaration_body: Any
) -> None:
    from api.app import create_app

    monkeypatch.setenv("SMARTGATE_LEDGER_CHECKPOINT_SECONDS", "0.2")
    app = create_app(settings, runtime=runtime)
    trader = keys.make("trader", "Lao Cai Fruit Export JSC")
    with TestClient(app) as client:
        Api(client, runtime, declaration_body).file(trader, submit=True)
        runtime.relay.drain()
        wanted = log_size(runtime)
        covered = wait_for(lambda: latest_anchored_size(runtime) >= wanted)
    assert covered, f"no anchored checkpoint of size >= {wanted} within the deadline"


def test_m_new_entries_wake_the_checkpointer_before_the_interval(
    monkeypatch: pytest.MonkeyPatch, settings: KernelSettings, runtime: Runtime, keys: Any, declaration_body: Any
) -> None:
    from api.app import create_app

    monkeypatch.setenv("SMARTGATE_LEDGER_CHECKPOINT_ENTRIES", "2")  # the interval stays an hour
    app = create_app(settings, runtime=runtime)
    trader = keys.make("trader", "Lao Cai Fruit Export JSC")
    with TestClient(app) as client:
        Api(client, runtime, declaration_body).file(trader, submit=True)
        runtime.relay.drain()
        assert wait_for(lambda: latest_size(runtime) >= 2)


def latest_size(runtime: Runtime) -> int:
    with runtime.engine.connect() as conn:
        found = storage.get_checkpoint(conn)
    return found[0] if found else 0


def latest_anchored_size(runtime: Runtime) -> int:
    with runtime.engine.connect() as conn:
        return max((int(r["checkpoint_size"]) for r in storage.anchors_for(conn)), default=0)


def test_anchors_on_a_real_node_with_the_contract_deployed_once(
    monkeypatch: pytest.MonkeyPatch,
    anvil_url: str,
    settings: KernelSettings,
    runtime: Runtime,
    keys: Any,
    declaration_body: Any,
) -> None:
    from api.app import create_app

    monkeypatch.setenv("SMARTGATE_CHAIN_RPC_URL", anvil_url)
    app = create_app(settings, runtime=runtime)
    trader = keys.make("trader", "Lao Cai Fruit Export JSC")
    with TestClient(app) as client:
        Api(client, runtime, declaration_body).file(trader, submit=True)
        checkpointer: Checkpointer = runtime.extras["provenance.checkpointer"]
        settle(runtime, checkpointer)
        receipt = checkpointer.checkpoint_now().anchored
        assert receipt is None  # already anchored
        with runtime.engine.connect() as conn:
            size, note = storage.get_checkpoint(conn) or (0, b"")
            rows = storage.anchors_for(conn, size)
        assert len(rows) == 1
        assert rows[0]["chain_id"] == 31337
        assert rows[0]["chain_label"] == "EVM chain 31337 via 127.0.0.1"
        verify_anchor(connect(anvil_url), reader.receipt_from_row(rows[0]), checkpoint_hash(note), index=size)
        Api(client, runtime, declaration_body).file(trader)
        settle(runtime, checkpointer)
    # A second process on the same database and chain reuses the contract.
    second = Checkpointer(runtime.extras["provenance"])
    assert second.anchorer().contract == rows[0]["contract"]
    with unit_of_work(runtime.read_sessions) as session:
        assert session.scalar(select(func.count()).select_from(AnchorContract)) == 1
    # `smartgate ledger verify --rpc` checks every anchor on the node too.
    for name, value in (("ENVIRONMENT", "test"), ("DATABASE_URL", settings.database_url),
                        ("VAR_DIR", str(settings.var_dir)), ("SECRET_KEY", settings.secret_key)):  # fmt: skip
        monkeypatch.setenv(f"SMARTGATE_{name}", value)
    result = CliRunner().invoke(ledger_app, ["verify", "--rpc", anvil_url])
    assert result.exit_code == 0, result.output
    assert "2 checkpoints, 2 anchors, 2 checked on chain" in result.stdout


def test_outside_development_a_key_and_a_real_chain_are_required(tmp_path: Any) -> None:
    secret = "x" * 40
    base = KernelSettings(environment="production", secret_key=secret, var_dir=tmp_path)
    with pytest.raises(ValueError, match="SMARTGATE_CHAIN_RPC_URL"):
        provenance_settings(base)
    prod = ProvenanceSettings(
        environment="production", secret_key=secret, var_dir=tmp_path, chain_rpc_url="http://127.0.0.1:1"
    )
    with pytest.raises(KeyConfigError, match="no ledger signing key"):
        Provenance(prod, engine=None, sessions=None)  # type: ignore[arg-type]
    assert not list(tmp_path.iterdir())  # and no development key was written


def test_while_the_log_grows_anchors_wait_for_the_anchor_interval(
    monkeypatch: pytest.MonkeyPatch, settings: KernelSettings, runtime: Runtime, keys: Any, declaration_body: Any
) -> None:
    """Every checkpoint is signed; a chain transaction is sent at most every SMARTGATE_LEDGER_ANCHOR_SECONDS
    while the log grows, and as soon as a pass finds it has stopped growing."""
    from api.app import create_app

    monkeypatch.setenv("SMARTGATE_LEDGER_ANCHOR_SECONDS", "3600")
    app = create_app(settings, runtime=runtime)
    checkpointer: Checkpointer = runtime.extras["provenance.checkpointer"]
    trader = keys.make("trader", "Lao Cai Fruit Export JSC")
    with TestClient(app) as client:
        api = Api(client, runtime, declaration_body)
        api.file(trader, submit=True)
        runtime.relay.drain()
        first = checkpointer.checkpoint_now(scheduled=True)
        assert first.signed is not None
        assert first.anchored is not None
        api.file(trader, submit=True)
        runtime.relay.drain()
        growing = checkpointer.checkpoint_now(scheduled=True)
        assert growing.signed is not None
        assert growing.anchored is None
        quiet = checkpointer.checkpoint_now(scheduled=True)
        assert quiet.signed is None
        assert quiet.anchored is not None
        assert latest_anchored_size(runtime) == growing.signed[0]
