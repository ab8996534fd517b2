"""Errors over HTTP: problem+json for everything, all validation problems at once, size limits, no 500s on input."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.support import BASE, Api, assert_problem


def resolve(document: Any, pointer: str) -> Any:
    """Follow an RFC 6901 JSON Pointer."""
    for raw in pointer.split("/")[1:]:
        part = raw.replace("~1", "/").replace("~0", "~")
        document = document[int(part)] if isinstance(document, list) else document[part]
    return document


def test_unknown_route_and_method_are_problems(api: Api, trader: dict[str, str]) -> None:
    assert_problem(api.client.get("/api/v1/nothing-here", headers=trader), 404)
    response = api.client.delete(BASE, headers=trader)
    assert_problem(response, 405)
    assert response.headers["allow"]


def test_validation_reports_every_problem_with_pointers(api: Api, trader: dict[str, str]) -> None:
    body = api.variant(kind="export", colour="red")  # A11 is an import procedure; colour is unknown
    body["consignee"] = dict(body["consignee"], tax_id="0100233489")
    body["items"] = [dict(body["items"][0], hs_code="7710909", net_mass_kg="14000")]
    body["containers"] = [{"number": "CSQU3054384", "seals": ["CN1234567"]}]
    body["transport"] = {k: v for k, v in body["transport"].items() if k != "driver_name"}
    response = api.client.post(BASE, json=body, headers={**trader, "Idempotency-Key": "bad"})
    problem = assert_problem(response, 422)
    found = {(e["pointer"], e["code"]) for e in problem["errors"]}
    assert found == {
        ("/procedure_code", "procedure_code.kind_mismatch"),
        ("/consignee/tax_id", "vn_mst.check_digit"),
        ("/items/0/hs_code", "hs.format"),
        ("/items/0/net_mass_kg", "mass.net_exceeds_gross"),
        ("/total_net_mass_kg", "mass.total_mismatch"),
        ("/containers/0/number", "iso6346.check_digit"),
        ("/transport/driver_name", "required"),
        ("/colour", "unknown_field"),
    }
    for error in problem["errors"]:
        assert error["detail"]
        if error["code"] != "required":
            resolve(body, error["pointer"])  # points at what is wrong
    assert str(len(problem["errors"])) in problem["detail"]


@pytest.mark.parametrize(
    ("content", "content_type"),
    [(b'{"kind": ', "application/json"), (b"[]", "application/json"), (b"null", "application/json"),
     (b"kind=import", "application/x-www-form-urlencoded")],
)  # fmt: skip
def test_unparseable_bodies_are_422(api: Api, trader: dict[str, str], content: bytes, content_type: str) -> None:
    response = api.client.post(
        BASE, content=content, headers={**trader, "Idempotency-Key": "k", "content-type": content_type}
    )
    assert_problem(response, 422)


def test_bodies_over_one_mib_are_413(api: Api, trader: dict[str, str]) -> None:
    body = api.variant(padding="x" * (1024 * 1024))
    problem = assert_problem(api.client.post(BASE, json=body, headers={**trader, "Idempotency-Key": "big"}), 413)
    assert "1048576" in problem["detail"]
    assert api.client.get(BASE, headers=trader).json()["items"] == []


def _chunks(total: int) -> Iterator[bytes]:
    chunk = b" " * 65536
    for _ in range(total // len(chunk)):
        yield chunk


def test_chunked_bodies_over_one_mib_are_413(api: Api, trader: dict[str, str]) -> None:
    response = api.client.post(
        BASE,
        content=_chunks(2 * 1024 * 1024),
        headers={**trader, "Idempotency-Key": "big", "content-type": "application/json"},
    )
    assert_problem(response, 413)


def test_unexpected_errors_are_500_problems_with_an_error_id(app, lenient: TestClient, trader: dict[str, str]) -> None:
    def explode() -> None:
        raise RuntimeError("connection string postgres://admin:hunter2@db")

    app.add_api_route("/test-only/explode", explode)
    response = lenient.get("/test-only/explode", headers=trader)
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 500
    assert len(problem["error_id"]) == 32
    assert "hunter2" not in response.text
    assert "Traceback" not in response.text


def test_unexpected_errors_carry_the_request_id(app, lenient: TestClient) -> None:
    def explode() -> None:
        raise RuntimeError("boom")

    app.add_api_route("/test-only/explode", explode)
    assert lenient.get("/test-only/explode").headers.get("x-request-id")


def _cursor(created: str, decl_id: str = "x") -> str:
    return base64.urlsafe_b64encode(json.dumps([created, decl_id]).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({"cursor": _cursor("2026-01-01T00:00:00")}, id="naive-cursor"),
        pytest.param({"cursor": _cursor("2026-01-01T00:00:00+00:00")}, id="foreign-cursor"),
        pytest.param({"cursor": base64.urlsafe_b64encode(b"[1, 2, 3]").decode()}, id="cursor-wrong-shape"),
        pytest.param({"cursor": base64.urlsafe_b64encode(b"\xff\xfe").decode()}, id="cursor-not-utf8"),
        pytest.param({"created_from": "0001-01-01T00:00:00+01:00"}, id="created-from-year-1"),
        pytest.param({"created_to": "9999-12-31T23:59:59+00:00"}, id="created-to-far-future"),
        pytest.param({"gate": "KIM\x00THANH"}, id="nul-in-gate"),
        pytest.param({"container": "\x00"}, id="nul-in-container"),
        pytest.param({"hs_prefix": "٣"}, id="non-ascii-digit"),
    ],
)
def test_odd_list_queries_are_answered_not_crashed(
    lenient: TestClient, trader: dict[str, str], params: Any, request: pytest.FixtureRequest, database_url: str
) -> None:
    response = lenient.get(BASE, params=params, headers=trader)
    assert response.status_code in (200, 422), response.text
    assert response.headers["x-request-id"]


@pytest.mark.parametrize("decl_id", ["x" * 300, "%00", "..", "a b", "%F0%9F%98%80"])
def test_odd_declaration_ids_are_404(
    lenient: TestClient, trader: dict[str, str], decl_id: str, request: pytest.FixtureRequest, database_url: str
) -> None:
    for suffix in ("", "/history"):
        response = lenient.get(f"{BASE}/{decl_id}{suffix}", headers=trader)
        assert response.status_code == 404, (decl_id, suffix, response.text)


def test_a_nan_mass_is_a_422(api: Api, lenient: TestClient, trader: dict[str, str]) -> None:
    body = api.variant(total_net_mass_kg="NaN")
    response = lenient.post(BASE, json=body, headers={**trader, "Idempotency-Key": "nan"})
    assert response.status_code == 422


def test_lone_surrogates_in_text_are_not_a_crash(lenient: TestClient, api: Api, trader: dict[str, str]) -> None:
    raw = json.dumps(api.body).replace("Nguyen Van An", "Nguyen \\ud800 An").encode()
    response = lenient.post(
        BASE, content=raw, headers={**trader, "Idempotency-Key": "s", "content-type": "application/json"}
    )
    assert response.status_code in (201, 422), response.text


def test_malformed_json_says_line_and_column(api: Api, trader: dict[str, str]) -> None:
    content = b'{\n  "kind": "import",\n  "procedure_code": ]\n}'
    response = api.client.post(
        BASE, content=content, headers={**trader, "Idempotency-Key": "j", "content-type": "application/json"}
    )
    (error,) = assert_problem(response, 422)["errors"]
    assert (error["pointer"], error["code"], error["line"], error["column"]) == ("", "json.invalid", 3, 21)
    assert error["detail"] == "invalid JSON at line 3, column 21: Expecting value"


def test_dates_and_codes_say_what_to_write_instead(api: Api, trader: dict[str, str]) -> None:
    body = api.variant()
    body["transport"] = dict(body["transport"], expected_arrival="28/11/2026 08:30")
    body["consignor"] = dict(body["consignor"], country="China")
    body["items"] = [dict(body["items"][0], origin="Trung Quốc " * 5, currency="dollars")]
    response = api.client.post(BASE, json=body, headers={**trader, "Idempotency-Key": "hints"})
    errors = {e["pointer"]: e for e in assert_problem(response, 422)["errors"]}
    assert "ISO 8601 with offset, e.g. 2026-11-28T08:30:00+07:00" in errors["/transport/expected_arrival"]["detail"]
    assert errors["/consignor/country"]["code"] == "iso3166.code"
    assert errors["/consignor/country"]["detail"] == "'China' is not a known ISO 3166-1 alpha-2 country code, e.g. CN"
    assert errors["/items/0/origin"]["detail"].endswith("…' is not a known ISO 3166-1 alpha-2 country code, e.g. CN")
    assert len(errors["/items/0/origin"]["detail"]) < 120  # a long value is not echoed whole
    assert errors["/items/0/currency"]["detail"].endswith("ISO 4217 currency code, e.g. USD")
