"""Event types the traceability service publishes (`epcis.<what>`)."""

from __future__ import annotations

EVENT_CAPTURED = "epcis.event_captured"
TRACE_CHECKED = "trace.checked"
