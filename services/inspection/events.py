"""Event types the inspection service publishes (`gate.<what>`)."""

from __future__ import annotations

READ = "gate.read"
MISMATCH = "gate.mismatch"
EXITED = "gate.exited"
HOLD_RELEASED = "gate.hold_released"
HOLD_ESCALATED = "gate.hold_escalated"
