"""The `smartgate` command line against the test database: migrate, keys create/revoke, demo seed, expiry."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, inspect, update
from typer.testing import CliRunner

from api.cli import app as cli
from services.declarations.models import Declaration
from services.kernel.database import unit_of_work, utcnow
from services.kernel.settings import KernelSettings
from tests.api.support import BASE, Api, assert_problem


@pytest.fixture
def runner(settings: KernelSettings, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """A runner whose environment points the CLI at the test database with the test secret."""
    for name, value in {
        "SMARTGATE_DATABASE_URL": settings.resolved_database_url,
        "SMARTGATE_ENVIRONMENT": "test",
        "SMARTGATE_SECRET_KEY": settings.secret_key,
        "SMARTGATE_VAR_DIR": str(settings.var_dir),
    }.items():
        monkeypatch.setenv(name, value)
    return CliRunner()


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CliRunner:
    """A runner for commands that fail before touching a database, or make their own."""
    monkeypatch.setenv("SMARTGATE_DATABASE_URL", f"sqlite:///{tmp_path / 'unused.db'}")
    monkeypatch.setenv("SMARTGATE_ENVIRONMENT", "test")
    monkeypatch.setenv("SMARTGATE_SECRET_KEY", "t" * 40)
    monkeypatch.setenv("SMARTGATE_VAR_DIR", str(tmp_path / "var"))
    return CliRunner()


def invoke(runner: CliRunner, *args: str) -> Any:
    return runner.invoke(cli, list(args), catch_exceptions=False)


def one_line_error(result: Any, code: int) -> None:
    """Failed with `code`, a single `smartgate: error:` line on stderr and no traceback."""
    assert result.exit_code == code, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("smartgate: error:")
    assert "Traceback" not in result.output


def test_keys_create_prints_a_key_that_works_and_revoke_kills_it(runner: CliRunner, api: Api) -> None:
    result = invoke(runner, "keys", "create", "--role", "trader", "--org", "Lao Cai Fruit Export JSC", "--label", "ci")
    assert result.exit_code == 0, result.output
    made = json.loads(result.stdout)
    assert (made["role"], made["organisation"]) == ("trader", "Lao Cai Fruit Export JSC")
    headers = {"Authorization": f"Bearer {made['api_key']}"}
    decl = api.file(headers)
    assert api.client.get(f"{BASE}/{decl['id']}", headers=headers).status_code == 200

    result = invoke(runner, "keys", "revoke", made["key_id"])
    assert result.exit_code == 0, result.output
    assert made["key_id"] in result.stdout
    assert_problem(api.client.get(f"{BASE}/{decl['id']}", headers=headers), 401)
    one_line_error(invoke(runner, "keys", "revoke", made["key_id"]), 4)


def test_keys_of_one_organisation_share_its_declarations(runner: CliRunner, api: Api) -> None:
    first, second = (
        json.loads(invoke(runner, "keys", "create", "--role", "trader", "--org", "Firm").stdout) for _ in range(2)
    )
    decl = api.file({"Authorization": f"Bearer {first['api_key']}"})
    assert (
        api.client.get(f"{BASE}/{decl['id']}", headers={"Authorization": f"Bearer {second['api_key']}"}).status_code
        == 200
    )


def test_an_officer_key(runner: CliRunner, api: Api) -> None:
    made = json.loads(invoke(runner, "keys", "create", "--role", "officer").stdout)
    assert made["organisation"] is None
    assert api.client.get(BASE, headers={"Authorization": f"Bearer {made['api_key']}"}).status_code == 200


@pytest.mark.parametrize("role", ["supervisor", "treasury"])
def test_supervisor_and_treasury_keys(runner: CliRunner, api: Api, role: str) -> None:
    made = json.loads(invoke(runner, "keys", "create", "--role", role).stdout)
    assert (made["role"], made["organisation"]) == (role, None)
    headers = {"Authorization": f"Bearer {made['api_key']}"}
    # A supervisor reads the review queue; the treasury reads the payments waiting for it, not the queue.
    queue, payments = (
        api.client.get("/api/v1/review/queue", headers=headers),
        api.client.get("/api/v1/payments", headers=headers),
    )
    assert (queue.status_code, payments.status_code) == ((200, 403) if role == "supervisor" else (403, 200))


def test_demo_seed_prints_a_key_per_role(runner: CliRunner, api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMARTGATE_ENVIRONMENT", "development")
    result = invoke(runner, "demo", "seed")
    assert result.exit_code == 0, result.output
    env_file = Path(os.environ["SMARTGATE_VAR_DIR"]) / "demo.env"
    keys = dict(line.removeprefix("export ").split("=", 1) for line in env_file.read_text().splitlines())
    assert {
        "TRADER_KEY",
        "OFFICER_KEY",
        "SUPERVISOR_KEY",
        "TREASURY_KEY",
        "GATE_KEY",
        "ADMIN_KEY",
        "ISSUER_KEY",
    } <= set(keys)
    assert {"PRODUCER_KEY", "PACKHOUSE_KEY", "INSPECTOR_KEY"} <= set(keys)  # the lychee pallet's walk-through
    for name, path in (("SUPERVISOR_KEY", "/api/v1/review/queue"), ("TREASURY_KEY", "/api/v1/payments")):
        assert api.client.get(path, headers={"Authorization": f"Bearer {keys[name]}"}).status_code == 200, name


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["keys", "create", "--role", "pirate"], 2),
        (["keys", "create", "--role", "trader"], 2),
        (["keys", "create", "--role", "officer", "--org", "Firm"], 2),
    ],
)
def test_key_mistakes_are_one_line_errors(offline: CliRunner, args: list[str], code: int) -> None:
    one_line_error(invoke(offline, *args), code)


def test_settings_refusing_to_start_is_a_one_line_error(offline: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMARTGATE_ENVIRONMENT", "production")
    monkeypatch.setenv("SMARTGATE_SECRET_KEY", "development-secret-change-me")
    one_line_error(invoke(offline, "keys", "create", "--role", "officer"), 2)


def test_migrate_builds_a_fresh_database(offline: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    target = tmp_path / "fresh" / "smartgate.db"
    monkeypatch.setenv("SMARTGATE_DATABASE_URL", f"sqlite:///{target}")
    result = invoke(offline, "migrate")
    assert result.exit_code == 0, result.output
    assert "database at head" in result.stdout
    engine = create_engine(f"sqlite:///{target}")
    assert {"declarations", "api_keys", "outbox_events"} <= set(inspect(engine).get_table_names())
    engine.dispose()
    assert invoke(offline, "migrate").exit_code == 0  # idempotent


def test_migrate_against_an_unreachable_database_is_a_one_line_error(
    offline: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMARTGATE_DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2")
    one_line_error(invoke(offline, "migrate"), 3)


def test_demo_seed_is_for_development_only(offline: CliRunner) -> None:
    one_line_error(invoke(offline, "demo", "seed"), 2)


def test_declarations_expire(runner: CliRunner, api: Api, keys) -> None:
    trader = keys.make("trader", "Firm")
    old, fresh = api.file(trader, submit=True), api.file(trader, submit=True)
    with unit_of_work(api.runtime.sessions) as session:
        session.execute(
            update(Declaration).where(Declaration.id == old["id"]).values(submitted_at=utcnow() - dt.timedelta(days=16))
        )
    result = invoke(runner, "declarations", "expire")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"expired": [old["id"]]}
    assert api.client.get(f"{BASE}/{old['id']}", headers=trader).json()["status"] == "expired"
    assert api.client.get(f"{BASE}/{fresh['id']}", headers=trader).json()["status"] == "submitted"
    assert json.loads(invoke(runner, "declarations", "expire").stdout) == {"expired": []}


def test_help_lists_the_commands(offline: CliRunner) -> None:
    result = invoke(offline, "--help")
    assert result.exit_code == 0
    for command in ("migrate", "serve", "keys", "demo", "declarations"):
        assert command in result.stdout


def test_several_workers_need_postgresql(runner: CliRunner, settings: KernelSettings) -> None:
    if not settings.database_url.startswith("sqlite"):
        pytest.skip("the refusal concerns SQLite")
    result = invoke(runner, "serve", "--workers", "2")
    one_line_error(result, 2)
    assert "PostgreSQL" in result.output


@pytest.mark.slow
def test_serve_with_several_workers_checkpoints_and_anchors_from_one_process(
    settings: KernelSettings,
    keys,
    declaration_body,
    tmp_path,  # type: ignore[no-untyped-def]
) -> None:
    """`serve --workers 2` on PostgreSQL: both processes serve and relay; one (the leader) checkpoints, so every
    anchor goes to one chain and contract (each process has its own in-process development chain)."""
    import os
    import socket
    import subprocess
    import sys
    import time
    import uuid

    import httpx

    from ledger import storage
    from services.kernel.database import make_engine
    from tests.support import wait_for

    if not settings.database_url.startswith("postgresql"):
        pytest.skip("several workers need PostgreSQL")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    trader = keys.make("trader", "Multi Worker Trading")
    env = {
        **os.environ,
        "SMARTGATE_DATABASE_URL": settings.database_url,
        "SMARTGATE_SECRET_KEY": settings.secret_key,
        "SMARTGATE_ENVIRONMENT": "test",
        "SMARTGATE_VAR_DIR": str(tmp_path / "var"),
        "SMARTGATE_LEDGER_CHECKPOINT_SECONDS": "0.3",
        "SMARTGATE_LEDGER_ANCHOR_SECONDS": "0",
        "SMARTGATE_LOG_LEVEL": "INFO",
    }
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "serve", "--workers", "2", "--port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    engine = make_engine(settings.database_url)
    try:
        # Each worker process imports the whole platform: 52 s on 2 cores at load average 14 (CI with other jobs).
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        else:
            pytest.fail("server did not start: " + (tmp_path / "serve.log").read_text()[-2000:])

        def file(count: int) -> None:
            with httpx.Client(base_url=base, timeout=30) as client:
                for _ in range(count):  # new connections: the kernel spreads them over both processes
                    time.sleep(0.5)  # a checkpoint (and an anchor) between filings
                    response = client.post(
                        "/api/v1/declarations?submit=true",
                        json=declaration_body,
                        headers={**trader, "Idempotency-Key": uuid.uuid4().hex, "Connection": "close"},
                    )
                    assert response.status_code == 201, response.text

        def covered(filings: int) -> bool:
            with engine.connect() as conn:
                size = storage.log_size(conn)
                anchored = max((int(r["checkpoint_size"]) for r in storage.anchors_for(conn)), default=0)
            return size >= filings * 3 and anchored == size  # at least created, submitted and assessed of each

        # Two rounds, each waited for: at least two anchors however long the chain takes to connect.
        for batch, total in ((6, 6), (1, 7)):
            file(batch)
            assert wait_for(lambda n=total: covered(n)), (tmp_path / "serve.log").read_text()[-2000:]
        with engine.connect() as conn:
            anchors = storage.anchors_for(conn)
        # One chain: its block numbers grow with the checkpoints. (Each process's development chain is the same
        # deterministic chain, same id and contract address: two anchoring processes show as repeated blocks.)
        blocks = [int(r["block_number"]) for r in anchors]
        assert len(anchors) >= 2
        assert blocks == sorted(set(blocks)), anchors
        lines = [json.loads(line) for line in (tmp_path / "serve.log").read_text().splitlines() if line.startswith("{")]
        started = {line["pid"] for line in lines if line["message"] == "Application startup complete."}
        signed_by = {line["pid"] for line in lines if line["message"] == "checkpoint signed"}
        assert len(started) == 2  # two serving processes (which one takes a connection is the kernel's choice)
        assert len(signed_by) == 1  # one signed every checkpoint
        leading = [line for line in lines if line["message"] == "this process now runs the background work"]
        # Each service's background work is led once (possibly by different processes); the checkpointer by the
        # process that signed.
        assert sorted(line["worker"].split("@")[0] for line in leading) == [
            "declarations",
            "exchange",
            "provenance",
            "webhooks",
        ]
        assert [line["pid"] for line in leading if line["worker"].startswith("provenance@")] == list(signed_by)
    finally:
        server.terminate()
        server.wait(timeout=30)
        engine.dispose()
        log.close()
