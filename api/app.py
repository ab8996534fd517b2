"""The embedded platform: every service and the gateway concerns in one FastAPI process."""

from __future__ import annotations

import gc
import logging
import os
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from sqlalchemy import text

from api.console.routes import router as console_router
from services.declarations import service as declarations_service
from services.declarations.endpoints import problems
from services.declarations.endpoints import router as declarations_router
from services.declarations.review_endpoints import risk_router, tariff_router
from services.declarations.review_endpoints import router as review_router
from services.kernel.database import unit_of_work, utcnow
from services.kernel.errors import install_error_handlers, problem
from services.kernel.leader import Leadership
from services.kernel.observability import BodySizeLimitMiddleware, RequestContextMiddleware, configure_logging
from services.kernel.responses import JSONResponse
from services.kernel.runtime import Runtime
from services.kernel.settings import KernelSettings, get_settings

logger = logging.getLogger("smartgate.app")

DESCRIPTION = """
smartgate is the digital platform of the Kim Thành (Lào Cai, VN) ↔ Bắc Sơn (Hà Khẩu, CN) road border gate.

Authenticate with `Authorization: Bearer <api key>` (`smartgate keys create --role trader --org NAME`).
Every error is RFC 9457 `application/problem+json`; every response carries `X-Request-ID`.
"""


# Endpoints that receive files: documents and gate camera images.
UPLOAD_PATHS = (r"/api/v1/declarations/[^/]+/documents", r"/api/v1/gate/events")


class ExpiryScheduler:
    """Expires declarations whose goods never reached the gate, periodically, in the background."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> list[str]:
        """One pass; returns the expired ids."""
        with unit_of_work(self.runtime.sessions) as session:
            expired = declarations_service.expire_stale(
                session, now=utcnow(), days=self.runtime.settings.declaration_expiry_days
            )
        if expired:
            self.runtime.relay.notify()
            logger.info("declarations expired", extra={"count": len(expired)})
        return expired

    def start(self) -> None:
        """Run every `expiry_check_seconds` until stop() (a new loop, with its own stop signal, each time)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, args=(self._stop,), name="expiry", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the loop (a pass in progress finishes)."""
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=30)
            if not self._thread.is_alive():
                self._thread = None

    def _loop(self, stop: threading.Event) -> None:
        while not stop.wait(self.runtime.settings.expiry_check_seconds):
            try:
                self.run_once()
            except Exception:
                logger.exception("expiry pass failed")


def subscribe_consumers(runtime: Runtime) -> None:
    """Wire each service's event consumers to the bus (idempotent: dedupe by event id)."""
    from services.declarations import consumers as declarations_consumers
    from services.kernel.bus import idempotent

    bus = runtime.bus
    sessions = runtime.sessions
    bus.subscribe("gate.mismatch", idempotent(sessions, "declarations", declarations_consumers.on_gate_mismatch),
                  name="declarations.gate_mismatch")  # fmt: skip
    bus.subscribe("gate.exited", idempotent(sessions, "declarations", declarations_consumers.on_gate_exit),
                  name="declarations.gate_exit")  # fmt: skip


def create_app(settings: KernelSettings | None = None, *, runtime: Runtime | None = None) -> FastAPI:
    """Build the one-process app; background workers start with the app's lifespan."""
    settings = settings or get_settings()
    runtime = runtime or Runtime.build(settings)
    scheduler = ExpiryScheduler(runtime)
    subscribe_consumers(runtime)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from services.declarations.assessment import install_default_rule_set

        install_default_rule_set(runtime.sessions)
        # Checkpoints and expiry passes: once per deployment (see kernel/leader.py). Several processes are
        # declared by `serve --workers N` (SMARTGATE_WORKERS); only PostgreSQL can be shared.
        shared = settings.workers > 1 and runtime.engine.dialect.name == "postgresql"
        if settings.workers > 1 and not shared:
            logger.warning("SMARTGATE_WORKERS > 1 ignored: SQLite is served by one process")
        leadership = Leadership(
            runtime.engine,
            [(scheduler.start, scheduler.stop), *runtime.singletons],
            shared=shared,
            name=f"pid {os.getpid()}",
        )
        app.state.leadership = leadership
        started: list[Callable[[], None]] = []
        try:
            runtime.relay.start()
            started.append(runtime.relay.stop)
            started.extend(runtime.on_stop)  # the services' stops are safe to call whether or not theirs started
            for start in runtime.on_start:
                start()
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
    )
    app.state.runtime = runtime
    app.state.expiry = scheduler
    install_error_handlers(app)
    app.add_middleware(
        BodySizeLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        uploads=UPLOAD_PATHS,
        upload_max_bytes=settings.max_upload_bytes,
    )
    app.add_middleware(RequestContextMiddleware)

    @app.get("/healthz", tags=["health"], summary="Process is up")
    def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], summary="Ready to serve", responses=problems(503))
    def readyz(request: Request) -> JSONResponse:
        """Readiness: the database answers."""
        try:
            with runtime.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready", reported, not raised
            return problem(503, "Not ready", f"database unreachable: {type(exc).__name__}")
        return JSONResponse({"status": "ready", "database": runtime.engine.dialect.name})

    app.include_router(declarations_router)
    app.include_router(review_router)
    app.include_router(risk_router)
    app.include_router(tariff_router)
    app.include_router(console_router)
    for install in service_installers(settings):
        install(app, runtime)
    _document_rate_limit(app)
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


def service_installers(settings: KernelSettings) -> list[Callable[[FastAPI, Runtime], None]]:
    """The `install(app, runtime)` of every enabled service present: routers, event subscriptions, background work."""
    import importlib

    found = []
    enabled = {s.strip() for s in settings.services.split(",") if s.strip()}
    for name in ("provenance", "inspection", "webhooks"):
        if name not in enabled:
            continue
        try:
            module = importlib.import_module(f"services.{name}.install")
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith(f"services.{name}"):
                continue  # the service is not part of this installation
            raise
        found.append(module.install)
    return found


def worker_app() -> FastAPI:
    """The app of one worker process when `smartgate serve --workers N` runs several."""
    settings = get_settings()
    configure_process(settings)
    return create_app(settings)


def configure_process(settings: KernelSettings) -> None:
    """Process-wide set-up done once by `smartgate serve` (not at import time)."""
    configure_logging(settings.log_level, json_logs=settings.log_json)
