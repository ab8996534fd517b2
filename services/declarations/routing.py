"""Where a declaration goes after assessment: the review queue, and which officer gets it (rotation)."""

from __future__ import annotations

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from services.declarations.models import Declaration, OfficerDuty
from services.kernel.auth import ApiKey, Role
from services.kernel.database import table_of, utcnow

# Keys that may be given declarations: officers' and supervisors' that are not revoked.
DECIDERS = (Role.officer.value, Role.supervisor.value)
_DUTY = table_of(OfficerDuty)
_KEYS = table_of(ApiKey)
# A look-up by primary key per row of the roster (not a scan of every key: traders' keys are most of them).
_ACTIVE_DECIDER = (
    select(_KEYS.c.id)
    .where(_KEYS.c.id == _DUTY.c.officer_key_id, _KEYS.c.revoked_at.is_(None), _KEYS.c.role.in_(DECIDERS))
    .exists()
)
# The on-duty officer whose last assignment is oldest (never-assigned first): VNACCS rotation since 2025. A key
# revoked however it was (`smartgate keys revoke`, or straight in the database) is never picked, even if its row of
# the roster still says on duty.
_ROTATION = (
    select(_DUTY.c.officer_key_id)
    .where(_DUTY.c.on_duty.is_(True), _ACTIVE_DECIDER)
    .order_by(_DUTY.c.last_assigned_at.is_not(None), _DUTY.c.last_assigned_at, _DUTY.c.officer_key_id)
    .limit(1)
)
# Only the roster's row is locked (never the key's: revoking a key must not wait for filings).
_ROTATION_SKIP_LOCKED = _ROTATION.with_for_update(skip_locked=True, of=_DUTY)
_ROTATION_LOCKED = _ROTATION.with_for_update(of=_DUTY)
_ACTIVE_KEY = select(_KEYS.c.id).where(
    _KEYS.c.id == bindparam("key"), _KEYS.c.revoked_at.is_(None), _KEYS.c.role.in_(DECIDERS)
)
_OFF_DUTY = update(_DUTY).where(_DUTY.c.officer_key_id == bindparam("officer")).values(on_duty=False)
_TAKE = (
    update(_DUTY)
    .where(_DUTY.c.officer_key_id == bindparam("officer"))
    .values(last_assigned_at=bindparam("now"), assigned_count=_DUTY.c.assigned_count + 1)
)


def _roster_insert(dialect: str):
    from sqlalchemy.dialects import postgresql, sqlite

    insert_stmt = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return (
        insert_stmt(_DUTY)
        .values(officer_key_id=bindparam("officer"), on_duty=False, assigned_count=0)
        .on_conflict_do_nothing(index_elements=["officer_key_id"])
    )


_ROSTER = {dialect: _roster_insert(dialect) for dialect in ("postgresql", "sqlite")}


def assign_to(session: Session, decl: Declaration, officer_key_id: str) -> None:
    """Give the declaration to this officer by hand, counting the assignment atomically: an officer missing from
    the duty roster is added to it (off duty), and two assignments at once neither collide nor lose a count."""
    conn = session.connection()
    conn.execute(_ROSTER[conn.dialect.name], {"officer": officer_key_id})
    conn.execute(_TAKE, {"officer": officer_key_id, "now": utcnow()})
    decl.assigned_officer = officer_key_id


def is_active_decider(session: Session, officer_key_id: str) -> bool:
    """Whether the key is an officer's or supervisor's and not revoked, read afresh (not from the session's
    identity map): after `assign_to` waited for the officer's roster row, a revocation that committed meanwhile
    shows here."""
    found = session.connection().execute(_ACTIVE_KEY, {"key": officer_key_id}).scalar()
    return found is not None


def take_next_officer(session: Session) -> str | None:
    """Pick the next officer in rotation and count the assignment (None when nobody is on duty).

    On PostgreSQL the officer's row stays locked until the filing commits; filings running at the same time
    skip officers already locked and take the next in rotation, and wait only when every officer on duty
    is taken.
    """
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        officer = conn.execute(_ROTATION_SKIP_LOCKED).scalar()
        if officer is None:
            officer = conn.execute(_ROTATION_LOCKED).scalar()
    else:
        officer = conn.execute(_ROTATION).scalar()
    if officer is not None:
        conn.execute(_TAKE, {"officer": officer, "now": utcnow()})
    return officer


def off_duty(session: Session, officer_key_id: str) -> None:
    """Take an officer off the roster's rotation. On PostgreSQL this waits for any filing that is giving it a
    declaration right now (the row is locked until that filing commits), so what is read after sees that one too."""
    session.connection().execute(_OFF_DUTY, {"officer": officer_key_id})


def enqueue(session: Session, decl: Declaration) -> str | None:
    """Put a yellow or red declaration in the review queue, assigned in rotation if an officer is on duty."""
    if decl.queued_at is None:
        decl.queued_at = utcnow()
    if decl.assigned_officer is None:
        decl.assigned_officer = take_next_officer(session)
    return decl.assigned_officer
