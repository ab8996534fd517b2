"""Where a declaration goes after assessment: the review queue, and which officer gets it (rotation)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.declarations.models import Declaration, OfficerDuty
from services.kernel.database import utcnow


def next_officer(session: Session) -> OfficerDuty | None:
    """The on-duty officer whose last assignment is oldest (never-assigned first): VNACCS rotation since 2025."""
    stmt = (
        select(OfficerDuty)
        .where(OfficerDuty.on_duty.is_(True))
        .order_by(OfficerDuty.last_assigned_at.is_not(None), OfficerDuty.last_assigned_at, OfficerDuty.officer_key_id)
        .limit(1)
    )
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    return session.scalar(stmt)


def assign(session: Session, decl: Declaration, duty: OfficerDuty) -> None:
    """Give the declaration to this officer."""
    decl.assigned_officer = duty.officer_key_id
    duty.last_assigned_at = utcnow()
    duty.assigned_count += 1


def enqueue(session: Session, decl: Declaration) -> str | None:
    """Put a yellow or red declaration in the review queue, assigned in rotation if an officer is on duty."""
    if decl.queued_at is None:
        decl.queued_at = utcnow()
    if decl.assigned_officer is None and (duty := next_officer(session)) is not None:
        assign(session, decl, duty)
    return decl.assigned_officer
