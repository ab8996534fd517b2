"""The platform's ledger rolled back (entries from a checkpoint onward deleted with their nodes, checkpoints and
anchor rows): `ledger verify` says it cannot see that without a chain; held to the chain it fails with [rollback].
SQLite and PostgreSQL; eth-tester (fsck on the service's chain) and anvil (`smartgate ledger verify --rpc`)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from ledger import storage
from ledger.fsck import fsck
from services.kernel.runtime import Runtime
from services.kernel.settings import KernelSettings
from services.provenance.anchoring import new_dev_chain_anchorer
from services.provenance.checkpointer import Checkpointer
from services.provenance.cli import app as ledger_app
from services.provenance.service import Provenance
from tests.api.support import Api
from tests.services.provenance.conftest import settle, tamper


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, settings: KernelSettings) -> None:
    """The CLI reads the same settings as the app under test, from the environment."""
    for name, value in (("ENVIRONMENT", settings.environment), ("DATABASE_URL", settings.database_url),
                        ("VAR_DIR", str(settings.var_dir)), ("SECRET_KEY", settings.secret_key)):  # fmt: skip
        monkeypatch.setenv(f"SMARTGATE_{name}", value)


def grow(api: Api, trader: dict[str, str], runtime: Runtime, checkpointer: Checkpointer, times: int) -> list[int]:
    """File `times` declarations, each settled into an anchored checkpoint; return the checkpoint sizes."""
    for _ in range(times):
        api.file(trader, submit=True)
        settle(runtime, checkpointer)
    with runtime.engine.connect() as conn:
        return [size for size, _ in storage.all_checkpoints(conn)]


def roll_back(database_url: str, k: int) -> None:
    """Delete entries k.. with every tree node covering them, the checkpoints beyond k and their anchor rows."""
    params = {"k": k}
    tamper(
        database_url,
        ("DELETE FROM ledger_entries WHERE idx >= :k", params),
        ("DELETE FROM ledger_nodes WHERE ((idx + 1) << level) > :k", params),
        ("DELETE FROM ledger_anchors WHERE checkpoint_size > :k", params),
        ("DELETE FROM ledger_checkpoints WHERE size > :k", params),
    )


def test_a_rolled_back_ledger_fails_against_the_chain_even_after_it_grew_again(
    api: Api,
    trader: dict[str, str],
    runtime: Runtime,
    prov: Provenance,
    database_url: str,
    cli_env: None,
) -> None:
    chain = new_dev_chain_anchorer()
    checkpointer = Checkpointer(prov, anchorer_factory=lambda: chain)
    sizes = grow(api, trader, runtime, checkpointer, 3)
    assert len(sizes) == 3
    with chain.lock:
        clean = fsck(runtime.engine, prov.verifier, origin=prov.origin, w3=chain.w3)
    assert clean.ok, clean.problems
    assert clean.latest_chain_anchor == sizes[-1]

    roll_back(database_url, sizes[0])
    offline = CliRunner().invoke(ledger_app, ["verify"])
    assert offline.exit_code == 0, offline.output
    assert offline.stdout.startswith(f"OK: ledger {prov.origin}: {sizes[0]} entries, 1 checkpoints, 1 anchors")
    assert "without --rpc (or witnesses) a suffix deleted with its checkpoints and anchors cannot be detected" in (
        offline.stdout
    )
    with chain.lock:
        report = fsck(runtime.engine, prov.verifier, origin=prov.origin, w3=chain.w3)
    assert report.rollback is not None
    assert report.rollback.message.startswith("rolled back: the latest checkpoint anchored on chain")

    # The service goes on over the cut log: new entries, a new checkpoint anchored after the lost ones.
    after = grow(api, trader, runtime, checkpointer, 1)
    assert after[-1] > sizes[0]
    with chain.lock:
        report = fsck(runtime.engine, prov.verifier, origin=prov.origin, w3=chain.w3)
    assert report.latest_chain_anchor == after[-1]
    assert report.rollback is not None
    assert "a checkpoint anchored on chain" in report.rollback.message
    assert "2 anchored checkpoint(s) are missing" in report.rollback.message


@pytest.mark.anvil
def test_ledger_verify_rpc_names_a_rollback_in_one_line(
    monkeypatch: pytest.MonkeyPatch,
    anvil_url: str,
    settings: KernelSettings,
    runtime: Runtime,
    keys: Any,
    declaration_body: Any,
    database_url: str,
    cli_env: None,
) -> None:
    from api.app import create_app

    monkeypatch.setenv("SMARTGATE_CHAIN_RPC_URL", anvil_url)
    app = create_app(settings, runtime=runtime)
    trader = keys.make("trader", "Lao Cai Fruit Export JSC")
    checkpointer: Checkpointer = runtime.extras["provenance.checkpointer"]
    with TestClient(app) as client:
        sizes = grow(Api(client, runtime, declaration_body), trader, runtime, checkpointer, 3)
    runner = CliRunner()
    clean = runner.invoke(ledger_app, ["verify", "--rpc", anvil_url])
    assert clean.exit_code == 0, clean.output
    assert "3 checkpoints, 3 anchors, 3 checked on chain" in clean.stdout
    assert f"chain: 3 checkpoint(s) of this log anchored on that chain, the latest of size {sizes[-1]}" in clean.stdout

    with runtime.engine.connect() as conn:
        contract = storage.anchors_for(conn)[0]["contract"]
    roll_back(database_url, sizes[1])
    assert runner.invoke(ledger_app, ["verify"]).exit_code == 0
    result = runner.invoke(ledger_app, ["verify", "--rpc", anvil_url])
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("error: ledger does NOT verify: [rollback] rolled back: the latest checkpoint")
    assert f"is not in the log of {sizes[1]} entries, and 1 anchored checkpoint(s) are missing" in result.stderr

    # Stripped of every anchor row, the log is still held to the contract the service recorded deploying.
    tamper(database_url, ("DELETE FROM ledger_anchors", {}))
    stripped = runner.invoke(ledger_app, ["verify", "--rpc", anvil_url])
    assert stripped.exit_code == 1
    assert "[rollback] rolled back:" in stripped.stderr
    tamper(database_url, ("DELETE FROM provenance_anchor_contracts", {}))
    blind = runner.invoke(ledger_app, ["verify", "--rpc", anvil_url])
    assert blind.exit_code == 0, blind.output
    assert "no Anchor contract of this log is known on that chain (give --contract ADDRESS)" in blind.stdout
    # An auditor who knows the log's contract address still holds it to the chain.
    pinned = runner.invoke(ledger_app, ["verify", "--rpc", anvil_url, "--contract", contract.lower()])
    assert pinned.exit_code == 1
    assert "[rollback] rolled back: the latest checkpoint anchored on chain" in pinned.stderr
    bad = runner.invoke(ledger_app, ["verify", "--rpc", anvil_url, "--contract", "0x12"])
    assert bad.exit_code == 2
    assert "is not an address" in bad.stderr
