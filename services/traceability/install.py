"""Plug the traceability service into a process: the EPCIS 2.0 routes under /epcis."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy.orm import Session

from services.kernel.bus import idempotent
from services.kernel.outbox import Event
from services.kernel.runtime import Runtime
from services.traceability import endpoints, identifiers, resolver, tracecheck
from services.traceability.settings import traceability_settings


def install(app: FastAPI, runtime: Runtime) -> None:
    """Routes under /epcis; the event hashes reach the ledger as `epcis.event_captured` outbox events; the trace
    check consumer."""
    settings = runtime.extras[endpoints.SETTINGS_KEY] = traceability_settings(runtime.settings)
    app.include_router(endpoints.router)
    app.include_router(endpoints.session_router)
    app.include_router(resolver.router)  # GS1 Digital Link at the root: /00/{sscc}, /01/{gtin}[/10/{lot}]
    # The trace check of declarations that name pallets and lots (`declaration.trace_requested` → `trace.checked`),
    # the release of what cancelled, rejected or expired declarations drew on, and the EPCIS events of a traced
    # declaration's release and gate exit for its pallets (crossing.py).
    gate_gln = identifiers.gln(settings.trace_gate_gln)  # a wrong check digit fails at start-up, not at the gate

    def on_declaration_event(session: Session, event: Event) -> None:
        tracecheck.on_declaration_event(session, event, gate_gln=gate_gln)

    runtime.bus.subscribe(
        "declaration.*",
        idempotent(runtime.sessions, tracecheck.CONSUMER, on_declaration_event),
        name="traceability.trace_check",
    )
