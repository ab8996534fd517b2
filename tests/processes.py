"""Real smartgate processes for tests: a PostgreSQL database copied from the test template, `smartgate serve` and
`smartgate gateway` as subprocesses (each in its own process group, always stopped), readiness waits, API keys."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from ledger import storage
from services.kernel.auth import Role, create_key, get_or_create_organisation
from services.kernel.database import make_engine, make_sessionmaker, unit_of_work
from services.kernel.dbroles import grant_service_role
from tests.api.support import ORG_A
from tests.conftest import _admin_engine, pg_server_url

SMARTGATE = str(Path(sys.executable).parent / "smartgate")

# Roles are cluster-wide: every test database grants the same one (created once, idempotently, by whoever is
# first). A password makes it work under password authentication too; trust ignores it.
APP_ROLE = "smartgate_app_test"
APP_PASSWORD = "smartgate-app-test-password"


def as_service_role(owner_url: str) -> str:
    """Grant the services' role on the database at `owner_url` (as its owner); return the URL to connect as it."""
    engine = make_engine(owner_url)
    try:
        with engine.connect() as conn:
            exists = conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": APP_ROLE}).first()
        # The password only with the role: concurrent ALTER ROLEs of one role fail ("tuple concurrently updated").
        password = None if exists else APP_PASSWORD
        grant_service_role(engine, APP_ROLE, append_only=[t.name for t in storage.TABLES], password=password)
    finally:
        engine.dispose()
    return make_url(owner_url).set(username=APP_ROLE, password=APP_PASSWORD).render_as_string(hide_password=False)


def require(reason: str | None) -> None:
    """Skip for `reason` (a missing PostgreSQL, NATS, binary...), or fail under CI, which must run everything."""
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true requires this test: {reason}")
    pytest.skip(reason)


@contextmanager
def pg_database(template: str, prefix: str = "sg_proc") -> Iterator[str]:
    """A PostgreSQL database copied from the migrated test template (the `_templates` fixture), dropped after."""
    pg = pg_server_url()
    require(None if pg else "PostgreSQL: set SMARTGATE_TEST_DATABASE_URL (.ci/run does)")
    assert pg is not None
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = _admin_engine(pg)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    try:
        yield make_url(pg).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def server_env(db_url: str, var_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a test server process: test settings, a fresh secret, rate limit off, plain logs."""
    return {
        **os.environ,
        "SMARTGATE_ENVIRONMENT": "test",
        "SMARTGATE_SECRET_KEY": secrets.token_urlsafe(40),
        "SMARTGATE_DATABASE_URL": db_url,
        "SMARTGATE_VAR_DIR": str(var_dir),
        "SMARTGATE_LOG_JSON": "false",
        "SMARTGATE_RATE_LIMIT_PER_MINUTE": "0",
        **extra,
    }


def make_keys(db_url: str, secret: str, org: str = ORG_A) -> dict[str, dict[str, str]]:
    """Authorization headers of a new trader (of `org`), officer and supervisor, written straight into the
    database."""
    engine = create_engine(db_url)
    out = {}
    with unit_of_work(make_sessionmaker(engine)) as session:
        organisation = get_or_create_organisation(session, name=org)
        for role in (Role.trader, Role.officer, Role.supervisor):
            _, clear = create_key(
                session, secret_key=secret, role=role, organisation=organisation if role is Role.trader else None
            )
            out[role.value] = {"Authorization": f"Bearer {clear}"}
    engine.dispose()
    return out


def seed_rates(db_url: str) -> None:
    """Today's demo exchange rates (Hanoi date), so that duties can be assessed and a declaration cleared."""
    import datetime as dt

    from services.declarations.assessment import VN_TZ
    from services.declarations.tariff import DEMO_RATES, post_rate

    engine = create_engine(db_url)
    with unit_of_work(make_sessionmaker(engine)) as session:
        for currency, rate in DEMO_RATES.items():
            post_rate(session, currency=currency, day=dt.datetime.now(VN_TZ).date(), vnd_per_unit=rate, source="t",
                      actor="t")  # fmt: skip
    engine.dispose()


class Processes:
    """Subprocesses of one test, each in its own session (so a kill reaches its whole group), logs in `logs`."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        logs.mkdir(parents=True, exist_ok=True)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        """Start `args` as `name` (a name used before is replaced; its log is appended to)."""
        with (self.logs / f"{name}.log").open("ab") as out:
            proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs[name] = proc
        return proc

    def log(self, name: str, tail: int = 3000) -> str:
        """The end of a process's output."""
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace")[-tail:] if path.exists() else ""

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Signal the process group of `name` and wait for the process to end (bounded)."""
        proc = self.procs[name]
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                pass
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    def check_alive(self) -> None:
        """Fail the test with its log if a process exited."""
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                pytest.fail(f"{name} exited with {proc.returncode}: {self.log(name, 2000)}")

    def stop_all(self) -> None:
        """SIGTERM every group still running, then SIGKILL what has not ended within 20 s."""
        for proc in self.procs.values():
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for proc in self.procs.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(timeout=10)


def wait_ready(
    url: str, processes: Processes, *, accept: Callable[[Any], bool] = lambda body: True, timeout: float = 90
) -> float:
    """Poll `url`/readyz until it answers 200 with a body `accept`s; returns the seconds waited. Fails the test
    if a process exits or the deadline passes."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        processes.check_alive()
        try:
            resp = httpx.get(f"{url}/readyz", timeout=2)
            if resp.status_code == 200 and accept(resp.json()):
                return time.monotonic() - start
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.1)
    pytest.fail(f"{url} did not become ready: " + "; ".join(f"{n}: {processes.log(n, 400)}" for n in processes.procs))


def until(what: Callable[[], Any], timeout: float = 30, message: str = "the deployment did not get there") -> Any:
    """Poll `what` until it returns something truthy (returned), failing the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = what()
        if found:
            return found
        time.sleep(0.2)
    pytest.fail(f"{message} within {timeout:.0f} s")
