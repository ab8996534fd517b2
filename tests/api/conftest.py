"""Fixtures of the API tests: traders, officers, and a helper that files and drives declarations over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from services.kernel.runtime import Runtime
from tests.api.support import ORG_A, ORG_B, Api


@pytest.fixture
def api(client: Any, runtime: Runtime, declaration_body: dict[str, Any]) -> Api:
    return Api(client, runtime, declaration_body)


@pytest.fixture
def trader(keys: Any) -> dict[str, str]:
    """Headers of a trader of organisation A."""
    headers: dict[str, str] = keys.make("trader", ORG_A)
    return headers


@pytest.fixture
def trader_b(keys: Any) -> dict[str, str]:
    """Headers of a trader of organisation B."""
    headers: dict[str, str] = keys.make("trader", ORG_B)
    return headers


@pytest.fixture
def officer(keys: Any) -> dict[str, str]:
    headers: dict[str, str] = keys.make("officer")
    return headers


@pytest.fixture
def lenient(app: Any) -> Iterator[Any]:
    """A client that returns 500s as responses instead of raising the server's exception."""
    from fastapi.testclient import TestClient

    with TestClient(app, raise_server_exceptions=False) as c:
        yield c
