"""Signing keys: settings value, development key file under a directory, refusal outside development."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from ledger.keys import KeyConfigError, dev_signer, generate_key_string, load_signer, refuse_dev_key, resolve_signer


def test_dev_key_is_created_once_with_private_mode(tmp_path: Path) -> None:
    first = dev_signer(tmp_path / "var")
    files = list((tmp_path / "var").iterdir())
    assert len(files) == 1
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    assert dev_signer(tmp_path / "var").verifier == first.verifier
    assert first.name.endswith("-dev")


def test_development_without_setting_uses_the_dev_key(tmp_path: Path) -> None:
    signer = resolve_signer(None, environment="development", dev_key_dir=tmp_path)
    assert signer.name.endswith("-dev")


@pytest.mark.parametrize("environment", ["production", "staging", "test"])
def test_dev_key_is_refused_outside_development(tmp_path: Path, environment: str) -> None:
    dev = dev_signer(tmp_path)
    with pytest.raises(KeyConfigError, match="development key"):
        refuse_dev_key(dev, environment)
    with pytest.raises(KeyConfigError, match="development key"):
        resolve_signer(dev.skey(), environment=environment, dev_key_dir=tmp_path)
    with pytest.raises(KeyConfigError, match="no ledger signing key"):
        resolve_signer(None, environment=environment, dev_key_dir=tmp_path)
    assert not (tmp_path / "other").exists()


def test_configured_key_is_used_in_production(tmp_path: Path) -> None:
    value = generate_key_string("customs.example/ledger")
    signer = resolve_signer(value, environment="production", dev_key_dir=tmp_path)
    assert signer.name == "customs.example/ledger"
    assert list(tmp_path.iterdir()) == []  # no dev key was written


@pytest.mark.parametrize("value", ["", "PRIVATE+KEY+x", "PRIVATE+KEY+n+00000000+AQ==", "hello"])
def test_malformed_key_is_a_config_error(value: str) -> None:
    with pytest.raises(KeyConfigError):
        load_signer(value)
