"""What stays confidential about selectivity, and how it is still proven: the secret key of the random draw, the
record behind a channel with its salted commitment, and how customs staff are named outside customs."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.declarations.models import RiskDrawKey
from services.kernel.outbox import canonical_sha256

if TYPE_CHECKING:
    from services.declarations.models import Declaration
    from services.declarations.risk import RiskResult

KEPT_REASON = "an amendment or a reassessment never lowers the channel; only an officer's decision does"
# Outside customs (a trader's view, events, webhooks, the ledger) staff are named by role, never by key id.
STAFF_ROLES = {
    "officer": "customs officer",
    "supervisor": "customs supervisor",
    "admin": "customs administration",
    "treasury": "State Treasury",
}

_draw_keys: dict[str, bytes] = {}
_lock = threading.Lock()


def draw_key(session: Session) -> bytes:
    """The secret key of the random selection draw: made by the migration, one per database, never served by the
    API and in no file of the repository, so no trader can compute a declaration's draw (cached per database)."""
    database = str(session.get_bind().engine.url)
    with _lock:
        key = _draw_keys.get(database)
    if key is not None:
        return key
    found = session.scalar(select(RiskDrawKey.key_hex).where(RiskDrawKey.id == 1))
    if found is None:
        raise RuntimeError("the risk draw key is missing: the declarations migrations have not run")
    with _lock:
        return _draw_keys.setdefault(database, bytes.fromhex(found))


def confidential_record(decl: Declaration, result: RiskResult, gate_mismatches: int) -> dict[str, Any]:
    """What selectivity decided and why (score, rule hits, draw): shown to officers, never to traders."""
    return {
        "declaration_id": decl.id,
        "version": decl.version,
        "body_sha256": decl.body_sha256,
        **result.to_json(),
        "gate_mismatches": gate_mismatches,
    }


def commitment_of(record: dict[str, Any], salt: str) -> str:
    """SHA-256 of the RFC 8785 canonical JSON of the record with its salt added as `salt`: the
    `declaration.assessed` event carries this instead of the record, so the ledger fixes the assessment without
    disclosing it (the random salt keeps anyone from confirming a guessed score against it)."""
    return canonical_sha256({**record, "salt": salt})


def public_actor(actor: str) -> str:
    """How an actor is named outside customs: officers and admins by role only, others as recorded (the trader's
    own keys, `system:…`, `gate:…`)."""
    return STAFF_ROLES.get(actor.partition(":")[0], actor)
