"""Plug the exchange service into a process: its routes, the consumer that turns our domain events into messages
for the partner, the dispatcher that pushes them (one per deployment)."""

from __future__ import annotations

from fastapi import FastAPI

from services.exchange import endpoints, service
from services.exchange.delivery import Dispatcher
from services.exchange.jws import Signer
from services.exchange.messages.endpoints import router as messages_router
from services.exchange.messages.events import ORIGIN_CERTIFICATE_ISSUED
from services.exchange.registry import MessageType, load_message_types
from services.exchange.settings import exchange_settings, signing_key
from services.kernel.bus import idempotent
from services.kernel.outbox import Event
from services.kernel.ratelimit import RateLimiter
from services.kernel.runtime import Runtime

# Tests put their own message types here (runtime.extras) before the app is made.
TYPES_KEY = "exchange.types"
CONSUMER = "exchange.outbound"


def install(app: FastAPI, runtime: Runtime) -> None:
    """Routes under /api/v1/exchange; `declaration.*` and `gate.*` events through every type's `outbound`."""
    settings = exchange_settings(runtime.settings)
    types: dict[str, MessageType] = runtime.extras.get(TYPES_KEY) or load_message_types()
    ex = service.Exchange(
        settings=settings,
        signer=Signer.from_seed(*signing_key(settings)),
        types=types,
        limiter=RateLimiter(settings.exchange_rate_limit_per_minute / settings.workers,
                            settings.exchange_rate_limit_burst),
    )  # fmt: skip
    dispatcher = Dispatcher(runtime.sessions, ex)
    ex.wake = dispatcher.notify
    runtime.extras[endpoints.EXCHANGE_KEY] = ex
    runtime.extras[endpoints.DISPATCHER_KEY] = dispatcher
    app.include_router(endpoints.router)
    # The Form E issuer's endpoint (services/exchange/messages): certificates issued here become originCertificate.
    app.include_router(messages_router)
    if any(t.outbound is not None for t in types.values()):
        handler = idempotent(runtime.sessions, CONSUMER, service.handle_event(ex))

        def consume(event: Event) -> None:
            handler(event)
            dispatcher.notify()

        def consume_batch(events: list[Event]) -> None:
            handler.handle_batch(events)  # type: ignore[attr-defined]
            dispatcher.notify()

        consume.handle_batch = consume_batch  # type: ignore[attr-defined]
        runtime.bus.subscribe("declaration.*", consume, name="exchange.declarations")
        runtime.bus.subscribe("gate.*", consume, name="exchange.gate")
        runtime.bus.subscribe(ORIGIN_CERTIFICATE_ISSUED, consume, name="exchange.origin_certificates")
    # Queued messages wake the dispatcher through the relay too (the consumer's transaction is the one that queues).
    runtime.singletons.append((dispatcher.start, dispatcher.stop))
    runtime.on_stop.append(dispatcher.close)
