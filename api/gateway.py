"""The gateway of the distributed deployment: one address for every client, each request passed to the service
that serves its path, the officers' console, one OpenAPI document for all.

Each service process (`smartgate serve --services NAME --no-console`) authenticates, limits and validates its own
requests, so the gateway adds no second opinion: it routes, streams bodies both ways (uploads of up to 20 MiB are
not held in memory), carries the request id across, and turns an unreachable service into 503 problem+json.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx
from fastapi import FastAPI, Request
from starlette.background import BackgroundTask
from starlette.requests import ClientDisconnect
from starlette.responses import Response, StreamingResponse

from api.console.routes import router as console_router
from api.diary.routes import router as diary_router
from api.docs import TAG_NAMES, install_docs
from api.limits import UPLOAD_PATHS
from api.problems import router as problems_router
from services.kernel.errors import install_error_handlers, problem
from services.kernel.observability import BodySizeLimitMiddleware, RequestContextMiddleware, request_id_var
from services.kernel.responses import JSONResponse
from services.kernel.settings import SERVICES, KernelSettings

logger = logging.getLogger("smartgate.gateway")

# Which service serves which paths (a test checks this against every path the services declare).
PREFIXES: dict[str, tuple[str, ...]] = {
    "declarations": ("/api/v1/declarations", "/api/v1/review", "/api/v1/risk", "/api/v1/tariff",
                     "/api/v1/exchange-rates", "/api/v1/payments"),
    "provenance": ("/api/v1/ledger",),
    "inspection": ("/api/v1/gate",),
    "webhooks": ("/api/v1/webhooks",),
    "traceability": ("/api/v1/epcis",),
    "exchange": ("/api/v1/exchange",),
}  # fmt: skip
# Headers that belong to one connection, not to the request (RFC 9110 §7.6.1), and those the gateway sets itself.
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
                        "transfer-encoding", "upgrade", "host", "content-length", "x-request-id", "forwarded",
                        "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host"})  # fmt: skip
# Of an upstream's answer: what belongs to its connection, and what this server adds itself.
RESPONSE_DROP = frozenset({"connection", "keep-alive", "proxy-authenticate", "trailer", "transfer-encoding",
                           "upgrade", "x-request-id", "date", "server"})  # fmt: skip
# A path the gateway passes on must mean the same to the service: no dot-segments, no encoded slash or backslash.
_AMBIGUOUS = ("%2f", "%5c", "\\")
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def parse_routes(items: list[str]) -> dict[str, str]:
    """`NAME=URL` items into {service: base URL}; every service named exactly once and known."""
    routes: dict[str, str] = {}
    for item in items:
        name, sep, url = item.partition("=")
        name, url = name.strip(), url.strip().rstrip("/")
        if not sep or not url.startswith(("http://", "https://")):
            raise ValueError(f"route '{item}': expected NAME=http://host:port")
        if name not in SERVICES:
            raise ValueError(f"route '{item}': unknown service '{name}'; known: {', '.join(SERVICES)}")
        if name in routes:
            raise ValueError(f"route '{item}': service '{name}' given twice")
        routes[name] = url
    if not routes:
        raise ValueError("no routes: give at least one NAME=URL")
    return routes


@dataclass
class GatewayState:
    """What the console reads from `app.state.runtime` (the gateway has no database of its own)."""

    settings: KernelSettings


def service_for(path: str, routes: dict[str, str]) -> str | None:
    """The service that serves `path`, if it is routed here."""
    for name, prefixes in PREFIXES.items():
        if name in routes and any(path == p or path.startswith(p + "/") for p in prefixes):
            return name
    return None


async def _body(resp: httpcore.Response) -> AsyncIterator[bytes]:
    async for chunk in resp.aiter_stream():
        yield chunk


def create_gateway(settings: KernelSettings, routes: dict[str, str], *, timeout: float = 60.0) -> FastAPI:  # noqa: C901 - the gateway's routes are closures over one client and settings
    """The gateway app in front of `routes` ({service: base URL})."""
    # httpx for the few calls of the gateway's own (readiness, OpenAPI); httpcore, one layer down, for every
    # forwarded request (httpx's request and response models cost more CPU than the forwarding itself).
    client = httpx.AsyncClient(timeout=httpx.Timeout(timeout, connect=5.0), follow_redirects=False)
    pool = httpcore.AsyncConnectionPool(max_connections=200, keepalive_expiry=30.0)
    upstreams = {name: httpx.URL(url) for name, url in routes.items()}
    TIMEOUTS = {"connect": 5.0, "read": timeout, "write": timeout, "pool": timeout}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await client.aclose()
            await pool.aclose()

    app = FastAPI(title="smartgate", version="0.1.0", lifespan=lifespan, openapi_url=None, docs_url=None,
                  redoc_url=None)  # fmt: skip
    app.state.runtime = GatewayState(settings)
    app.state.routes = routes
    install_error_handlers(app)
    # The same body limits as the services (so the console's forms are bounded here too).
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes, uploads=UPLOAD_PATHS,
                       upload_max_bytes=settings.max_upload_bytes)  # fmt: skip
    app.add_middleware(RequestContextMiddleware)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        async def one(name: str, url: str) -> tuple[str, str]:
            try:
                resp = await client.get(f"{url}/readyz", timeout=3.0)
                return name, "ready" if resp.status_code == 200 else f"HTTP {resp.status_code}"
            except httpx.HTTPError as exc:
                return name, type(exc).__name__

        states = dict(await asyncio.gather(*(one(n, u) for n, u in routes.items())))
        down = {n: s for n, s in states.items() if s != "ready"}
        if down:
            return problem(503, "Not ready", "not every service is ready: "
                           + ", ".join(f"{n} ({s})" for n, s in sorted(down.items())), services=states)  # fmt: skip
        return JSONResponse({"status": "ready", "services": states})

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi() -> JSONResponse:
        """Every service's OpenAPI document, merged (paths and component schemas)."""
        merged: dict[str, Any] = {"openapi": "3.1.0", "info": {"title": "smartgate", "version": "0.1.0"},
                                  "paths": {}, "components": {"schemas": {}}}  # fmt: skip
        missing = []
        tags: dict[str, dict[str, Any]] = {}
        for name, url in routes.items():
            try:
                resp = await client.get(f"{url}/openapi.json", timeout=10.0)
                resp.raise_for_status()
                doc = resp.json()
            except (httpx.HTTPError, ValueError):
                missing.append(name)
                continue
            merged["info"] = doc.get("info", merged["info"])
            tags.update((tag["name"], tag) for tag in doc.get("tags", []))
            for path, item in doc.get("paths", {}).items():
                if service_for(path, {name: url}) == name:
                    merged["paths"][path] = item
            merged.setdefault("webhooks", {}).update(doc.get("webhooks", {}))
            merged["components"]["schemas"].update(doc.get("components", {}).get("schemas", {}))
            for key, value in doc.get("components", {}).items():
                if key != "schemas":
                    merged["components"].setdefault(key, {}).update(value)
        used = {tag for item in merged["paths"].values() for op in item.values() for tag in op.get("tags", [])}
        order = {name: i for i, name in enumerate(TAG_NAMES)}
        merged["tags"] = sorted((tags.get(name, {"name": name}) for name in used),
                                key=lambda tag: (order.get(tag["name"], len(order)), tag["name"]))  # fmt: skip
        if missing:
            merged["info"] = {**merged["info"], "x-missing-services": missing}
        return JSONResponse(merged)

    install_docs(app)  # Swagger UI and ReDoc of the merged document, their assets served here
    app.include_router(console_router)
    app.include_router(problems_router)  # the pages of the problem `type` URIs
    app.include_router(diary_router)

    @app.api_route("/api/{rest:path}", methods=METHODS, include_in_schema=False)
    async def forward(request: Request, rest: str) -> Response:
        raw_path: bytes = request.scope.get("raw_path") or request.url.path.encode()
        path = request.url.path
        lowered = raw_path.decode("latin-1").lower()
        if any(seg in (".", "..") for seg in path.split("/")) or any(a in lowered for a in _AMBIGUOUS):
            return problem(400, "Bad request", "the path has dot-segments or an encoded slash")
        name = service_for(path, routes)
        if name is None:
            return problem(404, "Not found", f"no service serves {path[:200]}")
        connection_named = {t.strip().lower() for t in request.headers.get("connection", "").split(",")}
        headers = [(k, v) for k, v in request.headers.raw
                   if k.decode("latin-1").lower() not in HOP_BY_HOP | connection_named]  # fmt: skip
        client_host = request.client.host if request.client else ""
        headers += [(b"x-request-id", (request_id_var.get() or "").encode("latin-1")),
                    (b"x-forwarded-for", client_host.encode("latin-1")),
                    (b"x-forwarded-proto", request.url.scheme.encode("latin-1")),
                    (b"x-forwarded-host", request.headers.get("host", "").encode("latin-1"))]  # fmt: skip
        query = request.scope.get("query_string") or b""
        has_body = request.method not in ("GET", "HEAD", "OPTIONS")
        if has_body and b"content-length" not in {k.lower() for k, _ in request.headers.raw}:
            headers.append((b"transfer-encoding", b"chunked"))  # the body streams through with no length known
        elif has_body:
            headers.append((b"content-length", request.headers["content-length"].encode("latin-1")))
        base = upstreams[name]
        headers.append((b"host", base.netloc))
        target = httpcore.URL(scheme=base.raw_scheme, host=base.raw_host, port=base.port,
                              target=raw_path + (b"?" + query if query else b""))  # fmt: skip
        upstream = httpcore.Request(request.method.encode("ascii"), target, headers=headers,
                                    content=request.stream() if has_body else None,
                                    extensions={"timeout": TIMEOUTS})  # fmt: skip
        try:
            resp = await pool.handle_async_request(upstream)
        except httpcore.TimeoutException:
            return problem(504, "Gateway timeout", f"the {name} service did not answer in time")
        except (httpcore.NetworkError, httpcore.ProtocolError, OSError) as exc:
            logger.warning("upstream unreachable", extra={"service": name, "error": type(exc).__name__})
            return problem(503, "Service unavailable", f"the {name} service is unreachable; try again shortly",
                           headers={"Retry-After": "5"})  # fmt: skip
        except ClientDisconnect:
            return Response(status_code=400)  # the client went away mid-upload; nobody reads this
        try:
            out = [(k, v) for k, v in resp.headers if k.decode("latin-1").lower() not in RESPONSE_DROP]
            response = StreamingResponse(_body(resp), status_code=resp.status, background=BackgroundTask(resp.aclose))
            response.raw_headers = out
        except BaseException:
            await resp.aclose()
            raise
        return response

    return app
