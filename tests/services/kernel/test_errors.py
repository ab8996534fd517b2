"""Every error, ours and the framework's, renders as RFC 9457 application/problem+json."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel, ConfigDict

from services.kernel.errors import (
    AppError,
    Conflict,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    PreconditionFailed,
    PreconditionRequired,
    Unauthorized,
    Unprocessable,
    install_error_handlers,
    pointer,
    validation_errors,
)

PROBLEM_KEYS = {"type", "title", "status", "detail"}


class Thing(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    size: int


@pytest.fixture
def client() -> Iterator[TestClient]:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/conflict")
    def conflict() -> None:
        raise Conflict("it clashes", current_status="released", allowed_actions=[])

    @app.get("/unauthorized")
    def unauthorized() -> None:
        raise Unauthorized()

    @app.post("/things")
    def things(thing: Thing, limit: int = 10) -> dict[str, Any]:
        return thing.model_dump()

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret internals: password=hunter2")

    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    """The response is problem+json with the RFC 9457 members and the given status."""
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert PROBLEM_KEYS <= body.keys()
    assert body["status"] == status
    assert isinstance(body["title"], str)
    assert body["title"]
    return body


def test_app_errors_carry_their_extra_members(client: TestClient) -> None:
    body = assert_problem(client.get("/conflict"), 409)
    assert body["type"] == "/problems/conflict"
    assert body["detail"] == "it clashes"
    assert body["instance"] == "/conflict"
    assert body["current_status"] == "released"
    assert body["allowed_actions"] == []


def test_app_error_headers_are_sent(client: TestClient) -> None:
    response = client.get("/unauthorized")
    assert_problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_framework_404(client: TestClient) -> None:
    assert_problem(client.get("/nowhere"), 404)


def test_framework_405(client: TestClient) -> None:
    response = client.delete("/things")
    assert_problem(response, 405)
    assert "POST" in response.headers["allow"]


def test_request_validation_lists_every_problem(client: TestClient) -> None:
    response = client.post("/things?limit=many", json={"size": "big", "colour": "red"})
    body = assert_problem(response, 422)
    assert body["type"].endswith("/validation")
    found = {(e["pointer"], e["code"], e.get("in", "body")) for e in body["errors"]}
    assert found == {
        ("/name", "required", "body"),
        ("/size", "int_parsing", "body"),
        ("/colour", "unknown_field", "body"),
        ("/limit", "int_parsing", "query"),
    }
    assert all(isinstance(e["detail"], str) and e["detail"] for e in body["errors"])


def test_malformed_json_is_a_422_problem(client: TestClient) -> None:
    response = client.post("/things", content=b'{"name": ', headers={"content-type": "application/json"})
    body = assert_problem(response, 422)
    assert body["errors"][0]["code"] == "json.invalid"


def test_unexpected_errors_are_500_with_an_id_and_no_internals(client: TestClient) -> None:
    response = client.get("/boom")
    body = assert_problem(response, 500)
    assert len(body["error_id"]) == 32
    text = response.text
    assert "hunter2" not in text
    assert "Traceback" not in text
    assert "RuntimeError" not in text
    assert client.get("/boom").json()["error_id"] != body["error_id"]


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (NotFound, 404),
        (Unauthorized, 401),
        (Forbidden, 403),
        (Conflict, 409),
        (PreconditionFailed, 412),
        (PreconditionRequired, 428),
        (Unprocessable, 422),
        (PayloadTooLarge, 413),
    ],
)
def test_error_classes_have_their_status(error: type[AppError], status: int) -> None:
    err = error("why")
    assert err.status == status
    assert err.detail == "why"
    assert err.title


def test_an_app_error_without_detail_uses_its_title() -> None:
    assert NotFound().detail == "Not found"


@pytest.mark.parametrize(
    ("loc", "expected"),
    [
        (("body", "items", 0, "hs_code"), "/items/0/hs_code"),
        (("query", "limit"), "/limit"),
        (("body",), ""),
        (("body", "a/b", "c~d"), "/a~1b/c~0d"),
        (("x",), "/x"),
    ],
)
def test_pointer_is_rfc6901(loc: tuple[Any, ...], expected: str) -> None:
    assert pointer(loc) == expected


def test_validation_errors_map_codes_and_mark_the_section() -> None:
    items = validation_errors(
        [
            {"type": "missing", "loc": ("body", "name"), "msg": "Field required"},
            {"type": "extra_forbidden", "loc": ("body", "x"), "msg": "Extra inputs are not permitted"},
            {"type": "hs.format", "loc": ("body", "items", 0, "hs_code"), "msg": "bad"},
            {"type": "int_parsing", "loc": ("header", "x-n"), "msg": "bad"},
        ]
    )
    assert items == [
        {"pointer": "/name", "code": "required", "detail": "Field required"},
        {"pointer": "/x", "code": "unknown_field", "detail": "Extra inputs are not permitted"},
        {"pointer": "/items/0/hs_code", "code": "hs.format", "detail": "bad"},
        {"pointer": "/x-n", "code": "int_parsing", "detail": "bad", "in": "header"},
    ]
