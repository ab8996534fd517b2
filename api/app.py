"""The embedded platform: every service and the gateway concerns in one FastAPI process."""

from __future__ import annotations

import gc
import logging
import os
import zlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.to_thread
from fastapi import FastAPI
from sqlalchemy import text

from api.console.routes import router as console_router
from api.diary.routes import router as diary_router
from api.docs import document, install_docs
from api.limits import UPLOAD_PATHS
from api.problems import router as problems_router
from services.kernel.database import reader
from services.kernel.dbfaults import summary
from services.kernel.dbtimeouts import DatabaseWaitMiddleware, waiting_at_most
from services.kernel.errors import DATABASE_RETRY_AFTER_SECONDS, install_error_handlers, problem
from services.kernel.leader import LEADER_LOCK_KEY, Leadership, Work
from services.kernel.nesting import JsonDepthMiddleware
from services.kernel.observability import BodySizeLimitMiddleware, RequestContextMiddleware, configure_logging
from services.kernel.responses import JSONResponse
from services.kernel.runtime import Runtime
from services.kernel.schemas import problems
from services.kernel.settings import SERVICES, KernelSettings, get_settings

logger = logging.getLogger("smartgate.app")

# /readyz answers within this, whatever the database does (a probe that hangs is as bad as no probe).
READY_SECONDS = 1.5

DESCRIPTION = """
smartgate is the digital platform of the Kim Thành (Lào Cai, VN) ↔ Bắc Sơn (Hà Khẩu, CN) road border gate.

Authenticate with `Authorization: Bearer <api key>` (`smartgate keys create --role trader --org NAME`): in this
page, paste the key into **Authorize**. Operations marked with a lock need a key; the health probes and the ledger's
checkpoints, verifier key and proofs are public. Filing a declaration requires an `Idempotency-Key` (a retry with the
same key returns the first answer); an amendment or a decision requires `If-Match` with the ETag you read.

Every error is RFC 9457 `application/problem+json`; every response carries `X-Request-ID`.
"""


