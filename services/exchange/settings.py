"""Settings of the exchange service (`SMARTGATE_EXCHANGE_*`), our signing key, and which administration we are."""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

from pydantic import Field, SecretStr, field_validator

from services.kernel.settings import KernelSettings

DEFAULT_ADMINISTRATION = "vn-kimthanh"
DEV_KEY_FILE = "exchange-signing-key.dev"


class ExchangeSettings(KernelSettings):
    """Kernel settings plus the exchange's key, delivery cadence and trust windows."""

    # Which administration this deployment is (`vn-kimthanh`, `cn-hekou`): the `sender` of what we sign.
    administration: str = DEFAULT_ADMINISTRATION
    # `KID:BASE64URL(32-byte Ed25519 seed)` (`smartgate exchange keygen`); empty: a development key under var_dir
    # (refused in production).
    exchange_signing_key: SecretStr = SecretStr("")
    # Back-off of failed pushes: base * 2^(attempt-1), capped, with full jitter; retried until delivered.
    exchange_retry_base_seconds: float = Field(default=2.0, gt=0)
    exchange_retry_cap_seconds: float = Field(default=300.0, gt=0)
    exchange_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    exchange_poll_seconds: float = Field(default=1.0, gt=0)
    # Pushes in flight at once to one partner (each a different consignment: one consignment is always in order).
    exchange_concurrency: int = Field(default=4, ge=1, le=32)
    # A received message created further in the future than this is refused (the partner's clock is off).
    exchange_clock_skew_seconds: float = Field(default=300.0, ge=0)
    # A received message older than this is refused as a replay (message ids are remembered at least this long).
    exchange_replay_window_seconds: float = Field(default=7 * 24 * 3600.0, gt=0)
    # Messages each partner may push per minute (a token bucket of `exchange_rate_limit_burst`); 0: no limit.
    exchange_rate_limit_per_minute: float = Field(default=600.0, ge=0)
    exchange_rate_limit_burst: int = Field(default=60, ge=1)
    # Whether partners' inboxes may be plain http:// (unset: only in development and test).
    exchange_allow_http: bool | None = None

    @field_validator("administration")
    @classmethod
    def _code(cls, value: str) -> str:
        """An administration code is a short lower-case slug."""
        if not value or len(value) > 32 or not all(c.isalnum() or c == "-" for c in value) or value != value.lower():
            raise ValueError("SMARTGATE_ADMINISTRATION must be a lower-case code such as vn-kimthanh")
        return value

    @property
    def http_allowed(self) -> bool:
        """The effective rule for http:// partner inboxes."""
        if self.exchange_allow_http is None:
            return self.environment in ("development", "test")
        return self.exchange_allow_http


def exchange_settings(base: KernelSettings) -> ExchangeSettings:
    """Exchange settings: the kernel fields of `base` (the process's), the exchange fields from the environment."""
    if isinstance(base, ExchangeSettings):
        return base
    return ExchangeSettings(**base.model_dump())


def own_code(settings: KernelSettings | None = None) -> str:
    """Our administration's code: the one place that reads it (the administration profile replaces it at merge)."""
    value = getattr(settings, "administration", None) if settings is not None else None
    return str(value or os.environ.get("SMARTGATE_ADMINISTRATION") or DEFAULT_ADMINISTRATION)


class KeyConfigError(Exception):
    """The exchange signing key is missing, malformed, or a development key where one is refused."""


def new_key_string(code: str) -> str:
    """A fresh `KID:SEED` for SMARTGATE_EXCHANGE_SIGNING_KEY."""
    seed = os.urandom(32)
    return f"{kid_for(code, seed)}:{base64.urlsafe_b64encode(seed).rstrip(b'=').decode()}"


def kid_for(code: str, seed: bytes) -> str:
    """A key id that names the administration and the key."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    public = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return f"{code}-{hashlib.sha256(public).hexdigest()[:12]}"


def parse_key_string(value: str) -> tuple[str, bytes]:
    """(kid, seed) of a `KID:SEED` string."""
    kid, sep, encoded = value.strip().rpartition(":")
    try:
        seed = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    except ValueError as exc:
        raise KeyConfigError(f"malformed exchange signing key: {exc}") from exc
    if not sep or not kid or len(seed) != 32:
        raise KeyConfigError("malformed exchange signing key: expected KID:BASE64URL(32-byte seed)")
    return kid, seed


def signing_key(settings: ExchangeSettings) -> tuple[str, bytes]:
    """Our (kid, Ed25519 seed): configured, or a development key under var_dir (development and test only)."""
    configured = settings.exchange_signing_key.get_secret_value()
    if configured:
        return parse_key_string(configured)
    if settings.environment == "production":
        raise KeyConfigError("SMARTGATE_EXCHANGE_SIGNING_KEY is required in production (smartgate exchange keygen)")
    path = Path(settings.var_dir) / DEV_KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as fh:
                fh.write(new_key_string(f"{own_code(settings)}-dev") + "\n")
    return parse_key_string(path.read_text())
