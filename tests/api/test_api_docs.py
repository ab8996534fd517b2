"""The API documentation as a developer at the gate uses it: `/docs` and `/redoc` load nothing from outside the
platform (in the embedded app and behind the gateway), "Authorize" applies to exactly the operations that need a
key, the headers the server insists on are required in the document, and every tag is described."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.docs import ASSETS_URL, SECURITY_SCHEME
from services.kernel.settings import SERVICES, KernelSettings
from tests.api.support import BASE, Api, assert_problem

PAGES = ("/docs", "/redoc")
ANY_URL = re.compile(r"(?:https?:)?//[^\s\"'<>)]+", re.IGNORECASE)


class References(HTMLParser):
    """Every URL a page makes the browser fetch: src and href attributes, and url() / @import in inline style."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value for name, value in attrs if name in ("src", "href", "spec-url") and value]


def fetched_by(html: str) -> list[str]:
    parser = References()
    parser.feed(html)
    return parser.urls + re.findall(r"url\(\s*['\"]?([^'\")]+)", html) + re.findall(r"@import\s+['\"]([^'\"]+)", html)


def check_offline_pages(client: Any) -> None:
    """The pages name no other host anywhere (not even in a comment), and every asset they load is served here."""
    for page in PAGES:
        response = client.get(page)
        assert response.status_code == 200, page
        html = response.text
        assert ANY_URL.findall(html) == [], page
        assert "fonts.googleapis" not in html
        assert "cdn." not in html
        csp = response.headers["content-security-policy"]
        assert "default-src 'none'" in csp
        assert "connect-src 'self'" in csp
        urls = fetched_by(html)
        assert any(u.startswith(ASSETS_URL) for u in urls), urls
        for url in urls:
            assert url.startswith("/"), url
            asset = client.get(url)
            assert asset.status_code == 200, url
            if url.endswith(".css"):  # what the stylesheet loads: inline data only
                loads = re.findall(r"url\(\s*['\"]?([^'\")]+)", asset.text) + re.findall(r"@import\s+[^;]+", asset.text)
                assert all(u.startswith("data:") for u in loads), [u for u in loads if not u.startswith("data:")]


# ------------------------------------------------------------------------------------------------- the embedded app


def test_the_docs_pages_reference_no_external_url(client: Any) -> None:
    check_offline_pages(client)
    assert client.get("/docs/oauth2-redirect").status_code == 404  # no OAuth2: nothing to redirect to


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield method, path, operation


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x" * 12, path)


# Called by the partner administration (services/exchange), authenticated by its Ed25519 signatures.
PARTNER_SIGNED = {"POST /api/v1/exchange/inbox", "GET /api/v1/exchange/outbox"}


def test_security_is_declared_on_exactly_the_operations_that_answer_401_without_a_key(client: Any) -> None:
    """Sent with no Authorization and no body, an operation that needs a key answers 401 (authentication comes
    before validation); a public one never does. The document must say the same, operation by operation."""
    document = client.get("/openapi.json").json()
    scheme = document["components"]["securitySchemes"][SECURITY_SCHEME]
    assert scheme["type"] == "http"
    assert scheme["scheme"] == "bearer"
    public, mismatched = [], []
    for method, path, operation in operations(document):
        if f"{method.upper()} {path}" in PARTNER_SIGNED:
            # The partner administration authenticates by its signature, not by an API key: 401 without one.
            assert "security" not in operation, (method, path)
            assert client.request(method.upper(), concrete(path)).status_code in (400, 401), (method, path)
            continue
        answer = client.request(method.upper(), concrete(path))
        declared = operation.get("security") == [{SECURITY_SCHEME: []}]
        if (answer.status_code == 401) != declared:
            mismatched.append(f"{method.upper()} {path}: {answer.status_code}, security {operation.get('security')}")
        if not declared:
            public.append(f"{method.upper()} {path}")
            assert not {"401", "403", "429"} & operation["responses"].keys(), (method, path)
        else:
            assert {"401", "403", "429"} <= operation["responses"].keys(), (method, path)
    assert mismatched == []
    assert sorted(public) == [
        "GET /api/v1/exchange/public-key",
        "GET /api/v1/exchange/schemas",
        "GET /api/v1/exchange/schemas/{file}",
        "GET /api/v1/ledger/checkpoint",
        "GET /api/v1/ledger/log/checkpoint",
        "GET /api/v1/ledger/log/tile/{tile_path}",
        "GET /api/v1/ledger/proofs/consistency",
        "GET /api/v1/ledger/proofs/inclusion",
        "GET /api/v1/ledger/public-key",
        "GET /api/v1/ledger/public-keys",
        "GET /healthz",
        "GET /readyz",
    ]
    assert "security" not in document  # no document-wide default: each operation says for itself


def test_every_tag_is_described_and_every_operation_tagged(client: Any) -> None:
    document = client.get("/openapi.json").json()
    tags = [tag["name"] for tag in document["tags"]]
    assert len(tags) == len(set(tags))
    for tag in document["tags"]:
        assert len(tag.get("description", "")) > 40, tag
    used = set()
    for method, path, operation in operations(document):
        assert operation.get("tags"), (method, path)
        assert len(operation["tags"]) == len(set(operation["tags"])), (method, path)
        used.update(operation["tags"])
    assert used == set(tags)


