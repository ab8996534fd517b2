"""Liveness, readiness and request ids."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine

from tests.api.support import BASE, Api


def test_healthz(api: Api) -> None:
    response = api.client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_reports_the_database(api: Api, database_url: str) -> None:
    response = api.client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "database": database_url.split(":")[0].split("+")[0]}


def test_readyz_is_503_when_the_database_is_gone(api: Api, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    unreachable = create_engine(f"sqlite:///{tmp_path / 'no-such-dir' / 'gone.db'}")
    monkeypatch.setattr(api.runtime, "engine", unreachable)
    response = api.client.get("/readyz")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert "database unreachable" in response.json()["detail"]
    assert response.headers["x-request-id"]


def test_every_response_has_a_request_id(api: Api, trader: dict[str, str]) -> None:
    responses = [
        api.client.get("/healthz"),
        api.client.get(BASE, headers=trader),
        api.client.get(BASE),
        api.client.get("/nope"),
        api.client.post(BASE, json={}, headers={**trader, "Idempotency-Key": "x"}),
        api.client.get("/openapi.json"),
    ]
    ids = [r.headers.get("x-request-id") for r in responses]
    assert all(ids)
    assert len(set(ids)) == len(ids)
    echoed = api.client.get("/healthz", headers={"X-Request-ID": "gate-cam-7:42"})
    assert echoed.headers["x-request-id"] == "gate-cam-7:42"
