"""Database outages answer 503 problem+json with Retry-After within seconds, never 500 and never a hang; the app
recovers without a restart; a filing whose client got a 503 is never committed later.

The PostgreSQL faults run on a private cluster this file starts on its own port (tests/faults/pgcluster.py),
stopped (`pg_ctl stop -m immediate`) and frozen (SIGSTOP of every process of the cluster); SQLite's is another
connection holding the write lock. The app is served by uvicorn on a loopback port, as in production. Every wait
here is bounded, and a guard ends the process (thawing the cluster first) if the file hangs anyway.
"""

from __future__ import annotations

import contextlib
import copy
import faulthandler
import logging
import os
import secrets
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import uvicorn
from sqlalchemy import create_engine, event, text

from services.kernel.auth import Role, create_key, get_or_create_organisation
from services.kernel.database import make_engine, unit_of_work
from services.kernel.dbtimeouts import DatabaseTimeouts, wait_bound
from services.kernel.deps import SessionDep
from services.kernel.leader import Leadership
from services.kernel.migrate import upgrade
from services.kernel.runtime import Runtime
from services.kernel.settings import KernelSettings
from tests.faults.pgcluster import PgCluster, find_bin, private_cluster
from tests.support import wait_for

pytestmark = pytest.mark.slow

BASE = "/api/v1/declarations"
REQUEST_BOUND_S = 5.0  # the bound for a filing or a read to answer during an outage
READY_BOUND_S = 2.0  # the same for /readyz
GUARD_S = 150.0  # hard bound on the whole file: past it, thaw the cluster and end the process
_clusters: list[PgCluster] = []


def _abort() -> None:
    for cluster in _clusters:
        with contextlib.suppress(Exception):
            cluster.destroy()
    faulthandler.dump_traceback(all_threads=True)
    os._exit(3)


@pytest.fixture(scope="module", autouse=True)
def _bounded() -> Iterator[None]:
    guard = threading.Timer(GUARD_S, _abort)
    guard.daemon = True
    guard.start()
    yield
    guard.cancel()


@pytest.fixture(scope="module")
def cluster() -> Iterator[PgCluster]:
    """A private, migrated PostgreSQL cluster (a template database each test copies)."""
    if find_bin() is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true requires the PostgreSQL fault tests: initdb/pg_ctl not found")
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found")
    with private_cluster() as made:
        _clusters.append(made)
        made.wait_ready()
        upgrade(made.create_database("sg_template"))
        yield made
        _clusters.remove(made)


def _pg_database(cluster: PgCluster) -> str:
    cluster.wait_ready()
    name = f"sg_fault_{uuid.uuid4().hex[:10]}"
    with cluster.connect() as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE sg_template')
    return cluster.url(name)


# ---- the served app


@dataclass
class Outcome:
    """One request made during a fault."""

    what: str
    status: int
    seconds: float
    started: float = 0.0
    code: str | None = None
    key: str | None = None
    retry_after: str | None = None
    content_type: str = ""


@dataclass
class Served:
    """The app behind uvicorn, a trader's headers, and what it logged."""

    base: str
    runtime: Runtime
    trader: dict[str, str]
    records: list[logging.LogRecord] = field(default_factory=list)
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=20))

    def request(self, what: str, method: str, path: str, **kwargs: Any) -> Outcome:
        """Make one request and note how it went (a client timeout counts as status 0)."""
        started = time.monotonic()
        try:
            response = self.http.request(method, self.base + path, **kwargs)
        except httpx.HTTPError:
            return Outcome(what, 0, time.monotonic() - started, started)
        seconds = time.monotonic() - started
        code = None
        if response.headers.get("content-type", "").startswith("application/problem+json"):
            code = response.json().get("code")
        return Outcome(what, response.status_code, seconds, started, code,
                       kwargs.get("headers", {}).get("Idempotency-Key"), response.headers.get("retry-after"),
                       response.headers.get("content-type", ""))  # fmt: skip

    def other_client(self) -> Served:
        """The same app with its own HTTP client (one per thread)."""
        return Served(self.base, self.runtime, self.trader, self.records, httpx.Client(timeout=20))

    def file(self, body: dict[str, Any], key: str | None = None) -> Outcome:
        """File a declaration with a fresh (or the given) Idempotency-Key."""
        headers = {**self.trader, "Idempotency-Key": key or uuid.uuid4().hex}
        return self.request("filing", "POST", BASE, json=body, headers=headers)

    def read(self) -> Outcome:
        """List declarations."""
        return self.request("read", "GET", BASE, headers=self.trader)

    def ready(self) -> Outcome:
        """Ask /readyz."""
        return self.request("readyz", "GET", "/readyz")


