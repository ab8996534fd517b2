"""The lockfiles that `make` and the container image install with --no-deps: complete and in step with
pyproject.toml, so a fresh machine gets what CI tested and nothing is silently missing."""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
# rapidocr-onnxruntime asks for opencv-python (GUI build); the locks hold opencv-python-headless instead.
LEFT_OUT = {"opencv-python"}
LOCKS = {
    "requirements.lock": ["ledger", "ocr", "sim", "riskml", "distributed", "dev"],
    "requirements-deploy.lock": ["ledger", "ocr", "distributed"],
}


def pins(name: str) -> dict[str, str]:
    """Package -> pinned version of the lines of a lockfile that apply on this platform."""
    env = default_environment()
    found = {}
    for line in (REPO / name).read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        req = Requirement(line)
        if req.marker is None or req.marker.evaluate(env):
            (spec,) = req.specifier
            assert spec.operator == "==", line
            found[canonicalize_name(req.name)] = spec.version
    return found


def wanted(extras: list[str]) -> list[Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    lines = list(project["dependencies"])
    for extra in extras:
        lines += project["optional-dependencies"][extra]
    return [Requirement(line) for line in lines]


@pytest.mark.parametrize("lock", sorted(LOCKS))
def test_every_requirement_of_pyproject_is_pinned_within_its_range(lock: str) -> None:
    pinned = pins(lock)
    for req in wanted(LOCKS[lock]):
        name = canonicalize_name(req.name)
        assert name in pinned, f"{req} is not in {lock}: run `make lock`"
        assert req.specifier.contains(pinned[name], prereleases=True), f"{lock} pins {name}=={pinned[name]}: {req}"
    assert not LEFT_OUT & pinned.keys()


def test_the_lock_is_closed_under_the_dependencies_of_what_it_pins() -> None:
    """Installed with --no-deps, a missing transitive dependency would only show at import time; the installed
    packages' metadata (the venv was installed from this lock) says what each one needs."""
    pinned = pins("requirements.lock")
    env = default_environment() | {"extra": ""}
    missing = set()
    for name in pinned:
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue  # not installed on this platform's venv
        for line in requires:
            req = Requirement(line)
            if req.marker is not None and not req.marker.evaluate(env):
                continue
            dep = canonicalize_name(req.name)
            if dep not in pinned and dep not in LEFT_OUT:
                missing.add(f"{dep} (for {name})")
    assert not missing, f"not in requirements.lock: {sorted(missing)}; run `make lock`"


def test_the_deploy_lock_agrees_with_the_full_one() -> None:
    full, deploy = pins("requirements.lock"), pins("requirements-deploy.lock")
    assert {n: v for n, v in deploy.items() if full.get(n) != v} == {}
