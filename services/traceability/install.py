"""Plug the traceability service into a process: the EPCIS 2.0 routes under /epcis."""

from __future__ import annotations

from fastapi import FastAPI

from services.kernel.runtime import Runtime
from services.traceability import endpoints, resolver
from services.traceability.settings import traceability_settings


def install(app: FastAPI, runtime: Runtime) -> None:
    """Routes under /epcis; the event hashes reach the ledger as `epcis.event_captured` outbox events."""
    runtime.extras[endpoints.SETTINGS_KEY] = traceability_settings(runtime.settings)
    app.include_router(endpoints.router)
    app.include_router(endpoints.session_router)
    app.include_router(resolver.router)  # GS1 Digital Link at the root: /00/{sscc}, /01/{gtin}[/10/{lot}]