# What each operation with a required header is sent: everything it needs except that header, by someone allowed.
Sender = Callable[[Api, dict[str, dict[str, str]], str], Any]


def _file_without_key(api: Api, who: dict[str, dict[str, str]], header: str) -> Any:
    return api.client.post(BASE, json=api.body, headers=who["trader"])


def _amend_without_etag(api: Api, who: dict[str, dict[str, str]], header: str) -> Any:
    decl = api.file(who["trader"])
    return api.client.post(f"{BASE}/{decl['id']}/amend", json=api.body, headers=who["trader"])


def _decide_without_etag(api: Api, who: dict[str, dict[str, str]], header: str) -> Any:
    decl = api.file(who["trader"], submit=True)
    assert decl["channel"] in ("yellow", "red")  # a new trader's declaration is reviewed
    return api.client.post(f"{BASE}/{decl['id']}/decisions", json={"outcome": "clear", "reason": "checked"},
                           headers=who["supervisor"])  # fmt: skip


# (method, path, header) -> how to leave it out, and the status and problem type the server answers.
REQUIRED: dict[tuple[str, str, str], tuple[Sender, int, str]] = {
    ("post", BASE, "Idempotency-Key"): (_file_without_key, 400, "idempotency-key-required"),
    ("post", BASE + "/{declaration_id}/amend", "If-Match"): (_amend_without_etag, 428, "precondition-required"),
    ("post", BASE + "/{declaration_id}/decisions", "If-Match"): (_decide_without_etag, 428, "precondition-required"),
}
CONDITIONAL = {"idempotency-key", "if-match", "if-none-match", "if-unmodified-since"}


def test_the_headers_the_server_requires_are_required_in_the_document(
    api: Api, trader: dict[str, str], keys: Any
) -> None:
    """Each operation documented with a required header refuses a request without it (400 or 428: nothing
    changes); no operation documents one of these headers as optional, and every operation that can answer 428
    documents the header it needs."""
    document = api.client.get("/openapi.json").json()
    documented = set()
    for method, path, operation in operations(document):
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "header" and parameter["name"].lower() in CONDITIONAL:
                assert parameter.get("required") is True, (method, path, parameter["name"])
                documented.add((method, path, parameter["name"]))
        if "428" in operation["responses"]:
            assert any(m == method and p == path for m, p, _ in documented), (method, path)
    assert documented == set(REQUIRED)
    who = {"trader": trader, "supervisor": keys.make("supervisor")}
    for (_, _, header), (send, status, slug) in REQUIRED.items():
        problem = assert_problem(send(api, who, header), status)
        assert problem["type"].endswith(slug), problem
        assert header in problem["detail"], problem
    # With the header, the same requests go through (the requirement is the header, not something else).
    filed = api.client.post(BASE, json=api.body, headers={**trader, "Idempotency-Key": uuid.uuid4().hex})
    assert filed.status_code == 201
    amended = api.client.post(f"{BASE}/{filed.json()['id']}/amend", json=api.body,
                              headers={**trader, "If-Match": filed.headers["etag"]})  # fmt: skip
    assert amended.status_code == 200, amended.text


# --------------------------------------------------------------------------------------------------------- the gateway


@pytest.fixture
def gateway(served: str, settings: KernelSettings) -> Iterator[TestClient]:
    """The distributed deployment's gateway in front of the embedded app (every service routed to it)."""
    from api.gateway import create_gateway

    app = create_gateway(settings, dict.fromkeys(SERVICES, served))
    with TestClient(app) as client:
        yield client


def test_the_gateway_serves_the_docs_offline_with_security_and_tags(gateway: TestClient, served: str) -> None:
    import httpx

    check_offline_pages(gateway)
    merged = gateway.get("/openapi.json").json()
    embedded = httpx.get(f"{served}/openapi.json").json()
    assert merged["components"]["securitySchemes"] == embedded["components"]["securitySchemes"]
    api_paths = {p: item for p, item in embedded["paths"].items() if p.startswith("/api/")}
    assert merged["paths"] == api_paths  # security and required headers included, operation by operation
    assert [t["name"] for t in merged["tags"]] == [t["name"] for t in embedded["tags"] if t["name"] != "health"]
    assert all(t["description"] for t in merged["tags"])
    assert merged["webhooks"] == embedded["webhooks"]


def test_the_webhooks_a_receiver_gets_are_in_the_document(client: Any) -> None:
    from services.webhooks.service import EVENT_TYPES, TEST_EVENT

    document = client.get("/openapi.json").json()
    assert set(document["webhooks"]) == {*EVENT_TYPES, TEST_EVENT}
    for name, item in document["webhooks"].items():
        operation = item["post"]
        headers = {p["name"] for p in operation["parameters"] if p["in"] == "header" and p["required"]}
        assert headers == {"webhook-id", "webhook-timestamp", "webhook-signature"}, name
        assert operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("Message")
        assert "security" not in operation  # the receiver checks the signature, not an API key
    data = document["components"]["schemas"]["EventData"]
    assert data["additionalProperties"] is False
    assert all(field.get("description") for field in data["properties"].values() if "$ref" not in field)
