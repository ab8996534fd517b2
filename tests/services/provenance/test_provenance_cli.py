"""`smartgate ledger verify` recomputes the platform's ledger: clean passes, tampering is named by index."""

from __future__ import annotations

from typing import Any

import pytest
from typer.testing import CliRunner

from ledger import storage
from services.kernel.runtime import Runtime
from services.kernel.settings import KernelSettings
from services.provenance.checkpointer import Checkpointer
from services.provenance.cli import app as ledger_app
from tests.api.support import Api
from tests.services.provenance.conftest import settle, tamper


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, settings: KernelSettings) -> None:
    """The CLI reads the same settings as the app under test, from the environment."""
    monkeypatch.setenv("SMARTGATE_ENVIRONMENT", settings.environment)
    monkeypatch.setenv("SMARTGATE_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("SMARTGATE_VAR_DIR", str(settings.var_dir))
    monkeypatch.setenv("SMARTGATE_SECRET_KEY", settings.secret_key)


@pytest.fixture
def logged(api: Api, trader: dict[str, str], runtime: Runtime, checkpointer: Checkpointer) -> int:
    """Two declarations logged and checkpointed; returns the log size."""
    api.file(trader, submit=True)
    api.file(trader)
    settle(runtime, checkpointer)
    with runtime.engine.connect() as conn:
        return storage.log_size(conn)


def test_verify_passes_on_a_clean_ledger(cli_env: None, logged: int) -> None:
    result = CliRunner().invoke(ledger_app, ["verify"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"OK: ledger kimthanh.smartgate/ledger: {logged} entries, 1 checkpoints, 1 anchors")


def test_verify_names_the_first_bad_index_after_tampering(cli_env: None, logged: int, database_url: str) -> None:
    victim = logged // 2
    # The attacker drops the append-only triggers and edits one stored payload.
    tamper(
        database_url,
        ("UPDATE ledger_entries SET payload = :p WHERE idx = :i", {"p": b'{"status":"released"}', "i": victim}),
    )
    result = CliRunner().invoke(ledger_app, ["verify"])
    assert result.exit_code == 1
    assert result.stdout.startswith("FAILED: ledger kimthanh.smartgate/ledger")
    assert f"first bad index {victim}: [payload] payload differs from its leaf" in result.stderr
    assert "expected=" in result.stderr
    assert "found=" in result.stderr


def test_verify_with_another_key_fails_on_the_signatures(cli_env: None, logged: int) -> None:
    from ledger.checkpoint import Signer

    other = Signer.generate("someone-else").verifier.vkey
    result = CliRunner().invoke(ledger_app, ["verify", "--key", other])
    assert result.exit_code == 1
    assert "checkpoint is not signed by the expected key" in result.stderr


def test_verify_on_an_unmigrated_database_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.setenv("SMARTGATE_DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    monkeypatch.setenv("SMARTGATE_VAR_DIR", str(tmp_path))
    result = CliRunner().invoke(ledger_app, ["verify"])
    assert result.exit_code == 3
    assert result.stderr.count("\n") == 1
    assert "smartgate migrate" in result.stderr


def test_the_library_commands_are_mounted_too() -> None:
    result = CliRunner().invoke(ledger_app, ["--help"])
    assert result.exit_code == 0
    for command in ("verify", "verify-bundle", "keygen", "build-contract"):
        assert command in result.stdout
