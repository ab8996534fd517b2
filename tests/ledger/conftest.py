"""Fixtures for the ledger tests: databases (SQLite always, PostgreSQL when configured), keys, chains, anvil."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent))  # for the helper modules beside this file

from ledger_helpers import PG_URL_ENV, REPO, TEST_SEED  # noqa: E402

from ledger import storage  # noqa: E402
from ledger.checkpoint import Signer  # noqa: E402


@pytest.fixture
def signer() -> Signer:
    """The deterministic test signing key."""
    return Signer.from_seed("smartgate-test", TEST_SEED)


def _sqlite(tmp_path: Path) -> Iterator[Engine]:
    engine = storage.sqlite_engine(str(tmp_path / "ledger.sqlite"))
    with engine.begin() as conn:
        storage.install_schema(conn)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def pg_server_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test module (dropped afterwards), or skip."""
    url = os.environ.get(PG_URL_ENV)
    if not url:
        pytest.skip(f"{PG_URL_ENV} not set: PostgreSQL variant skipped")
    base = make_url(url)
    name = f"ledger_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A ledger database with the schema installed: SQLite in tmp_path, and PostgreSQL when configured."""
    if request.param == "sqlite":
        yield from _sqlite(tmp_path)
        return
    server = request.getfixturevalue("pg_server_url")
    # A fresh schema per test inside the module's database: no state shared, nothing cleaned by DELETE.
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server)
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    admin.dispose()
    eng = create_engine(server, connect_args={"options": f"-csearch_path={schema}"})
    with eng.begin() as conn:
        storage.install_schema(conn)
    yield eng
    eng.dispose()


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    """A SQLite ledger database only (for tests whose logic does not depend on the engine)."""
    yield from _sqlite(tmp_path)


def _find_anvil() -> str | None:
    # Prefer the platform binary shipped by the npm package: killing it kills the node, not just a node.js wrapper.
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
            "anvil not found (install it with `npm install --prefix .tools @foundry-rs/anvil`, or put anvil on PATH)"
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
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                log.seek(0)
                err = log.read().decode(errors="replace")
                pytest.fail(f"anvil exited with {proc.returncode}: {err[:500]}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("anvil did not listen within 30 s")
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
