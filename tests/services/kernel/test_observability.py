"""Request ids on every response, JSON logs that carry them, and the body size limit."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from services.kernel.errors import install_error_handlers
from services.kernel.observability import (
    BodySizeLimitMiddleware,
    JsonFormatter,
    RequestContextMiddleware,
    request_id_var,
)

LIMIT = 1024


@pytest.fixture
def client() -> Iterator[TestClient]:
    app = FastAPI()
    install_error_handlers(app)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=LIMIT)
    app.add_middleware(RequestContextMiddleware)

    @app.get("/rid")
    def rid() -> dict[str, Any]:
        return {"rid": request_id_var.get()}

    @app.post("/echo")
    async def echo(request: Request) -> dict[str, int]:
        return {"received": len(await request.body())}

    @app.post("/json")
    def json_body(data: dict[str, Any]) -> dict[str, int]:
        return {"keys": len(data)}

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("boom")

    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def test_each_response_gets_a_fresh_request_id(client: TestClient) -> None:
    first, second = client.get("/rid"), client.get("/rid")
    assert first.headers["x-request-id"] == first.json()["rid"]
    assert len(first.headers["x-request-id"]) == 32
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


def test_a_sane_incoming_request_id_is_kept(client: TestClient) -> None:
    response = client.get("/rid", headers={"X-Request-ID": "trace-abc-123"})
    assert response.headers["x-request-id"] == "trace-abc-123"
    assert response.json()["rid"] == "trace-abc-123"


def test_an_oversized_incoming_request_id_is_replaced(client: TestClient) -> None:
    response = client.get("/rid", headers={"X-Request-ID": "x" * 500})
    assert response.headers["x-request-id"] != "x" * 500
    assert len(response.headers["x-request-id"]) == 32


def test_error_responses_carry_the_request_id(client: TestClient) -> None:
    assert client.get("/nowhere").headers["x-request-id"]
    assert client.post("/json", json=[1]).headers["x-request-id"]


def test_unexpected_errors_carry_the_request_id(client: TestClient) -> None:
    response = client.get("/boom")
    assert response.status_code == 500
    assert response.headers.get("x-request-id")


def test_a_body_within_the_limit_passes(client: TestClient) -> None:
    assert client.post("/echo", content=b"x" * LIMIT).json() == {"received": LIMIT}


def test_a_declared_oversized_body_is_refused_before_reading(client: TestClient) -> None:
    response = client.post("/echo", content=b"x" * (LIMIT + 1))
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 413
    assert response.headers["x-request-id"]


def _chunks(total: int) -> Iterator[bytes]:
    for _ in range(total // 256):
        yield b"x" * 256


def test_an_undeclared_oversized_body_is_refused(client: TestClient) -> None:
    """Chunked upload, no Content-Length: counted while read."""
    response = client.post("/echo", content=_chunks(LIMIT * 4))
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"


def test_an_undeclared_oversized_body_to_a_parsed_endpoint_is_refused(client: TestClient) -> None:
    response = client.post("/json", content=_chunks(LIMIT * 4), headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"


def test_a_lying_content_length_is_refused(client: TestClient) -> None:
    response = client.post("/echo", content=b"x" * (LIMIT * 2), headers={"content-length": "10"})
    assert response.status_code in (400, 413)


def test_json_formatter_carries_request_id_and_extras() -> None:
    token = request_id_var.set("rid-1")
    try:
        record = logging.LogRecord("smartgate.test", logging.INFO, __file__, 1, "hello %s", ("world",), None)
        record.event_id = "e-1"
        line = json.loads(JsonFormatter().format(record))
    finally:
        request_id_var.reset(token)
    assert line["message"] == "hello world"
    assert line["request_id"] == "rid-1"
    assert line["event_id"] == "e-1"
    assert line["level"] == "INFO"


def test_json_formatter_includes_the_exception() -> None:
    try:
        raise ValueError("kaput")
    except ValueError:
        import sys

        record = logging.LogRecord("t", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    line = json.loads(JsonFormatter().format(record))
    assert "kaput" in line["exc_info"]
    assert "request_id" not in line
