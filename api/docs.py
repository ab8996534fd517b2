"""The API's documentation as a developer uses it where the gate is: Swagger UI (`/docs`) and ReDoc (`/redoc`) with
every asset served by the platform itself (no CDN, no web fonts: the gate's network may not reach the Internet), and
an OpenAPI document whose "Authorize" button works.

The assets are those the `fastapi-offline` package ships (Swagger UI, ReDoc and a favicon, as package data). The
document is completed from the code, not by hand per operation:

- `security` on each operation whose route depends on the caller (`services.kernel.deps.get_principal`), under one
  bearer scheme (`Authorization: Bearer sg_...`); public operations have none, and do not list 401, 403 or 429;
- the headers the server refuses to go without (`REQUIRED_HEADERS`) are `required: true`;
- every tag has a description (`TAGS`);
- error responses refer to the `Problem` and `ValidationProblem` (422, `errors[]`) component schemas.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from importlib.resources import files
from typing import Any

from fastapi import FastAPI, routing
from fastapi.dependencies.models import Dependant
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from starlette.requests import Request
from starlette.responses import HTMLResponse

from services.kernel.auth import KEY_PREFIX
from services.kernel.deps import get_principal
from services.kernel.schemas import problem_components

ASSETS_URL = "/docs/assets"
ASSETS_DIR = str(files("fastapi_offline") / "static")
SECURITY_SCHEME = "apiKey"
# Swagger UI and ReDoc need inline script and style (the pages FastAPI renders, styled-components) and ReDoc a
# worker from a blob; nothing else, and nothing from another origin: the browser itself refuses any request that
# would leave the platform.
DOCS_CSP = (
    "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
DOCS_HEADERS = {"Content-Security-Policy": DOCS_CSP, "X-Content-Type-Options": "nosniff"}

# Headers without which the server refuses an operation (so Swagger's "Try it out" asks for them): method and path
# of the operation -> header names. Missing Idempotency-Key is 400 (`idempotency-key-required`, as the IETF draft
# says), missing If-Match 428; tests/api/test_api_docs.py sends each operation without its header.
REQUIRED_HEADERS: dict[tuple[str, str], tuple[str, ...]] = {
    ("post", "/api/v1/declarations"): ("Idempotency-Key",),
    ("post", "/api/v1/declarations/{declaration_id}/amend"): ("If-Match",),
    ("post", "/api/v1/declarations/{declaration_id}/decisions"): ("If-Match",),
}

# Every tag an operation may carry, in the order the pages list them.
TAGS: list[dict[str, str]] = [
    {
        "name": "declarations",
        "description": "Customs declarations of goods crossing the gate: file (with an `Idempotency-Key`), submit, "
        "amend (with `If-Match`), cancel, follow status and history, attach documents. Traders see their own "
        "organisation's declarations; customs staff see all.",
    },
    {
        "name": "review",
        "description": "The customs officers' side: the queue of yellow- and red-channel declarations, duty rota, "
        "assignment, and decisions (clear, request documents, inspect, reject) made on the version reviewed "
        "(`If-Match`).",
    },
    {
        "name": "payments",
        "description": "Duties and taxes: a trader claims a payment, the treasury (bank / State Treasury side) "
        "confirms or rejects it; a cleared declaration paid in full is released.",
    },
    {
        "name": "risk",
        "description": "Selectivity: the versioned YAML rule sets that assign the green, yellow or red channel, "
        "with a dry run over past declarations before one is activated.",
    },
    {
        "name": "tariff",
        "description": "Tariff lines by HS code (duty and VAT rates, with their sources) and the daily exchange "
        "rates used to convert customs values to VND.",
    },
    {
        "name": "gate",
        "description": "Gate equipment: camera images as trucks pass, the container codes and seals read from "
        "them, their match against declarations, and holds on mismatch.",
    },
    {
        "name": "ledger",
        "description": "Provenance: the append-only Merkle log (RFC 9162) of every event. Signed checkpoints, the "
        "verifier key and inclusion / consistency proofs are public (no key); bundles prove one declaration's "
        "history offline.",
    },
    {
        "name": "webhooks",
        "description": "Push notifications: a trader registers HTTPS endpoints and receives its declarations' "
        "events, signed (Standard Webhooks) and retried, with a delivery log.",
    },
    {
        "name": "traceability",
        "description": "GS1 EPCIS 2.0 repository: capture EPCIS documents and events (producers, packhouses, "
        "inspectors), query them as JSON-LD; every event's CBV 2.0 hash is appended to the ledger.",
    },
    {
        "name": "exchange",
        "description": "The exchange with the partner administration across the border (Hà Khẩu ↔ Kim Thành): "
        "signed messages (JWS over RFC 8785) pushed to its inbox with receipts, their delivery states, the partners "
        "and their keys, the message schemas (docs/exchange.md).",
    },
    {
        "name": "health",
        "description": "Probes for orchestrators and monitoring: liveness and readiness (database reachable). Public.",
    },
]
TAG_NAMES = [tag["name"] for tag in TAGS]

BEARER = {
    "type": "http",
    "scheme": "bearer",
    "bearerFormat": f"{KEY_PREFIX}<key id>_<secret>",
    "description": "An API key, sent as `Authorization: Bearer sg_...` (create one with `smartgate keys create "
    "--role trader --org NAME`; other roles: officer, supervisor, treasury, gate, engineer, admin, "
    "producer, packhouse, inspector). In Swagger UI, "
    "paste the key alone into Authorize.",
}


def install_docs(app: FastAPI, *, openapi_url: str = "/openapi.json", title: str = "smartgate") -> None:
    """Serve `/docs` (Swagger UI) and `/redoc` (ReDoc) for `openapi_url`, with their assets under `ASSETS_URL`.

    The app must be built with `docs_url=None, redoc_url=None` (FastAPI's own pages load from a CDN)."""
    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS_DIR), name="docs-assets")

    def root(request: Request) -> str:
        return str(request.scope.get("root_path", "")).rstrip("/")

    @app.get("/docs", include_in_schema=False)
    def swagger_ui(request: Request) -> HTMLResponse:
        base = root(request)
        page = get_swagger_ui_html(
            openapi_url=base + openapi_url,
            title=f"{title} API",
            swagger_js_url=f"{base}{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{base}{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{base}{ASSETS_URL}/favicon.png",
            # No validator badge (it would send the document to an outside service); no OAuth2 redirect page.
            swagger_ui_parameters={"validatorUrl": None, "displayRequestDuration": True, "filter": True},
        )
        page.headers.update(DOCS_HEADERS)
        return page

    @app.get("/redoc", include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        base = root(request)
        page = get_redoc_html(
            openapi_url=base + openapi_url,
            title=f"{title} API",
            redoc_js_url=f"{base}{ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{base}{ASSETS_URL}/favicon.png",
            with_google_fonts=False,
        )
        page.headers.update(DOCS_HEADERS)
        return page


def _depends_on(dependant: Dependant, call: Callable[..., Any]) -> bool:
    return any(d.call is call or _depends_on(d, call) for d in dependant.dependencies)


def _operations(paths: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in paths.items():
        for method, operation in item.items():
            if isinstance(operation, dict) and "responses" in operation:
                yield path, method, operation


def api_routes(app: FastAPI) -> Iterator[Any]:
    """Every API route of the app as its OpenAPI document sees it (path, methods, dependant), included routers'
    routes too (FastAPI >= 0.16x keeps those in `_IncludedRouter`s, expanded by `iter_route_contexts`)."""
    expand = getattr(routing, "iter_route_contexts", None)
    contexts: Iterable[Any] = expand(app.routes) if expand is not None else app.routes
    for context in contexts:
        if isinstance(getattr(context, "original_route", context), APIRoute) and context.include_in_schema:
            yield context


def authenticated_operations(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path) of every documented operation that requires an API key."""
    return {
        (method.lower(), route.path_format)
        for route in api_routes(app)
        if _depends_on(route.dependant, get_principal)
        for method in route.methods or ()
    }


def complete(schema: dict[str, Any], authenticated: set[tuple[str, str]]) -> dict[str, Any]:
    """Add security, required headers and tag descriptions to an OpenAPI document (in place; returned)."""
    used: set[str] = set()
    for path, method, operation in _operations(schema.get("paths", {})):
        if (method, path) in authenticated:
            operation["security"] = [{SECURITY_SCHEME: []}]
        else:
            operation.pop("security", None)
            # Nothing reads a key here: no 401, no 403 for a role, no per-key rate limit.
            for status in ("401", "403", "429"):
                operation["responses"].pop(status, None)
        required = {name.lower(): name for name in REQUIRED_HEADERS.get((method, path), ())}
        for parameter in operation.get("parameters", []):
            if parameter.get("in") == "header" and parameter["name"].lower() in required:
                parameter["name"] = required.pop(parameter["name"].lower())
                parameter["required"] = True
        for name in required.values():  # read by hand in the endpoint: declared here
            operation.setdefault("parameters", []).append(
                {"name": name, "in": "header", "required": True, "schema": {"type": "string"}}
            )
        if "tags" in operation:
            operation["tags"] = list(dict.fromkeys(operation["tags"]))
            used.update(operation["tags"])
    # The problem shapes every error response refers to (services.kernel.schemas.problems).
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.update(problem_components())
    for name, component in components.items():  # the multipart forms FastAPI names after their operation
        if name.startswith("Body_") and not component.get("description"):
            component["description"] = "The form fields of this operation's multipart/form-data request body."
    if authenticated:
        schema.setdefault("components", {}).setdefault("securitySchemes", {})[SECURITY_SCHEME] = BEARER
    schema["tags"] = [tag for tag in TAGS if tag["name"] in used] + [{"name": t} for t in sorted(used - {
        tag["name"] for tag in TAGS})]  # fmt: skip
    return schema


def document(app: FastAPI) -> None:
    """Complete the app's OpenAPI document (`complete`) once, when it is first built."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = complete(build(), authenticated_operations(app))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
