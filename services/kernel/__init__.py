"""What every service shares, and nothing that belongs to one of them.

Settings (`settings`), engines and sessions for SQLite and PostgreSQL (`database`, `runtime`), the transactional outbox
and the event buses, in-process and NATS JetStream (`outbox`, `bus`, `nats_bus`), API keys and roles (`auth`, `deps`),
RFC 9457 problems (`errors`), idempotency keys, rate limits, request limits (`nesting`, `observability`) and the
election of one process for background work (`leader`). The kernel imports no service.
"""
