"""Fixtures of the kernel tests."""

from __future__ import annotations

import pytest

from tests.api.support import release_pg_template


@pytest.fixture(scope="session", autouse=True)
def _free_template(_templates: dict[str, str]) -> None:
    """See release_pg_template."""
    release_pg_template(_templates)
