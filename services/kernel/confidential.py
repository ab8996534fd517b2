"""What customs keeps from traders in what the ledger recorded: selectivity criteria (score, rule hits and weights,
the rule-set version, the draw) and staff named by their key ids.

Events written since the audit (issue 12) carry none of it: the channel with a salted commitment of the record
behind it, and staff named by role. The ledger is append-only, so entries recorded before that change keep the old
forms; a trader's bundle shows their leaves and proofs but not their payloads (a bundle verifies without them).
"""

from __future__ import annotations

import json
import re
from typing import Any

# Payload keys of the pre-audit event forms that a trader must not read: the selectivity record
# (`declaration.assessed`) and the officers' key ids of an assignment (`declaration.assigned` "from"/"to").
CONFIDENTIAL_KEYS = frozenset({"score", "rules", "rule_set_version", "reasons", "draw", "from", "to"})
# An actor recorded with a staff key id (`officer:<key id>`); since the audit staff are named by role only.
_STAFF_KEY_ACTOR = re.compile(r"^(officer|supervisor|admin|treasury):")


def trader_may_read(payload: bytes) -> bool:
    """Whether a ledger payload (canonical JSON of an event's payload) is free of what traders must not see.
    Anything that does not parse as a JSON object is withheld."""
    try:
        data: Any = json.loads(payload)
    except ValueError:
        return False
    if not isinstance(data, dict):
        return False
    return _clean(data)


def _clean(data: dict[str, Any]) -> bool:
    for key, value in data.items():
        if key in CONFIDENTIAL_KEYS:
            return False
        if isinstance(value, str) and _STAFF_KEY_ACTOR.match(value):
            return False
        if isinstance(value, dict) and not _clean(value):
            return False
    return True
