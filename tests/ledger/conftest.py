"""Fixtures for the ledger tests: databases (SQLite always, PostgreSQL when configured), keys, chains, anvil."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent))  # for the helper modules beside this file

from ledger_helpers import PG_URL_ENV, TEST_SEED

from ledger import storage
from ledger.checkpoint import Signer


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
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true requires the PostgreSQL variant: {PG_URL_ENV} is not set")
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
