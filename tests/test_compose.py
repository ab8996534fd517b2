"""compose.yaml and the Dockerfile agree with the code: every service runs once, the gateway routes to each, every
SMARTGATE_* variable is a real setting, and the image holds every package. (No Docker engine runs the file here;
tests/api/test_distributed.py runs the same processes without containers.)"""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import yaml

from api.gateway import parse_routes
from services.exchange.settings import ExchangeSettings
from services.kernel.settings import SERVICES, KernelSettings
from services.provenance.settings import ProvenanceSettings
from services.webhooks.settings import WebhookSettings

ROOT = Path(__file__).resolve().parent.parent


def _compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return doc


def _option(command: list[str], name: str) -> list[str]:
    return [command[i + 1] for i, word in enumerate(command[:-1]) if word == name]


def test_every_service_runs_in_its_own_container_behind_the_gateway() -> None:
    services = _compose()["services"]
    served = {}
    for name, spec in services.items():
        command = spec.get("command") or []
        if command[:2] == ["smartgate", "serve"]:
            (only,) = _option(command, "--services")
            served[only] = name
            assert _option(command, "--port") == ["8000"]
    assert set(served) == set(SERVICES)
    routes = parse_routes(_option(services["gateway"]["command"], "--route"))
    assert routes == {s: f"http://{served[s]}:8000" for s in SERVICES}
    assert services["migrate"]["command"] == ["smartgate", "migrate", "--grant", "smartgate_app"]
    for name in served.values():
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_every_variable_is_a_setting_and_secrets_are_required() -> None:
    fields = {f"SMARTGATE_{f.upper()}" for cls in (KernelSettings, ProvenanceSettings, WebhookSettings,
                                                                ExchangeSettings)
              for f in cls.model_fields}  # fmt: skip
    text = (ROOT / "compose.yaml").read_text()
    used = set(re.findall(r"\b(SMARTGATE_[A-Z_]+):", text))
    assert used, "no settings found"
    # compose's own variables: the published port and which images to run (scripts/compose-test.sh sets them)
    images = {f"SMARTGATE_{name}IMAGE" for name in ("", "BASE_", "POSTGRES_", "NATS_", "ANVIL_")}
    assert used <= fields | {"SMARTGATE_PORT"} | images, used - fields
    for secret in ("SMARTGATE_SECRET_KEY", "POSTGRES_PASSWORD", "SMARTGATE_LEDGER_SIGNING_KEY",
                   "SMARTGATE_APP_DATABASE_PASSWORD", "SMARTGATE_EXCHANGE_SIGNING_KEY"):  # fmt: skip
        assert re.search(rf"\$\{{{secret}:\?", text), f"{secret} must be required, not defaulted"
    example = (ROOT / "deploy" / "example.env").read_text()
    assert {line.split("=")[0] for line in example.splitlines() if "=" in line and not line.startswith("#")} >= {
        "SMARTGATE_SECRET_KEY", "POSTGRES_PASSWORD", "SMARTGATE_LEDGER_SIGNING_KEY",
        "SMARTGATE_APP_DATABASE_PASSWORD"}  # fmt: skip


def test_services_connect_as_the_app_role_and_only_migrate_holds_the_owner() -> None:
    """Issue 13: a superuser (the postgres image's POSTGRES_USER) could switch the ledger's triggers off."""
    services = _compose()["services"]
    owner = services["postgres"]["environment"]["POSTGRES_USER"]
    for name, spec in services.items():
        env = spec.get("environment") or {}
        if name in ("postgres", "nats", "anvil"):
            continue
        assert env["SMARTGATE_DATABASE_URL"].startswith("postgresql://smartgate_app:"), name
        assert ("SMARTGATE_MIGRATE_DATABASE_URL" in env) == (name == "migrate"), name
    assert services["migrate"]["environment"]["SMARTGATE_MIGRATE_DATABASE_URL"].startswith(f"postgresql://{owner}:")


def test_the_image_holds_every_package_and_runs_unprivileged() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    copied = {shlex.split(line)[1].rstrip("/") for line in dockerfile.splitlines() if line.startswith("COPY ")}
    assert {p.rstrip("*") for p in packages} <= copied
    assert re.search(r"^USER (?!root)", dockerfile, re.M)
    assert "libzbar0" in dockerfile
