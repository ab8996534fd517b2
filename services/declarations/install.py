"""Plug the declarations service into a process: its routers, its consumers of gate events, the expiry passes and
the default rule set."""

from __future__ import annotations

from fastapi import FastAPI

from services.declarations import consumers
from services.declarations.assessment import install_default_rule_set
from services.declarations.crossborder_endpoints import router as crossborder_router
from services.declarations.endpoints import router
from services.declarations.expiry import ExpiryScheduler
from services.declarations.model_endpoints import router as model_router
from services.declarations.payment_endpoints import router as payment_router
from services.declarations.review_endpoints import risk_router, tariff_router
from services.declarations.review_endpoints import router as review_router
from services.declarations.session_endpoints import router as session_router
from services.kernel.bus import idempotent
from services.kernel.runtime import Runtime


def install(app: FastAPI, runtime: Runtime) -> None:
    """Routes under /api/v1/declarations, /review (with the console's sessions), /payments, /risk, /tariff and
    /exchange-rates; the `gate.mismatch`, `gate.hold_released`, `gate.hold_escalated`, `trace.checked` and
    `gate.exited` consumers, the partner administration's data (`exchange.*_received`); one expiry scheduler per
    deployment."""
    for r in (
        router,
        review_router,
        session_router,
        payment_router,
        model_router,
        risk_router,
        tariff_router,
        crossborder_router,
    ):
        app.include_router(r)
    bus, sessions = runtime.bus, runtime.sessions
    bus.subscribe("gate.mismatch", idempotent(sessions, consumers.CONSUMER, consumers.on_gate_mismatch),
                  name="declarations.gate_mismatch")  # fmt: skip
    for resolved in ("gate.hold_released", "gate.hold_escalated"):
        bus.subscribe(resolved, idempotent(sessions, consumers.CONSUMER, consumers.on_gate_hold_resolved),
                      name=f"declarations.{resolved.replace('.', '_')}")  # fmt: skip
    bus.subscribe("trace.checked", idempotent(sessions, consumers.CONSUMER, consumers.on_trace_checked),
                  name="declarations.trace_checked")  # fmt: skip
    bus.subscribe("gate.exited", idempotent(sessions, consumers.CONSUMER, consumers.on_gate_exit),
                  name="declarations.gate_exit")  # fmt: skip
    for type_, handler in consumers.EXCHANGE_CONSUMERS.items():
        bus.subscribe(type_, idempotent(sessions, consumers.CONSUMER, handler),
                      name=f"declarations.{type_.partition('.')[2]}")  # fmt: skip
    scheduler = ExpiryScheduler(runtime)
    app.state.expiry = scheduler
    runtime.on_start.append(lambda: install_default_rule_set(sessions))
    runtime.singletons.insert(0, (scheduler.start, scheduler.stop))