def create_app(settings: KernelSettings | None = None, *, runtime: Runtime | None = None) -> FastAPI:
    """Build the one-process app; background workers start with the app's lifespan."""
    settings = settings or get_settings()
    runtime = runtime or Runtime.build(settings)
    services = enabled_services(settings)
    owned: dict[str, list[Work]] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Checkpoints, expiry passes, webhook dispatch: once per deployment (see kernel/leader.py). Several
        # processes are declared by `serve --workers N` (SMARTGATE_WORKERS); only PostgreSQL can be shared. Each
        # service's background work has its own lock, so processes running different sets of services (the
        # distributed deployment) still run each piece exactly once.
        shared = settings.workers > 1 and runtime.engine.dialect.name == "postgresql"
        if settings.workers > 1 and not shared:
            logger.warning("SMARTGATE_WORKERS > 1 ignored: SQLite is served by one process")
        leaderships = [
            Leadership(
                runtime.engine, work, shared=shared, name=f"{service}@pid {os.getpid()}", key=leader_key(service)
            )
            for service, work in owned.items()
            if work
        ]
        app.state.leaderships = leaderships
        started: list[Callable[[], None]] = []
        try:
            runtime.relay.start()
            started.append(runtime.relay.stop)
            started.extend(runtime.on_stop)  # the services' stops are safe to call whether or not theirs started
            for start in runtime.on_start:
                start()
            for leadership in leaderships:
                leadership.start()
                started.append(leadership.stop)
            if settings.environment != "test":
                # Everything loaded so far (modules, models, schemas: ~240,000 objects) lives as long as the
                # process: moved out of the collector's reach, a full collection no longer walks it (each walk was
                # a ~150 ms pause of every request in flight). Not in tests, which build many apps per process.
                gc.collect()
                gc.freeze()
            yield
        finally:
            for stop in reversed(started):
                stop()

    app = FastAPI(
        title="smartgate",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        # FastAPI's own pages load their assets from a CDN: these are served by the platform (api/docs.py).
        docs_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    app.state.runtime = runtime
    install_error_handlers(app)
    # Inside the size limit, which bounds the body it reads; before any parser sees the body (see kernel/nesting.py).
    app.add_middleware(JsonDepthMiddleware)
    app.add_middleware(
        BodySizeLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        uploads=UPLOAD_PATHS,
        upload_max_bytes=settings.max_upload_bytes,
    )
    app.add_middleware(RequestContextMiddleware)
    app.add_middleware(DatabaseWaitMiddleware, seconds=settings.db_timeout_seconds)

    @app.get("/healthz", tags=["health"], summary="Process is up")
    def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    ready_threads = anyio.CapacityLimiter(4)

    def check_database() -> None:
        # A read (on SQLite, another process holding the write lock does not make this one unready).
        with waiting_at_most(READY_SECONDS * 0.75), reader(runtime.engine).connect() as conn:
            conn.execute(text("SELECT 1"))

    @app.get("/readyz", tags=["health"], summary="Ready to serve", responses=problems(503))
    async def readyz() -> JSONResponse:
        """Readiness: the database answers, within READY_SECONDS (a frozen database is not ready either)."""
        try:
            with anyio.fail_after(READY_SECONDS):
                # Its own threads: a probe never queues behind requests stuck on the database.
                await anyio.to_thread.run_sync(check_database, limiter=ready_threads, abandon_on_cancel=True)
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready", reported, not raised
            reason = "no answer in time" if isinstance(exc, TimeoutError) else summary(exc)
            return problem(
                503,
                "Not ready",
                f"database unreachable: {reason}",
                headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)},
                code="database.unavailable",
            )
        return JSONResponse({"status": "ready", "database": runtime.engine.dialect.name})

    for service, install in service_installers(settings):
        before = len(runtime.singletons)
        install(app, runtime)
        owned[service] = runtime.singletons[before:]
    if settings.console and "declarations" in services:  # its pages are the declarations service's review
        app.include_router(console_router)
    if settings.console and "traceability" in services:  # the e-production diary's pages (issue 15)
        app.include_router(diary_router)
    install_docs(app)
    app.include_router(problems_router)  # the pages of the problem `type` URIs
    _document_rate_limit(app)
    document(app)  # after the rate limit: a public operation has no 429 either
    return app


def _document_rate_limit(app: FastAPI) -> None:
    """Every operation that takes an API key can answer 429 (services/kernel/ratelimit.py): say so in OpenAPI."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            for item in schema.get("paths", {}).values():
                for operation in item.values():
                    responses = operation.get("responses", {})
                    if "401" in responses and "429" not in responses:
                        responses["429"] = {
                            **responses["401"],
                            "description": "Too many requests for this API key: problem details (RFC 9457), with "
                            "a Retry-After header",
                        }
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def enabled_services(settings: KernelSettings) -> list[str]:
    """The services this process runs (SMARTGATE_SERVICES, checked by the settings), in a fixed order."""
    return [name for name in SERVICES if name in settings.service_names]


def leader_key(service: str) -> int:
    """The advisory-lock key of one service's background work: the processes that run the service elect one."""
    return LEADER_LOCK_KEY ^ zlib.crc32(service.encode())


def service_installers(settings: KernelSettings) -> list[tuple[str, Callable[[FastAPI, Runtime], None]]]:
    """(name, `install(app, runtime)`) of every enabled service present: routers, event subscriptions, background
    work."""
    import importlib

    found = []
    for name in enabled_services(settings):
        try:
            module = importlib.import_module(f"services.{name}.install")
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith(f"services.{name}"):
                continue  # the service is not part of this installation
            raise
        found.append((name, module.install))
    return found


def worker_app() -> FastAPI:
    """The app of one worker process when `smartgate serve --workers N` runs several."""
    settings = get_settings()
    configure_process(settings)
    return create_app(settings)


def configure_process(settings: KernelSettings) -> None:
    """Process-wide set-up done once by `smartgate serve` (not at import time)."""
    configure_logging(settings.log_level, json_logs=settings.log_json)
