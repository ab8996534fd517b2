"""The deployable services, each owning its tables, migrations, endpoints and events, on a shared kernel.

`declarations` (e-declarations, duties, risk, review, payments), `inspection` (gate images, OCR reads, matching),
`provenance` (the ledger, checkpoints, anchors, proofs) and `webhooks` (signed deliveries to traders). A service never
imports another: they talk through events of the outbox (`kernel.outbox`, `kernel.bus`) and over HTTP. Each has an
`install(app, runtime)` that plugs its routes, consumers and background work into a process (docs/architecture.md).
"""