class _Records(logging.Handler):
    def __init__(self, into: list[logging.LogRecord]) -> None:
        super().__init__(logging.DEBUG)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(record)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serve(database_url: str, tmp_path: Path) -> Iterator[Served]:
    """The whole app on `database_url`, served by uvicorn in a thread, with a trader key."""
    from api.app import create_app

    settings = KernelSettings(
        environment="test",
        database_url=database_url,
        secret_key=secrets.token_urlsafe(40),
        var_dir=tmp_path / "var",
        log_json=False,
        relay_interval_seconds=0.05,
        rate_limit_per_minute=0,
        expiry_check_seconds=3600,
        auth_cache_seconds=0,  # every request looks its key up: the database is on every request's path
    )
    runtime = Runtime.build(settings)
    with unit_of_work(runtime.sessions) as session:
        org = get_or_create_organisation(session, name="Fault Test Trading")
        _, clear = create_key(session, secret_key=settings.secret_key, role=Role.trader, organisation=org)
    app = create_app(settings, runtime=runtime)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=_free_port(), log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    records: list[logging.LogRecord] = []
    handler = _Records(records)
    logging.getLogger().addHandler(handler)
    thread.start()
    served: Served | None = None
    try:
        assert wait_for(lambda: server.started or not thread.is_alive(), 30), "the server did not start"
        served = Served(f"http://127.0.0.1:{server.config.port}", runtime, {"Authorization": f"Bearer {clear}"})
        served.records = records
        yield served
    finally:
        logging.getLogger().removeHandler(handler)
        if served is not None:
            served.http.close()
        server.should_exit = True
        thread.join(timeout=30)
        runtime.close()


def _body() -> dict[str, Any]:
    from services.declarations.schemas import EXAMPLE

    return copy.deepcopy(EXAMPLE)


def _assert_outage_answer(outcome: Outcome, bound: float) -> None:
    assert outcome.status == 503, outcome
    assert outcome.content_type.startswith("application/problem+json"), outcome
    assert outcome.retry_after, outcome
    assert int(outcome.retry_after) > 0, outcome
    assert outcome.code in ("database.unavailable", "database.commit_unknown"), outcome
    assert outcome.seconds <= bound, outcome


def _tracebacks(records: list[logging.LogRecord]) -> list[str]:
    return [f"{r.name}: {r.getMessage()}" for r in records if r.exc_info]


