"""Plug the inspection service into a process: routes, the read-model consumer, the OCR pool's start and stop."""

from __future__ import annotations

from fastapi import FastAPI

from services.inspection import endpoints, service
from services.inspection.reading import OcrPool
from services.inspection.settings import inspection_settings
from services.inspection.storage import ImageStore
from services.kernel.bus import idempotent
from services.kernel.runtime import Runtime


def install(app: FastAPI, runtime: Runtime) -> None:
    """Routes under /api/v1/gate, the `declaration.*` and `trace.checked` consumers, and the OCR worker threads."""
    ocr = inspection_settings(runtime.settings)
    pool = OcrPool(
        workers=ocr.ocr_workers,
        lane_workers=ocr.ocr_lane_limit,
        max_pending=ocr.ocr_max_pending,
        max_pending_per_lane=ocr.ocr_max_pending_per_lane,
        max_pixels=ocr.ocr_max_image_pixels,
        max_event_pixels=ocr.ocr_max_event_pixels,
        read_max_side=ocr.ocr_read_max_side,
        deadline_seconds=ocr.ocr_event_deadline_seconds,
    )
    runtime.extras[endpoints.POOL_KEY] = pool
    runtime.extras[endpoints.STORE_KEY] = ImageStore(runtime.settings.var_dir / "gate-images")
    app.include_router(endpoints.router)
    app.include_router(endpoints.declarations_router)
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
    runtime.bus.subscribe(
        "trace.checked",
        idempotent(runtime.sessions, service.CONSUMER, service.on_trace_checked),
        name="inspection.expected_pallets",
    )
    if runtime.settings.environment != "test":
        # Load the models at start, in a worker, so the first truck is not the one that waits for them.
        # (Tests skip it: most never read an image, and those that do load the shared reader once.)
        runtime.on_start.append(pool.warm_up)
    runtime.on_stop.append(pool.shutdown)
