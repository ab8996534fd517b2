"""Settings: read from SMARTGATE_* variables, and refuse a development secret outside development."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pytest
from pydantic import ValidationError

from services.kernel.settings import DEV_SECRET, KernelSettings, normalise_database_url

GOOD_SECRET = "x" * 40
Environment = Literal["test", "production"]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests set exactly the variables they mean."""
    import os

    for name in list(os.environ):
        if name.startswith("SMARTGATE_"):
            monkeypatch.delenv(name)


def test_development_may_use_the_development_secret() -> None:
    assert KernelSettings().secret_key == DEV_SECRET


@pytest.mark.parametrize("environment", ["test", "production"])
def test_the_development_secret_is_refused_elsewhere(environment: Environment) -> None:
    with pytest.raises(ValidationError, match="SMARTGATE_SECRET_KEY"):
        KernelSettings(environment=environment)


@pytest.mark.parametrize("environment", ["test", "production"])
def test_a_short_secret_is_refused_outside_development(environment: Environment) -> None:
    with pytest.raises(ValidationError, match="at least 32"):
        KernelSettings(environment=environment, secret_key="s" * 31)


def test_a_random_secret_is_accepted_in_production() -> None:
    assert KernelSettings(environment="production", secret_key=GOOD_SECRET).secret_key == GOOD_SECRET


def test_settings_come_from_prefixed_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMARTGATE_ENVIRONMENT", "production")
    monkeypatch.setenv("SMARTGATE_SECRET_KEY", GOOD_SECRET)
    monkeypatch.setenv("SMARTGATE_DATABASE_URL", "postgresql://u@db/sg")
    monkeypatch.setenv("SMARTGATE_MAX_BODY_BYTES", "2048")
    settings = KernelSettings()
    assert settings.environment == "production"
    assert settings.max_body_bytes == 2048
    assert settings.resolved_database_url == "postgresql+psycopg://u@db/sg"


def test_production_from_the_environment_without_a_secret_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMARTGATE_ENVIRONMENT", "production")
    with pytest.raises(ValidationError):
        KernelSettings()


def test_default_database_is_sqlite_under_var_dir(tmp_path: Path) -> None:
    settings = KernelSettings(var_dir=tmp_path)
    assert settings.resolved_database_url == f"sqlite:///{(tmp_path / 'smartgate.db').as_posix()}"


def test_expiry_defaults_to_fifteen_days() -> None:
    assert KernelSettings().declaration_expiry_days == 15


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u:p@h:5432/d", "postgresql+psycopg://u:p@h:5432/d"),
        ("postgres://u@h/d", "postgresql+psycopg://u@h/d"),
        ("postgresql+psycopg://u@h/d", "postgresql+psycopg://u@h/d"),
        ("sqlite:///var/x.db", "sqlite:///var/x.db"),
    ],
)
def test_postgres_urls_use_psycopg3(given: str, expected: str) -> None:
    assert normalise_database_url(given) == expected