def _stored_keys(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return set(conn.execute(text("SELECT key FROM idempotency_keys")).scalars())
    finally:
        engine.dispose()


def _figure(name: str, value: float) -> None:
    """Print a measured figure (docs/reliability.md quotes them; run with -s to see them)."""
    print(f"FIGURE {name}: {value:.2f} s")  # noqa: T201 - the figures docs/reliability.md quotes


def _unpublished(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM outbox_events WHERE published_at IS NULL")).scalar_one())
    finally:
        engine.dispose()


# ---- PostgreSQL stopped


def test_stopped_postgresql_answers_503_and_recovers_without_restart(cluster: PgCluster, tmp_path: Path) -> None:
    url = _pg_database(cluster)
    body = _body()
    with serve(url, tmp_path) as app:
        assert app.file(body).status == 201
        logged_before = len(app.records)

        cluster.stop("immediate")
        stopped_at = time.monotonic()
        first = app.file(body)
        outcomes = [first]
        while time.monotonic() - stopped_at < 4:
            outcomes += [app.file(body), app.read(), app.ready()]
        for outcome in outcomes:
            _assert_outage_answer(outcome, READY_BOUND_S if outcome.what == "readyz" else REQUEST_BOUND_S)
        assert {o.code for o in outcomes} == {"database.unavailable"}  # nothing had been sent for commit
        _figure("stopped: first filing's 503", first.seconds)
        _figure("stopped: slowest 503", max(o.seconds for o in outcomes))

        cluster.start()
        started_at = time.monotonic()
        assert wait_for(lambda: app.file(body).status == 201, 30, interval=0.1), "no recovery after the restart"
        _figure("stopped: recovery after pg_ctl start returned", time.monotonic() - started_at)
        assert app.ready().status == 200
        # Background work went on: the relay publishes what the filings since the restart wrote.
        assert wait_for(lambda: _unpublished(url) == 0, 30)
        assert app.runtime.relay.worker.running
        for worker in ("provenance.checkpointer", "webhooks.dispatcher"):
            assert app.runtime.extras[worker].worker.running, worker
        assert not _tracebacks(app.records[logged_before:])
        assert not {o.key for o in outcomes if o.key} & _stored_keys(url)


# ---- PostgreSQL frozen


def _server_now(cluster: PgCluster, database: str) -> Any:
    with cluster.connect(database) as conn:
        return conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index]


def _abandoned_backends(cluster: PgCluster, database: str, before: Any) -> int:
    """Backends of `database` that were connected before the freeze and are still in a transaction."""
    with cluster.connect(database) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND backend_start < %s AND pid <> "
            "pg_backend_pid() AND state IN ('active', 'idle in transaction', 'idle in transaction (aborted)')",
            (database, before),
        ).fetchone()
    return int(row[0]) if row else 0


def test_frozen_postgresql_answers_503_and_abandoned_filings_never_commit(cluster: PgCluster, tmp_path: Path) -> None:
    url = _pg_database(cluster)
    database = url.rsplit("/", 1)[1]
    body = _body()
    with serve(url, tmp_path) as app:
        assert app.file(body).status == 201
        logged_before = len(app.records)
        outcomes: list[Outcome] = []
        stop = threading.Event()

        def traffic(kind: str) -> None:
            mine = app.other_client()
            with mine.http:
                while not stop.is_set():
                    outcomes.append(mine.file(body) if kind == "filing" else mine.read())

        workers = [threading.Thread(target=traffic, args=(k,), daemon=True) for k in ("filing",) * 3 + ("read",)]
        for worker in workers:
            worker.start()
        time.sleep(1.0)
        before_freeze = _server_now(cluster, database)
        cluster.freeze()
        frozen_at = time.monotonic()
        probes: list[Outcome] = []
        try:
            while time.monotonic() - frozen_at < 8:
                probes.append(app.ready())
                time.sleep(0.3)
        finally:
            cluster.thaw()
        thawed_at = time.monotonic()
        assert wait_for(lambda: app.file(body).status == 201, 30, interval=0.1), "no recovery after SIGCONT"
        recovered_at = time.monotonic()
        time.sleep(1.0)
        stop.set()
        for worker in workers:
            worker.join(timeout=30)

        assert all(not w.is_alive() for w in workers)
        assert all(o.status in (200, 201, 503) for o in outcomes), [
            o for o in outcomes if o.status not in (200, 201, 503)
        ]
        during = [o for o in outcomes if frozen_at <= o.started and o.started + o.seconds < thawed_at]
        for outcome in [o for o in outcomes if o.status == 503]:
            _assert_outage_answer(outcome, REQUEST_BOUND_S)
        assert max(o.seconds for o in outcomes) <= REQUEST_BOUND_S
        assert [o for o in during if o.what == "filing" and o.status == 503], "no filing met the freeze"
        assert [o for o in during if o.what == "read" and o.status == 503], "no read met the freeze"
        for probe in probes:
            _assert_outage_answer(probe, READY_BOUND_S)
        first_503 = min(
            o.started + o.seconds for o in outcomes if o.status == 503 and o.started + o.seconds > frozen_at
        )
        _figure("frozen: first 503 after SIGSTOP", first_503 - frozen_at)
        _figure("frozen: slowest 503", max(o.seconds for o in outcomes if o.status == 503))
        _figure("frozen: slowest /readyz", max(p.seconds for p in probes))
        _figure("frozen: recovery after SIGCONT", recovered_at - thawed_at)

        # The backends that were working for a request when frozen have run on and ended (rolled back).
        assert wait_for(lambda: _abandoned_backends(cluster, database, before_freeze) == 0, 30)
        stored = _stored_keys(url)
        abandoned = {o.key for o in outcomes if o.status == 503 and o.code == "database.unavailable"}
        assert abandoned
        assert not abandoned & stored, "a filing answered 503 was committed later"
        assert {o.key for o in outcomes if o.status == 201} <= stored
        # A lost answer to COMMIT is reported as such; the same key settles it: stored exactly once.
        for unknown in [o for o in outcomes if o.code == "database.commit_unknown"]:
            again = app.file(body, key=unknown.key)
            assert again.status == 201, again
        assert wait_for(lambda: _unpublished(url) == 0, 30)
        assert not _tracebacks(app.records[logged_before:])


