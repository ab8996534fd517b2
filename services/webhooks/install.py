"""Plug the webhooks service into a process: its routes, the consumers of declaration and gate events, the
dispatcher."""

from __future__ import annotations

from fastapi import FastAPI

from services.kernel.runtime import Runtime
from services.webhooks import endpoints, service
from services.webhooks.delivery import Dispatcher
from services.webhooks.openapi import install_webhooks
from services.webhooks.settings import webhook_settings


def install(app: FastAPI, runtime: Runtime) -> None:
    """Routes under /api/v1/webhooks; `declaration.*` and `gate.*` events become deliveries; one dispatcher per
    deployment."""
    settings = webhook_settings(runtime.settings)
    dispatcher = Dispatcher(runtime.sessions, settings, read_sessions=runtime.read_sessions)
    runtime.extras[endpoints.SETTINGS_KEY] = settings
    runtime.extras[endpoints.DISPATCHER_KEY] = dispatcher
    app.include_router(endpoints.router)
    install_webhooks(app)  # what the receivers get, in OpenAPI's `webhooks` section
    runtime.bus.subscribe(
        "declaration.*",
        service.make_consumer(runtime.sessions, dispatcher.notify, read_sessions=runtime.read_sessions),
        name="webhooks.deliveries",
    )
    # Its trucks at the gate (`gate.read`, `gate.mismatch`, `gate.exited`), in the trader-safe shape.
    runtime.bus.subscribe(
        "gate.*",
        service.make_consumer(runtime.sessions, dispatcher.notify, read_sessions=runtime.read_sessions),
        name="webhooks.gate_deliveries",
    )
    # With several server processes, the elected one dispatches (deliveries are claimed without row locks).
    runtime.singletons.append((dispatcher.start, dispatcher.stop))
