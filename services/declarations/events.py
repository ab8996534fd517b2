"""Event types the declarations service publishes (`declaration.<verb>`)."""

from __future__ import annotations

CREATED = "declaration.created"
SUBMITTED = "declaration.submitted"
AMENDED = "declaration.amended"
CANCELLED = "declaration.cancelled"
CLEARED = "declaration.cleared"
RELEASED = "declaration.released"
EXITED = "declaration.exited"
EXPIRED = "declaration.expired"
ASSESSED = "declaration.assessed"
DOCUMENTS_REQUESTED = "declaration.documents_requested"
DOCUMENTS_PROVIDED = "declaration.documents_provided"
INSPECTION_ORDERED = "declaration.inspection_ordered"
REJECTED = "declaration.rejected"
PAID = "declaration.paid"
PAYMENT_REJECTED = "declaration.payment_rejected"
ASSIGNED = "declaration.assigned"
TRACE_REQUESTED = "declaration.trace_requested"

# The verb of each action, for naming its event.
VERBS = {
    "create": CREATED,
    "submit": SUBMITTED,
    "amend": AMENDED,
    "cancel": CANCELLED,
    "clear": CLEARED,
    "release": RELEASED,
    "exit": EXITED,
    "expire": EXPIRED,
    "request_documents": DOCUMENTS_REQUESTED,
    "provide_documents": DOCUMENTS_PROVIDED,
    "inspect": INSPECTION_ORDERED,
    # A gate hold escalated by an officer: physical inspection, as an officer's order would be.
    "gate_escalate": INSPECTION_ORDERED,
    "reject": REJECTED,
}

# Learned risk models: every change of state, audited (services/declarations/riskmodels.py).
MODEL_STORED = "risk.model_stored"
MODEL_SHADOWED = "risk.model_shadowed"
MODEL_ACTIVATED = "risk.model_activated"
MODEL_ROLLED_BACK = "risk.model_rolled_back"
MODEL_EVENTS = {"stored": MODEL_STORED, "shadowed": MODEL_SHADOWED, "activated": MODEL_ACTIVATED,
                "rolled_back": MODEL_ROLLED_BACK}  # fmt: skip

# Cross-border exchange (issue 14; services/declarations/crossborder.py): customs-to-customs, never to webhooks.
EXPORT_NOTICE = "declaration.export_notice"
CROSSED = "declaration.crossed"
CONTROL_RESULT = "declaration.control_result"