def test_a_commit_lost_in_a_freeze_is_reported_as_unknown_and_the_same_key_settles_it(
    cluster: PgCluster, tmp_path: Path
) -> None:
    """What cannot be guaranteed is said: a COMMIT the frozen server already received is applied when it runs
    again, after the client was answered. That answer is `database.commit_unknown`, and a retry with the same
    Idempotency-Key replays the stored filing instead of filing it twice."""
    url = _pg_database(cluster)
    database = url.rsplit("/", 1)[1]
    body = _body()
    with serve(url, tmp_path) as app:
        armed = threading.Event()

        @event.listens_for(app.runtime.engine, "commit")
        def _freeze_at_commit(conn: Any) -> None:
            # The filing's own commit (a request's write transaction; not a key look-up, not background work).
            request_write = wait_bound(None) is not None and "sqlite_begin" not in conn.get_execution_options()
            if request_write and armed.is_set():
                armed.clear()
                cluster.freeze()

        before_freeze = _server_now(cluster, database)
        key = uuid.uuid4().hex
        armed.set()
        try:
            lost = app.file(body, key=key)
        finally:
            cluster.thaw()
        _assert_outage_answer(lost, REQUEST_BOUND_S)
        assert lost.code == "database.commit_unknown"
        assert wait_for(lambda: _abandoned_backends(cluster, database, before_freeze) == 0, 30)
        assert key in _stored_keys(url)  # the server had the COMMIT: it applied it when it ran again
        replayed = app.http.post(app.base + BASE, json=body, headers={**app.trader, "Idempotency-Key": key})
        assert replayed.status_code == 201
        assert replayed.headers.get("idempotent-replayed") == "true"


def test_leader_election_survives_a_stopped_database(cluster: PgCluster) -> None:
    """The leader's lock dies with the server: its work stops, and once the server is back a process leads again."""
    url = _pg_database(cluster)
    running: list[int] = []
    leadership = Leadership(
        make_engine(url, timeouts=DatabaseTimeouts()),
        [(lambda: running.append(1), lambda: running.pop())],
        shared=True,
        retry_seconds=0.2,
    )
    leadership.start()
    try:
        assert wait_for(lambda: leadership.leading, 30)
        cluster.stop("immediate")
        assert wait_for(lambda: not leadership.leading, 30)
        assert running == []
        cluster.start()
        assert wait_for(lambda: leadership.leading, 30)
        assert running == [1]
    finally:
        leadership.stop()
        leadership.engine.dispose()


