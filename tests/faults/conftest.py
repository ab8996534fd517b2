"""Fixtures of the fault suite: subprocesses that are always cleaned up, and a PostgreSQL-only database. The fault
tests start and kill whole servers; they share one xdist group so that two of them never compete for the CPU.

(pytest-xdist 3.8 puts the group into `Item._nodeid`, which pytest 9 no longer reads, so `--dist loadgroup` does
not honour groups at the moment; the fault tests are written to pass beside each other too, and do.)"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.processes import Processes, pg_database


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test of this folder in the `faults` xdist group (`--dist loadgroup` runs them one after another)."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.xdist_group("faults"))


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    """The test's subprocesses (servers, nats-server...): whatever is still running at the end is stopped."""
    procs = Processes(tmp_path / "logs")
    try:
        yield procs
    finally:
        procs.stop_all()


@pytest.fixture
def pg_url(_templates: dict[str, str]) -> Iterator[str]:
    """A fresh PostgreSQL database copied from the migrated template (for deployments that need PostgreSQL)."""
    with pg_database(_templates.get("postgresql", ""), "sg_fault") as url:
        yield url
