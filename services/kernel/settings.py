"""Settings shared by every deployable: read from the environment with the `SMARTGATE_` prefix."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_SECRET = "development-secret-change-me"
# The deployable services, in the order a process installs them.
SERVICES = ("declarations", "provenance", "inspection", "webhooks", "traceability", "exchange")


class KernelSettings(BaseSettings):
    """Base settings; each service subclasses it with its own fields."""

    model_config = SettingsConfigDict(env_prefix="SMARTGATE_", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    var_dir: Path = Path("var")
    database_url: str = ""
    # The schema owner's URL, for `smartgate migrate` only (empty: database_url). On PostgreSQL the services connect
    # with database_url as a role that may not alter tables (`smartgate migrate --grant ROLE`; docs/deployment.md).
    migrate_database_url: str = ""
    # The password `smartgate migrate --grant ROLE` gives the services' role (empty: leave it as it is).
    app_database_password: SecretStr = SecretStr("")
    secret_key: str = DEV_SECRET
    log_level: str = "INFO"
    log_json: bool = True
    max_body_bytes: int = 1024 * 1024
    max_upload_bytes: int = 20 * 1024 * 1024
    relay_interval_seconds: float = 0.2
    # After a commit wakes the relay, how long it lets more events gather before delivering them as one batch.
    relay_batch_delay_seconds: float = 0.05
    # How long a process trusts an API key it has looked up; a key revoked elsewhere stops working within it.
    auth_cache_seconds: float = 5.0
    # Requests per minute per API key (a token bucket holding `rate_limit_burst`); 0 turns the limit off. Divided
    # among the server processes of `serve --workers N`.
    rate_limit_per_minute: float = Field(default=3000, ge=0)
    rate_limit_burst: int = Field(default=300, ge=1)
    expiry_check_seconds: float = 300.0
    # Console sessions end after this long without a page, and this long after sign-in whatever happens.
    console_session_idle_seconds: float = Field(default=8 * 3600, gt=0)
    console_session_max_seconds: float = Field(default=12 * 3600, gt=0)
    # How many server processes share the database (`smartgate serve --workers N` sets it for its processes):
    # above 1, one of them, elected by a PostgreSQL advisory lock, runs the checkpointer and the expiry passes.
    workers: int = Field(default=1, ge=1)
    declaration_expiry_days: int = 15
    # Which side of the border this deployment is (services/kernel/administration.py): vn-kimthanh or cn-hekou.
    administration: str = "vn-kimthanh"
    # The gate's code; unset, the administration's (KIMTHANH on the Vietnamese side, HEKOU on the Chinese one).
    gate_code: str = Field(default="KIMTHANH", pattern=r"^[A-Z]{3,12}$")
    # Empty: the in-process bus of the embedded default. nats://host:4222: NATS JetStream (distributed deployment).
    bus_url: str = ""
    # Which services this process runs: all of them in the embedded default; one (or a few) per process in the
    # distributed deployment, behind `smartgate gateway`.
    services: str = "declarations,provenance,inspection,webhooks,traceability,exchange"
    # Whether this process serves the officers' console (the gateway serves it in the distributed deployment).
    console: bool = True
    # How long anything waits for the database (services/kernel/dbtimeouts.py). A request waits at most
    # `db_timeout_seconds` at each step (one answer from PostgreSQL, SQLite's write lock), `db_pool_timeout_seconds`
    # for a pooled connection and `db_connect_timeout_seconds` to connect, then answers 503 with Retry-After;
    # background work waits up to `db_background_timeout_seconds` and retries. The server enforces the statement
    # and lock timeouts (PostgreSQL; 0 sends none, e.g. behind a pooler that refuses startup options).
    db_timeout_seconds: float = Field(default=3.0, gt=0)
    db_pool_timeout_seconds: float = Field(default=2.0, gt=0)
    db_connect_timeout_seconds: int = Field(default=2, ge=2)
    db_background_timeout_seconds: float = Field(default=30.0, gt=0)
    db_statement_timeout_seconds: float = Field(default=10.0, ge=0)
    db_lock_timeout_seconds: float = Field(default=2.0, ge=0)
    bus_stream: str = "SMARTGATE"
    # Subjects are `<prefix>.<event type>`; two deployments on one NATS server need their own stream and prefix.
    bus_prefix: str = Field(default="smartgate", pattern=r"^[A-Za-z0-9_-]{1,64}$")

    @field_validator("services")
    @classmethod
    def _known_services(cls, value: str) -> str:
        """Only services that exist: a typo must not start a process that silently serves nothing."""
        unknown = sorted({s.strip() for s in value.split(",") if s.strip()} - set(SERVICES))
        if unknown:
            raise ValueError(f"unknown service(s) {', '.join(unknown)}; known: {', '.join(SERVICES)}")
        return value

    @field_validator("administration")
    @classmethod
    def _known_administration(cls, value: str) -> str:
        """Only a profile that exists: a typo must not start the wrong side of the border."""
        from services.kernel.administration import profile

        profile(value)
        return value

    @model_validator(mode="after")
    def _administration_defaults(self) -> KernelSettings:
        """What the profile sets, unless the environment says otherwise."""
        from services.kernel.administration import profile

        if "gate_code" not in self.model_fields_set:
            self.gate_code = profile(self.administration).gate_code
        return self

    @property
    def service_names(self) -> set[str]:
        """The services named in `services`."""
        return {s.strip() for s in self.services.split(",") if s.strip()}

    @model_validator(mode="after")
    def _refuse_development_secrets(self) -> KernelSettings:
        """Outside development a placeholder secret is a deployment mistake, not a default."""
        if self.environment != "development" and (self.secret_key == DEV_SECRET or len(self.secret_key) < 32):
            raise ValueError(
                "SMARTGATE_SECRET_KEY must be set to a random value of at least 32 characters "
                f"when SMARTGATE_ENVIRONMENT={self.environment}"
            )
        return self

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to the embedded SQLite file under var_dir."""
        if self.database_url:
            return normalise_database_url(self.database_url)
        return f"sqlite:///{(self.var_dir / 'smartgate.db').as_posix()}"

    @property
    def resolved_migrate_database_url(self) -> str:
        """The URL migrations run with: the owner's when given, else the services' own."""
        if self.migrate_database_url:
            return normalise_database_url(self.migrate_database_url)
        return self.resolved_database_url


def normalise_database_url(url: str) -> str:
    """Use psycopg 3 for plain `postgresql://` URLs (SQLAlchemy would otherwise pick psycopg2)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


@lru_cache
def get_settings() -> KernelSettings:
    """The process-wide settings, read once."""
    return KernelSettings()