# ---- SQLite locked by another process


def test_sqlite_write_lock_held_elsewhere_answers_503(tmp_path: Path) -> None:
    path = tmp_path / "smartgate.db"
    url = f"sqlite:///{path}"
    upgrade(url)
    body = _body()
    with serve(url, tmp_path) as app:
        assert app.file(body).status == 201
        # Waits its turn if the app's background work is writing just then; then holds the lock.
        holder = sqlite3.connect(path, isolation_level=None, timeout=10)
        holder.execute("BEGIN IMMEDIATE")
        try:
            blocked = app.file(body)
            _assert_outage_answer(blocked, REQUEST_BOUND_S)
            assert blocked.code == "database.unavailable"
            assert app.read().status == 200  # WAL: readers never wait for the writer
            assert app.ready().status == 200
            _figure("sqlite locked: filing's 503", blocked.seconds)
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert wait_for(lambda: app.file(body).status == 201, 30, interval=0.1)
        assert blocked.key not in _stored_keys(url)


# ---- the mapping, on both backends (tests/conftest.py's fixtures)


def test_a_database_outage_inside_a_request_is_503_and_a_bug_stays_500(
    app: Any, client: Any, database_url: str, tmp_path: Path
) -> None:
    if database_url.startswith("sqlite"):
        unreachable = f"sqlite:///{tmp_path / 'no-such-dir' / 'gone.db'}"
    else:
        unreachable = f"postgresql+psycopg://postgres@127.0.0.1:{_free_port()}/gone"  # nothing listens there

    def outage() -> None:
        engine = create_engine(unreachable)
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        finally:
            engine.dispose()

    def bug(session: SessionDep) -> None:
        session.execute(text("SELECT * FROM no_such_table"))

    app.add_api_route("/_faults/outage", outage)
    app.add_api_route("/_faults/bug", bug)
    down = client.get("/_faults/outage")
    assert down.status_code == 503
    assert down.headers["content-type"] == "application/problem+json"
    assert int(down.headers["retry-after"]) > 0
    assert down.json()["code"] == "database.unavailable"
    assert down.json()["status"] == 503
    broken = client.get("/_faults/bug")
    assert broken.status_code == 500
    assert "error_id" in broken.json()


def test_a_lock_held_elsewhere_answers_503_then_the_same_key_files(
    client: Any, keys: Any, database_url: str, declaration_body: dict[str, Any]
) -> None:
    from sqlalchemy.engine import make_url

    trader = keys.make("trader", org="Lock Test Trading")
    headers = {**trader, "Idempotency-Key": uuid.uuid4().hex}
    holder: Any
    if database_url.startswith("sqlite"):
        holder = sqlite3.connect(str(make_url(database_url).database), isolation_level=None, timeout=10)
        holder.execute("BEGIN IMMEDIATE")
    else:
        plain = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
        holder = psycopg.connect(plain)
        holder.execute("LOCK TABLE idempotency_keys IN ACCESS EXCLUSIVE MODE")
    try:
        blocked = client.post(BASE, json=declaration_body, headers=headers)
    finally:
        holder.rollback() if isinstance(holder, psycopg.Connection) else holder.execute("ROLLBACK")
        holder.close()
    assert blocked.status_code == 503
    assert blocked.headers["content-type"] == "application/problem+json"
    assert int(blocked.headers["retry-after"]) > 0
    assert blocked.json()["code"] == "database.unavailable"
    filed = client.post(BASE, json=declaration_body, headers=headers)
    assert filed.status_code == 201  # the blocked attempt stored nothing: this is no replay
    assert "idempotent-replayed" not in filed.headers
