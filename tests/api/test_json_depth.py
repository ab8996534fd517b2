"""Deeply nested input: refused with 400 problem+json before any parser recurses, and the server stays up.

One 200 KB body of 100,000 nested arrays used to kill the whole process (web3's import had raised the recursion
limit to 100,000, and the JSON parser overflowed the C stack). These tests post such bodies to a real server whose
process has loaded web3, to every route that takes a body.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import Any

import httpx
import pytest

from services.kernel.nesting import MAX_DEPTH

DEEP = b"[" * 100_000 + b"]" * 100_000
UNCLOSED = b"{" * 50_000 + b'"a":' + b"[" * 50_000
DUMMY_ID = "00000000-0000-4000-8000-000000000000"


def _body_routes(app: Any) -> list[tuple[str, str]]:
    """(method, path) of every API operation that takes a body (from OpenAPI), path parameters filled in."""
    found = []
    for path, item in app.openapi()["paths"].items():
        for method in ("post", "put", "patch"):
            if method in item:
                found.append((method.upper(), re.sub(r"\{[^}]+\}", DUMMY_ID, path)))
    return found


def _assert_too_deep(response: httpx.Response) -> None:
    assert response.status_code == 400, (response.request.url, response.status_code, response.text[:200])
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["code"] == "json.too_deep"
    assert problem["status"] == 400
    assert str(MAX_DEPTH) in problem["detail"]


def test_web3_does_not_leave_the_recursion_limit_raised(settings: Any) -> None:
    """A fresh process that builds the app loads web3 and eth-tester (to anchor) and keeps its recursion limit."""
    script = (
        "import sys; before = sys.getrecursionlimit()\n"
        "from api.app import create_app\n"
        "from services.kernel.settings import KernelSettings\n"
        "create_app(KernelSettings(environment='test', secret_key='s' * 40, var_dir=sys.argv[1]))\n"
        "assert 'web3' in sys.modules and 'eth' in sys.modules, 'the chain libraries were not loaded'\n"
        "print(before, sys.getrecursionlimit())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(settings.var_dir)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    before, after = done.stdout.split()
    assert after == before


def test_deep_bodies_to_every_route_are_refused_and_the_server_stays_up(
    served: str, app: Any, keys: Any, declaration_body: dict[str, Any]
) -> None:
    routes = _body_routes(app)
    prefixes = {path.split("/")[3] for _, path in routes}
    assert {"declarations", "gate", "webhooks", "risk"} <= prefixes, prefixes  # every router that takes a body
    admin = keys.make("admin")
    trader = keys.make("trader", "Deep Nesting Trading Co")
    with httpx.Client(base_url=served, timeout=30) as client:
        for method, path in routes:
            for headers in ({}, admin):  # without any key too: the check comes before authentication
                sent = {**headers, "Content-Type": "application/json", "Idempotency-Key": "deep-1"}
                _assert_too_deep(client.request(method, path, content=DEEP, headers=sent))
        # No content type (FastAPI then parses JSON anyway), a +json type, an unterminated document.
        for content_type in (None, "application/merge-patch+json", "application/json; charset=utf-8"):
            sent = {"Idempotency-Key": "deep-2"} | ({"Content-Type": content_type} if content_type else {})
            _assert_too_deep(client.post("/api/v1/declarations", content=DEEP, headers=sent))
        _assert_too_deep(client.post("/api/v1/declarations", content=UNCLOSED, headers={"Idempotency-Key": "deep-3"}))
        # Python's parser also reads UTF-16 and UTF-32, whose brackets a UTF-8 measure would not see: refused.
        for encoding in ("utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be", "utf-16"):
            deep = DEEP.decode().encode(encoding)
            refused = client.post("/api/v1/declarations", content=deep, headers={**trader, "Idempotency-Key": "d-4"})
            assert refused.status_code == 400, (encoding, refused.text[:200])
            assert refused.headers["content-type"].startswith("application/problem+json")
            assert refused.json()["code"] == "json.not_utf8"
        shallow = json.dumps(declaration_body).encode("utf-16")
        refused = client.post("/api/v1/declarations", content=shallow, headers={**trader, "Idempotency-Key": "d-5"})
        assert refused.json()["code"] == "json.not_utf8"  # not stored in another encoding either

        # Still up, and still serving real work: a filing at the bound's nesting is judged on its content.
        assert client.get("/healthz").status_code == 200
        filed = client.post(
            "/api/v1/declarations", json=declaration_body, headers={**trader, "Idempotency-Key": "after-deep"}
        )
        assert filed.status_code == 201, filed.text
        nested: Any = "x"
        for _ in range(MAX_DEPTH - 1):
            nested = [nested]
        at_bound = dict(declaration_body, remarks=nested)  # 64 levels: not refused for depth, only for its content
        judged = client.post("/api/v1/declarations", json=at_bound, headers={**trader, "Idempotency-Key": "bound"})
        assert judged.status_code == 422, judged.text
        assert all(e["code"] != "json.too_deep" for e in judged.json().get("errors", []))


def test_brackets_inside_strings_do_not_count(client: Any, keys: Any, declaration_body: dict[str, Any]) -> None:
    trader = keys.make("trader", "Bracket Trading Co")
    body = json.loads(json.dumps(declaration_body))
    body["items"][0]["description"] = "[" * 120 + " fresh lychees " + "{" * 100  # text, not structure
    response = client.post("/api/v1/declarations", json=body, headers={**trader, "Idempotency-Key": "brackets"})
    assert response.status_code in (201, 422), response.text
    assert "json.too_deep" not in response.text


def test_deep_rule_set_yaml_is_refused(client: Any, keys: Any) -> None:
    admin = keys.make("admin")
    for source in (
        "version: '2026.12.9'\nseed: 1\nrules: " + "[" * 5_000 + "]" * 5_000 + "\n",
        "version: '2026.12.9'\nseed: 1\nrules:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, 3_000)),
    ):
        response = client.post("/api/v1/risk/rule-sets", json={"yaml": source[:200_000]}, headers=admin)
        assert response.status_code == 422, response.text[:300]
        assert response.headers["content-type"].startswith("application/problem+json")
        assert "nested deeper" in response.text


@pytest.mark.parametrize("depth", [1, 2, MAX_DEPTH - 1, MAX_DEPTH, MAX_DEPTH + 1, 500])
def test_depth_measure_agrees_with_the_parser(depth: int) -> None:
    from services.kernel.nesting import json_depth_exceeds

    doc: Any = {"k": ']]]}}}\\"[[['}
    for level in range(depth - 1):
        doc = [doc, 1] if level % 2 else {"a": doc, "b": "{"}
    text = json.dumps(doc).encode()
    assert json_depth_exceeds(text) == (depth > MAX_DEPTH)
