"""Least privilege (issue 13): on PostgreSQL the services run as a role that may read and append to the ledger and
nothing more, so they cannot switch its triggers off; on SQLite no connection can REPLACE a ledger row."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import exc, text
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from api.cli import app as cli_app
from ledger import storage
from services.kernel.database import make_engine
from services.kernel.runtime import Runtime
from services.kernel.settings import KernelSettings
from services.provenance.checkpointer import Checkpointer
from services.provenance.cli import app as ledger_app
from tests.api.support import Api
from tests.processes import APP_PASSWORD, APP_ROLE, as_service_role
from tests.services.provenance.conftest import settle

LEDGER = "/api/v1/ledger"


@pytest.fixture
def settings(settings: KernelSettings) -> KernelSettings:
    """The suite's settings, but on PostgreSQL the app connects as the services' role, as deployed."""
    if not settings.resolved_database_url.startswith("postgresql"):
        return settings
    return settings.model_copy(update={"database_url": as_service_role(settings.resolved_database_url)})


def test_the_platform_files_logs_checkpoints_and_proves_as_the_service_role(
    client: Any, api: Api, trader: dict[str, str], runtime: Runtime, checkpointer: Checkpointer, tmp_path: Path
) -> None:
    if runtime.engine.dialect.name == "postgresql":
        with runtime.engine.connect() as conn:
            user, superuser = conn.execute(
                text("SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user")
            ).one()
        assert (user, superuser) == (APP_ROLE, False)
    created = api.file(trader, submit=True)
    settle(runtime, checkpointer)  # relay, ledger append, checkpoint, anchor
    key = client.get(f"{LEDGER}/public-key").text.strip()
    response = client.get(f"{LEDGER}/subjects/{created['id']}/bundle", headers=trader)
    assert response.status_code == 200
    assert len(json.loads(response.content)["entries"]) >= 2
    path = tmp_path / "bundle.json"
    path.write_bytes(response.content)
    verified = CliRunner().invoke(ledger_app, ["verify-bundle", str(path), "--key", key])
    assert verified.exit_code == 0, verified.output


def test_the_service_role_cannot_rewrite_the_ledger_nor_switch_its_triggers_off(
    client: Any, api: Api, trader: dict[str, str], runtime: Runtime, checkpointer: Checkpointer
) -> None:
    api.file(trader, submit=True)
    settle(runtime, checkpointer)
    with runtime.engine.connect() as conn:
        size = storage.log_size(conn)
        before = [storage.get_entry(conn, i) for i in range(size)]
    assert size >= 2
    if runtime.engine.dialect.name == "postgresql":
        attempts = {
            "UPDATE ledger_entries SET subject = 'forged' WHERE idx = 0": "permission denied",
            "DELETE FROM ledger_entries WHERE idx >= 1": "permission denied",
            "DELETE FROM ledger_checkpoints": "permission denied",
            "DELETE FROM ledger_anchors": "permission denied",
            "TRUNCATE ledger_nodes": "permission denied",
            "TRUNCATE ledger_entries CASCADE": "permission denied",
            "ALTER TABLE ledger_entries DISABLE TRIGGER ALL": "must be owner",
            "ALTER TABLE ledger_entries DISABLE TRIGGER ledger_entries_append_only": "must be owner",
            "DROP TRIGGER ledger_entries_append_only ON ledger_entries": "must be owner",
            "DROP TABLE ledger_anchors": "must be owner",
            "SET session_replication_role = replica": "permission denied",
            # PostgreSQL 15 gives no one CREATE on schema public; before 15, replacing the owner's function fails.
            "CREATE OR REPLACE FUNCTION ledger_reject_change() RETURNS trigger LANGUAGE sql AS 'SELECT NULL'": (
                "permission denied for schema|must be owner"
            ),
            "UPDATE alembic_version SET version_num = 'x'": "permission denied",
            f"ALTER ROLE {APP_ROLE} SUPERUSER": "must be superuser",
        }
    else:
        # SQLite has no roles (docs/ledger.md); the platform's own engine (no recursive_triggers) must still fail.
        attempts = {
            "INSERT OR REPLACE INTO ledger_entries (idx, event_id, subject, leaf_hash, leaf, payload) "
            "SELECT idx, event_id, 'forged', leaf_hash, leaf, payload FROM ledger_entries WHERE idx = 0": "append-only",
            "REPLACE INTO ledger_checkpoints (size, note, created_at) "
            "SELECT size, X'00', created_at FROM ledger_checkpoints": "append-only",
            "UPDATE ledger_entries SET subject = 'forged'": "append-only",
            "DELETE FROM ledger_anchors": "append-only",
        }
    for sql, refusal in attempts.items():
        with pytest.raises(exc.DBAPIError, match=refusal), runtime.engine.begin() as conn:
            conn.exec_driver_sql(sql)
    with runtime.engine.connect() as conn:
        assert [storage.get_entry(conn, i) for i in range(size)] == before


def test_migrate_grants_the_service_role_and_refuses_a_powerful_one(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()
    monkeypatch.delenv("SMARTGATE_DATABASE_URL", raising=False)
    monkeypatch.setenv("SMARTGATE_MIGRATE_DATABASE_URL", database_url)
    if not database_url.startswith("postgresql"):
        refused = runner.invoke(cli_app, ["migrate", "--grant", APP_ROLE])
        assert refused.exit_code == 2
        assert "needs PostgreSQL" in refused.stderr
        return
    monkeypatch.setenv("SMARTGATE_APP_DATABASE_PASSWORD", APP_PASSWORD)
    done = runner.invoke(cli_app, ["migrate", "--grant", APP_ROLE])
    assert done.exit_code == 0, done.output
    assert f"role {APP_ROLE}" in done.stdout
    assert "5 append-only tables" in done.stdout
    again = runner.invoke(cli_app, ["db", "grant", APP_ROLE])  # idempotent
    assert again.exit_code == 0, again.output
    owner = make_url(database_url).username
    for role, why in ((owner, "SUPERUSER"), ("Bad-Name", "lower-case")):
        refused = runner.invoke(cli_app, ["db", "grant", str(role)])
        assert refused.exit_code == 2, refused.output
        assert why in refused.stderr
    # The granted role reads and appends to the ledger and may not change a row of it.
    engine = make_engine(
        make_url(database_url).set(username=APP_ROLE, password=APP_PASSWORD).render_as_string(hide_password=False)
    )
    try:
        with engine.begin() as conn:
            assert conn.exec_driver_sql("SELECT has_table_privilege('ledger_entries', 'INSERT')").scalar() is True
            for privilege in ("UPDATE", "DELETE", "TRUNCATE", "TRIGGER", "REFERENCES"):
                held = conn.exec_driver_sql(f"SELECT has_table_privilege('ledger_entries', '{privilege}')").scalar()
                assert held is False, privilege
            assert conn.exec_driver_sql("SELECT has_table_privilege('outbox_events', 'UPDATE')").scalar() is True
    finally:
        engine.dispose()
