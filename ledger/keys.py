"""Checkpoint signing keys: load the key from a settings value, or create a development key file under var/."""

from __future__ import annotations

import os
from pathlib import Path

from ledger.checkpoint import Signer

DEVELOPMENT = "development"
# Development keys carry this suffix in their name, so the name printed on every checkpoint says what they are.
DEV_KEY_SUFFIX = "-dev"
DEV_KEY_FILE = "ledger-signing-key.dev"


class KeyConfigError(Exception):
    """The signing key configuration is missing, malformed, or not allowed in this environment."""


def is_dev_key(signer: Signer) -> bool:
    """Return whether a signer is a development key."""
    return signer.name.endswith(DEV_KEY_SUFFIX)


def refuse_dev_key(signer: Signer, environment: str) -> None:
    """Raise KeyConfigError when a development key is used outside the development environment."""
    if is_dev_key(signer) and environment != DEVELOPMENT:
        raise KeyConfigError(
            f"ledger signing key {signer.name!r} is a development key; refused in environment {environment!r}"
        )


def load_signer(value: str) -> Signer:
    """Parse a signing key from a settings value (`PRIVATE+KEY+name+keyid+base64`)."""
    try:
        return Signer.from_skey(value)
    except ValueError as exc:
        raise KeyConfigError(f"malformed ledger signing key: {exc}") from exc


def generate_key_string(name: str) -> str:
    """Return a fresh private key string for settings (production keys must not end in '-dev')."""
    return Signer.generate(name).skey()


def dev_signer(directory: Path, name: str = f"smartgate{DEV_KEY_SUFFIX}") -> Signer:
    """Load the development key from `directory`, creating it (mode 0600) on first use."""
    if not name.endswith(DEV_KEY_SUFFIX):
        raise KeyConfigError(f"development key names must end with {DEV_KEY_SUFFIX!r}")
    path = directory / DEV_KEY_FILE
    if path.exists():
        signer = load_signer(path.read_text())
        if not is_dev_key(signer):
            raise KeyConfigError(f"{path} does not hold a development key")
        return signer
    directory.mkdir(parents=True, exist_ok=True)
    signer = Signer.generate(name)
    # O_EXCL: two processes starting at once must not overwrite each other's key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return load_signer(path.read_text())
    with os.fdopen(fd, "w") as fh:
        fh.write(signer.skey() + "\n")
    return signer


def resolve_signer(value: str | None, *, environment: str, dev_key_dir: Path) -> Signer:
    """Return the configured signer, or the development key in development; refuse a dev key elsewhere."""
    if value:
        signer = load_signer(value)
    elif environment == DEVELOPMENT:
        signer = dev_signer(dev_key_dir)
    else:
        raise KeyConfigError(f"no ledger signing key configured (required in environment {environment!r})")
    refuse_dev_key(signer, environment)
    return signer
