"""The declarations service: customs e-declarations from filing to exit.

Traders file, amend and cancel declarations (`endpoints`, `service`); each is validated (`schemas`, `codes`), its
duties computed from the tariff (`duties`, `tariff`) and its risk channel assigned by a versioned YAML rule set
(`risk`, `assessment`, `rulesets`). Officers work the queue of selected declarations and decide (`review`,
`review_endpoints`, `routing`); payments and release, expiry of stale filings (`expiry`), and the gate's events
(`consumers`) complete the lifecycle. Every change is an outbox event (`events`).
"""
