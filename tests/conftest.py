"""Shared fixtures: a freshly migrated database per test (SQLite always, PostgreSQL when a URL is given), the app."""

from __future__ import annotations

import copy
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from services.kernel.auth import Role, create_key, get_or_create_organisation
from services.kernel.database import unit_of_work
from services.kernel.migrate import upgrade
from services.kernel.runtime import Runtime
from services.kernel.settings import KernelSettings, normalise_database_url

PG_ENV = "SMARTGATE_TEST_DATABASE_URL"
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def pg_server_url() -> str | None:
    """The PostgreSQL URL given for tests, if any."""
    url = os.environ.get(PG_ENV)
    return normalise_database_url(url) if url else None


def _admin_engine(url: str):  # type: ignore[no-untyped-def]
    return create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")


@pytest.fixture(scope="session")
def _templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Migrate once per backend into a template that every test copies (migrations run for real, once)."""
    made: dict[str, str] = {}
    sqlite_file = tmp_path_factory.mktemp("template") / "template.db"
    sqlite_url = f"sqlite:///{sqlite_file}"
    upgrade(sqlite_url)
    engine = create_engine(sqlite_url)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    made["sqlite"] = str(sqlite_file)
    pg = pg_server_url()
    template_name = None
    if pg:
        template_name = f"sg_tmpl_{uuid.uuid4().hex[:10]}"
        admin = _admin_engine(pg)
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{template_name}"'))
        template_url = make_url(pg).set(database=template_name).render_as_string(hide_password=False)
        upgrade(template_url)
        made["postgresql"] = template_name
    yield made
    if pg and template_name:
        with _admin_engine(pg).connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{template_name}" WITH (FORCE)'))


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, _templates: dict[str, str], tmp_path: Path) -> Iterator[str]:
    """A freshly migrated, empty database of the parametrised backend, dropped after the test."""
    if request.param == "sqlite":
        target = tmp_path / "smartgate.db"
        shutil.copyfile(_templates["sqlite"], target)
        yield f"sqlite:///{target}"
        return
    pg = pg_server_url()
    if not pg:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true requires the PostgreSQL variant: {PG_ENV} is not set")
        pytest.skip(f"PostgreSQL variant: set {PG_ENV} (.ci/run does)")
    name = f"sg_test_{uuid.uuid4().hex[:12]}"
    admin = _admin_engine(pg)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{_templates["postgresql"]}"'))
    yield make_url(pg).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> KernelSettings:
    """Test settings pointing at the fresh database."""
    return KernelSettings(
        environment="test",
        database_url=database_url,
        secret_key=secrets.token_urlsafe(40),
        var_dir=tmp_path / "var",
        log_json=False,
        relay_interval_seconds=0.05,
        rate_limit_per_minute=0,  # on in its own tests (tests/api/test_rate_limit.py)
        expiry_check_seconds=3600,
    )


@pytest.fixture
def runtime(settings: KernelSettings) -> Iterator[Runtime]:
    """Engine, sessions, bus and relay for the test database."""
    rt = Runtime.build(settings)
    yield rt
    rt.close()


@pytest.fixture
def app(settings: KernelSettings, runtime: Runtime):  # type: ignore[no-untyped-def]
    """The one-process app on the test database."""
    from api.app import create_app

    return create_app(settings, runtime=runtime)


@pytest.fixture
def client(app) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    """An HTTP client for the app, with its lifespan (relay, scheduler) running."""
    from fastapi.testclient import TestClient

    with TestClient(app) as c:
        yield c


class Keys:
    """Makes API keys in the test database and the headers that carry them."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def make(self, role: str, org: str | None = None) -> dict[str, str]:
        """Headers with a new key of `role` (traders bound to organisation `org`)."""
        with unit_of_work(self.runtime.sessions) as session:
            organisation = get_or_create_organisation(session, name=org) if org else None
            _, clear = create_key(
                session, secret_key=self.runtime.settings.secret_key, role=Role(role), organisation=organisation
            )
        return {"Authorization": f"Bearer {clear}"}


@pytest.fixture
def served(app: Any) -> Iterator[str]:
    """The app behind a real HTTP server (uvicorn, with its lifespan) on a free loopback port: for clients that
    must come over the network (a browser, the simulator's twin mode)."""
    import threading

    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=_free_port(), log_config=None, access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("the test server did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{server.config.port}"
    server.should_exit = True
    thread.join(timeout=15)


@pytest.fixture
def keys(runtime: Runtime) -> Keys:
    """Key factory."""
    return Keys(runtime)


@pytest.fixture
def declaration_body() -> dict[str, Any]:
    """A valid declaration body (a deep copy of the OpenAPI example)."""
    from services.declarations.schemas import EXAMPLE

    return copy.deepcopy(EXAMPLE)


REPO = Path(__file__).resolve().parent.parent


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


class AnvilNode:
    """An anvil process on a fixed loopback port that a test can restart: a restarted anvil is a reset chain
    (same chain id and URL, no contracts, no transactions)."""

    def __init__(self, binary: str) -> None:
        """Pick a free port; start() runs the node."""
        self.binary = binary
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    def start(self) -> None:
        """Start anvil and wait until it listens (fail the test if it exits or does not listen in 30 s)."""
        self._log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [self.binary, "--host", "127.0.0.1", "--port", str(self.port), "--silent", "--chain-id", "31337"],
            stdout=subprocess.DEVNULL,
            stderr=self._log,
        )
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                self._log.seek(0)
                err = self._log.read().decode(errors="replace")
                pytest.fail(f"anvil exited with {self.proc.returncode}: {err[:500]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("anvil did not listen within 30 s")
                time.sleep(0.1)

    def stop(self) -> None:
        """Stop the node (its chain is gone)."""
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def restart(self) -> None:
        """Stop and start again on the same port: the chain is reset."""
        self.stop()
        self.start()


def _anvil_binary() -> str:
    binary = _find_anvil()
    if binary is None:
        reason = (
            "anvil not found (install it with `npm install --prefix .tools @foundry-rs/anvil`, or put anvil on PATH)"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true requires the anvil tests: {reason}")
        pytest.skip(reason)
    return binary


@pytest.fixture(scope="session")
def anvil_url() -> Iterator[str]:
    """Start anvil (npm @foundry-rs/anvil) on a free loopback port; skip if absent, FAIL if absent under CI."""
    node = AnvilNode(_anvil_binary())
    node.start()
    try:
        yield node.url
    finally:
        node.stop()


@pytest.fixture
def anvil_node() -> Iterator[AnvilNode]:
    """An anvil of this test's own, which the test may restart (reset the chain); skip/FAIL as `anvil_url`."""
    node = AnvilNode(_anvil_binary())
    node.start()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture
def raw_events(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let a test write events its type's catalogue model would refuse: tests of the transport (outbox, bus) and
    of consumers' tolerance of partial or pre-catalogue payloads. Producers are always checked elsewhere."""
    from services.kernel import catalogue

    monkeypatch.setattr(catalogue, "ENFORCE", False)
