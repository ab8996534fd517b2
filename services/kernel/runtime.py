"""What a running process holds: settings, engine, session factories, bus and relay."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from services.kernel.auth import PrincipalCache
from services.kernel.bus import EventBus, InProcessBus, OutboxRelay
from services.kernel.database import make_engine, make_sessionmaker, reader
from services.kernel.dbtimeouts import DatabaseTimeouts
from services.kernel.ratelimit import RateLimiter
from services.kernel.settings import KernelSettings


@dataclass
class Runtime:
    """The shared state of one process (stored on `app.state.runtime`)."""

    settings: KernelSettings
    engine: Engine
    sessions: sessionmaker[Session]
    read_sessions: sessionmaker[Session]
    bus: EventBus
    relay: OutboxRelay
    principals: PrincipalCache = field(default_factory=lambda: PrincipalCache(0.0))
    limiter: RateLimiter = field(default_factory=lambda: RateLimiter(0, 1))
    extras: dict[str, Any] = field(default_factory=dict)
    # Background work of the services in this process (checkpointing, workers...), run by the app's lifespan.
    on_start: list[Callable[[], None]] = field(default_factory=list)
    on_stop: list[Callable[[], None]] = field(default_factory=list)
    # Background work one process of the deployment runs, as (start, stop): see kernel/leader.py.
    singletons: list[tuple[Callable[[], None], Callable[[], None]]] = field(default_factory=list)

    @classmethod
    def build(cls, settings: KernelSettings, *, bus: EventBus | None = None) -> Runtime:
        """Engine, sessions and an in-process bus for `settings`."""
        engine = make_engine(settings.resolved_database_url, timeouts=DatabaseTimeouts.from_settings(settings))
        sessions = make_sessionmaker(engine)
        read_sessions = make_sessionmaker(reader(engine))
        the_bus = bus or _bus_for(settings)
        return cls(
            settings=settings,
            engine=engine,
            sessions=sessions,
            read_sessions=read_sessions,
            bus=the_bus,
            relay=OutboxRelay(
                sessions,
                the_bus,
                interval_seconds=settings.relay_interval_seconds,
                read_factory=read_sessions,
                batch_delay_seconds=settings.relay_batch_delay_seconds,
            ),
            principals=PrincipalCache(settings.auth_cache_seconds),
            limiter=RateLimiter(settings.rate_limit_per_minute / settings.workers, settings.rate_limit_burst),
        )

    def close(self) -> None:
        """Stop the relay and release connections."""
        self.relay.stop()
        closer = getattr(self.bus, "close", None)
        if closer is not None:
            closer()
        self.engine.dispose()


def _bus_for(settings: KernelSettings) -> EventBus:
    """In-process unless a NATS URL is configured."""
    if settings.bus_url.startswith(("nats://", "tls://")):
        from services.kernel.nats_bus import JetStreamBus

        return JetStreamBus(settings.bus_url, stream=settings.bus_stream, prefix=settings.bus_prefix)
    return InProcessBus()
