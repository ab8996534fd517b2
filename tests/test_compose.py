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
    assert services["migrate"]["command"] == ["smartgate", "migrate"]
    for name in served.values():
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_every_variable_is_a_setting_and_secrets_are_required() -> None:
    fields = {f"SMARTGATE_{f.upper()}" for cls in (KernelSettings, ProvenanceSettings, WebhookSettings)
              for f in cls.model_fields}  # fmt: skip
    text = (ROOT / "compose.yaml").read_text()
    used = set(re.findall(r"\b(SMARTGATE_[A-Z_]+):", text))
    assert used, "no settings found"
    # compose's own variables: the published port and which images to run (scripts/compose-test.sh sets them)
    images = {f"SMARTGATE_{name}IMAGE" for name in ("", "BASE_", "POSTGRES_", "NATS_", "ANVIL_")}
    assert used <= fields | {"SMARTGATE_PORT"} | images, used - fields
    for secret in ("SMARTGATE_SECRET_KEY", "POSTGRES_PASSWORD", "SMARTGATE_LEDGER_SIGNING_KEY"):
        assert re.search(rf"\$\{{{secret}:\?", text), f"{secret} must be required, not defaulted"
    example = (ROOT / "deploy" / "example.env").read_text()
    assert {line.split("=")[0] for line in example.splitlines() if "=" in line and not line.startswith("#")} >= {
        "SMARTGATE_SECRET_KEY", "POSTGRES_PASSWORD", "SMARTGATE_LEDGER_SIGNING_KEY"}  # fmt: skip


def test_the_image_holds_every_package_and_runs_unprivileged() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    copied = {shlex.split(line)[1].rstrip("/") for line in dockerfile.splitlines() if line.startswith("COPY ")}
    assert {p.rstrip("*") for p in packages} <= copied
    assert re.search(r"^USER (?!root)", dockerfile, re.M)
    assert "libzbar0" in dockerfile
