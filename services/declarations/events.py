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
}
