"""Plug the inspection service into a process: routes, the read-model consumer, the OCR pool's start and stop."""

from __future__ import annotations

from fastapi import FastAPI

from services.inspection import endpoints, service
from services.inspection.reading import OcrPool
from services.inspection.storage import ImageStore
from services.kernel.bus import idempotent
from services.kernel.runtime import Runtime


def install(app: FastAPI, runtime: Runtime) -> None:
    """Routes under /api/v1/gate, the `declaration.*` consumer, and the OCR worker threads."""
    pool = OcrPool()
    runtime.extras[endpoints.POOL_KEY] = pool
    runtime.extras[endpoints.STORE_KEY] = ImageStore(runtime.settings.var_dir / "gate-images")
    app.include_router(endpoints.router)
    runtime.bus.subscribe(
        "declaration.*",
        idempotent(
            runtime.sessions,
            service.CONSUMER,
            service.on_declaration_event,
            handle_many=service.on_declaration_events,
        ),
        name="inspection.expected_declarations",
    )
    if runtime.settings.environment != "test":
        # Load the models at start, in a worker, so the first truck is not the one that waits for them.
        # (Tests skip it: most never read an image, and those that do load the shared reader once.)
        runtime.on_start.append(pool.warm_up)
    runtime.on_stop.append(pool.shutdown)
