"""Fixtures of the provenance tests: a deterministic checkpointer, traders and officers, anvil, tampering."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from ledger import storage
from services.kernel.runtime import Runtime
from services.provenance.checkpointer import Checkpointer
from services.provenance.service import Provenance
from tests.api.support import ORG_A, ORG_B, Api, release_pg_template

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session", autouse=True)
def _free_template(_templates: dict[str, str]) -> None:
    """See release_pg_template."""
    release_pg_template(_templates)


@pytest.fixture(autouse=True)
def _ledger_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests drive checkpoints with checkpoint_now(): the background pass is an hour away unless a test says so."""
    for name in ("SMARTGATE_CHAIN_RPC_URL", "SMARTGATE_LEDGER_SIGNING_KEY", "SMARTGATE_LEDGER_ORIGIN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SMARTGATE_LEDGER_CHECKPOINT_SECONDS", "3600")
    monkeypatch.setenv("SMARTGATE_LEDGER_CHECKPOINT_ENTRIES", "1000000")


@pytest.fixture
def api(client: Any, runtime: Runtime, declaration_body: dict[str, Any]) -> Api:
    """Files declarations over HTTP."""
    return Api(client, runtime, declaration_body)


@pytest.fixture
def trader(keys: Any) -> dict[str, str]:
    """Headers of a trader of organisation A."""
    headers: dict[str, str] = keys.make("trader", ORG_A)
    return headers


@pytest.fixture
def trader_b(keys: Any) -> dict[str, str]:
    """Headers of a trader of organisation B."""
    headers: dict[str, str] = keys.make("trader", ORG_B)
    return headers


@pytest.fixture
def officer(keys: Any) -> dict[str, str]:
    """Headers of an officer."""
    headers: dict[str, str] = keys.make("officer")
    return headers


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


def _find_anvil() -> str | None:
    # The platform binary from the npm package: killing it kills the node, not just a node.js wrapper.
    tools = REPO / ".tools" / "node_modules"
    for candidate in sorted(tools.glob("@foundry-rs/anvil-*/bin/anvil")):
        if os.access(candidate, os.X_OK):
            return str(candidate)
    wrapper = tools / ".bin" / "anvil"
    if wrapper.exists():
        return str(wrapper)
    return shutil.which("anvil")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def anvil_url() -> Iterator[str]:
    """Start anvil (npm @foundry-rs/anvil) on a free loopback port; skip if absent, FAIL if absent under CI."""
    binary = _find_anvil()
    if binary is None:
        reason = (
            "anvil not found: run scripts/system-deps.sh (npm install --prefix .tools @foundry-rs/anvil) "
            "or put anvil on PATH"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true requires the anvil tests: {reason}")
        pytest.skip(reason)
    port = _free_port()
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(
        [binary, "--host", "127.0.0.1", "--port", str(port), "--silent", "--chain-id", "31337"],
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                log.seek(0)
                pytest.fail(f"anvil exited with {proc.returncode}: {log.read().decode(errors='replace')[:500]}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("anvil did not listen within 30 s")
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
