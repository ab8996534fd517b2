"""Fixtures of the provenance tests: a deterministic checkpointer, traders and officers, anvil, tampering."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from ledger import storage
from services.kernel.runtime import Runtime
from services.provenance.checkpointer import Checkpointer
from services.provenance.service import Provenance

# The API tests' fixtures (api, trader, trader_b, officer), shared rather than copied.
from tests.api.conftest import api, officer, trader, trader_b  # noqa: F401

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(autouse=True)
def _ledger_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests drive checkpoints with checkpoint_now(): the background pass is an hour away unless a test says so."""
    for name in ("SMARTGATE_CHAIN_RPC_URL", "SMARTGATE_LEDGER_SIGNING_KEY", "SMARTGATE_LEDGER_ORIGIN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SMARTGATE_LEDGER_CHECKPOINT_SECONDS", "3600")
    monkeypatch.setenv("SMARTGATE_LEDGER_CHECKPOINT_ENTRIES", "1000000")


@pytest.fixture
def prov(client: Any, runtime: Runtime) -> Provenance:
    """The provenance service of the running app."""
    found: Provenance = runtime.extras["provenance"]
    return found


@pytest.fixture
def checkpointer(client: Any, runtime: Runtime) -> Checkpointer:
    """The app's checkpointer (call checkpoint_now() to sign and anchor deterministically)."""
    found: Checkpointer = runtime.extras["provenance.checkpointer"]
    return found


def settle(runtime: Runtime, checkpointer: Checkpointer) -> None:
    """Deliver every pending event to the ledger, then sign and anchor a checkpoint covering them."""
    runtime.relay.drain()
    outcome = checkpointer.checkpoint_now()
    assert outcome.anchor_error is None, outcome.anchor_error


def tamper(url: str, *statements: tuple[str, dict[str, Any]]) -> None:
    """Act as an attacker with database access: drop the append-only triggers, then run `statements`."""
    engine = create_engine(url)
    with engine.begin() as conn:
        for stmt in storage.drop_trigger_statements(conn.dialect.name):
            conn.exec_driver_sql(stmt)
        for sql, params in statements:
            conn.execute(text(sql), params)
    engine.dispose()
