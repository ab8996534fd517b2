"""Officer review: duty roster, queue, assignment, decisions, documents and the compliance feedback they drive."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.declarations import crossborder, modelserving, routing, service
from services.declarations.events import ASSIGNED
from services.declarations.exceptions import DeclarationNotFound, IllegalTransition
from services.declarations.models import (
    Declaration,
    DeclarationDocument,
    DeclarationTransition,
    OfficerDuty,
    TraderProfile,
)
from services.declarations.schemas import Status
from services.kernel.auth import ApiKey, Principal, Role, on_revoke
from services.kernel.blobs import write_once
from services.kernel.database import utcnow
from services.kernel.errors import Forbidden, PreconditionFailed, PreconditionRequired, Unprocessable
from services.kernel.filenames import display_name
from services.kernel.outbox import record_event, record_events

# Who decides: the declaration's assignee (an officer) or any supervisor. Admins run the platform; they read the
# queue but never decide (nor assign) customs matters.
DECIDERS = routing.DECIDERS
QUEUE_STATUSES = (Status.submitted.value, Status.awaiting_documents.value, Status.inspection.value)
CLEAN_CLEARANCES_TO_PROMOTE = 20
DEMOTE = {"A": "B", "B": "C", "C": "C"}
PROMOTE = {"C": "B", "B": "A", "A": "A"}
DOCUMENT_STATUSES = (Status.draft, Status.submitted, Status.awaiting_documents, Status.inspection)


def set_duty(session: Session, *, principal: Principal, on_duty: bool) -> OfficerDuty:
    """Go on or off duty (only on-duty officers receive declarations in rotation)."""
    principal.require(Role.officer)
    duty = session.get(OfficerDuty, principal.key_id)
    if duty is None:
        duty = OfficerDuty(officer_key_id=principal.key_id, on_duty=on_duty, assigned_count=0)
        session.add(duty)
    duty.on_duty = on_duty
    session.flush()
    return duty


def duty_of(session: Session, *, principal: Principal) -> OfficerDuty:
    """The caller's row of the duty roster (a transient off-duty one if it never went on duty)."""
    principal.require(Role.officer, Role.supervisor)
    duty = session.get(OfficerDuty, principal.key_id)
    return duty or OfficerDuty(officer_key_id=principal.key_id, on_duty=False, assigned_count=0)


def officers(session: Session, *, principal: Principal) -> list[dict[str, Any]]:
    """Every officer and supervisor key with its label and duty status, by label then key id."""
    principal.require(Role.officer, Role.supervisor, Role.admin)
    rows = session.execute(
        select(ApiKey.id, ApiKey.role, ApiKey.label, ApiKey.revoked_at, OfficerDuty.on_duty)
        .outerjoin(OfficerDuty, OfficerDuty.officer_key_id == ApiKey.id)
        .where(ApiKey.role.in_(DECIDERS))
        .order_by(ApiKey.label, ApiKey.id)
    )
    return [
        {"key_id": k, "role": role, "label": label or "", "on_duty": bool(on), "revoked": revoked is not None}
        for k, role, label, revoked, on in rows
    ]


def queue(
    session: Session,
    *,
    principal: Principal,
    channel: str | None,
    status: str | None,
    assigned: str,
    limit: int,
) -> list[Declaration]:
    """Declarations waiting for an officer, oldest first."""
    principal.require(Role.officer, Role.supervisor, Role.admin)
    stmt = select(Declaration).where(
        Declaration.status.in_([status] if status else QUEUE_STATUSES), Declaration.queued_at.is_not(None)
    )
    if channel:
        stmt = stmt.where(Declaration.channel == channel)
    if assigned == "me":
        stmt = stmt.where(Declaration.assigned_officer == principal.key_id)
    elif assigned == "unassigned":
        stmt = stmt.where(Declaration.assigned_officer.is_(None))
    elif assigned != "all":
        stmt = stmt.where(Declaration.assigned_officer == assigned)
    return list(session.scalars(stmt.order_by(Declaration.queued_at, Declaration.id).limit(limit)))


def _in_review(session: Session, declaration_id: str) -> Declaration:
    if not service.ID_SHAPE.match(declaration_id):
        raise DeclarationNotFound(declaration_id[:64])
    decl = session.get(Declaration, declaration_id)
    if decl is None:
        raise DeclarationNotFound(declaration_id)
    return decl


def reassign(
    session: Session, *, principal: Principal, declaration_id: str, officer_key_id: str | None, reason: str | None
) -> Declaration:
    """Give a queued declaration to an officer, or back to the unassigned pool (None), recorded in its history.

    A supervisor assigns any queued declaration to any active officer or supervisor. An officer may only take an
    unassigned one for itself, or hand its own back to the pool: never pick a colleague, never take a colleague's.
    """
    principal.require(Role.officer, Role.supervisor)
    decl = _in_review(session, declaration_id)
    if decl.status not in QUEUE_STATUSES or decl.queued_at is None:
        raise IllegalTransition(action="reassign", status=decl.status, allowed=service.officer_actions(decl.status))
    previous = decl.assigned_officer
    if officer_key_id == previous:
        return decl
    if principal.role is Role.officer:
        taking = previous is None and officer_key_id == principal.key_id
        handing_back = previous == principal.key_id and officer_key_id is None
        if not (taking or handing_back):
            raise Forbidden(
                "an officer takes an unassigned declaration for itself or hands its own back; "
                "any other assignment is a supervisor's",
                code="assignment.forbidden",
            )
    if officer_key_id is not None:
        key = session.get(ApiKey, officer_key_id)
        if key is None or key.role not in DECIDERS or key.revoked_at is not None:
            raise Unprocessable(f"'{officer_key_id}' is not an active officer key id", code="officer.unknown")
        routing.assign_to(session, decl, officer_key_id)
        if not routing.is_active_decider(session, officer_key_id):  # revoked while we waited for its roster row
            raise Unprocessable(f"'{officer_key_id}' is not an active officer key id", code="officer.unknown")
    else:
        decl.assigned_officer = None
    _record_assignment(session, decl, previous=previous, actor=principal.actor, reason=reason)
    session.flush()
    return decl


def _record_assignment(
    session: Session, decl: Declaration, *, previous: str | None, actor: str, reason: str | None
) -> None:
    """A history entry with no change of state (who moved the file, from whom to whom, and why) and the
    `declaration.assigned` event; touching the row changes its ETag."""
    decl.updated_at = utcnow()
    now = decl.assigned_officer
    text = f"assigned to {now or 'nobody'} (was {previous or 'nobody'})" + (f": {reason}" if reason else "")
    session.add(
        DeclarationTransition(
            declaration_id=decl.id,
            action="assign",
            from_status=decl.status,
            to_status=decl.status,
            actor=actor,
            reason=text,
            version=decl.version,
            at=decl.updated_at,
        )
    )
    record_event(
        session,
        type=ASSIGNED,
        subject=decl.id,
        # Which officers, and why: not in the event (the ledger is readable by the trader); the history has it.
        payload={"declaration_id": decl.id, "reassigned": previous is not None, "actor": service.public_actor(actor)},
    )


def release_revoked(session: Session, key: ApiKey, actor: str) -> list[Declaration]:
    """A revoked officer's (or supervisor's) key lets go of its work, in the revoking transaction: off duty, and
    every declaration still waiting for its decision goes to the next officer on duty in rotation, or back to the
    unassigned pool for a supervisor when nobody is; each move is recorded as a reassignment by `actor`."""
    if key.role not in DECIDERS:
        return []
    routing.off_duty(session, key.id)  # first: a filing giving it a declaration right now commits before we read
    waiting = session.scalars(
        select(Declaration)
        .where(
            Declaration.assigned_officer == key.id,
            Declaration.status.in_(QUEUE_STATUSES),
            Declaration.queued_at.is_not(None),
        )
        .order_by(Declaration.queued_at, Declaration.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).all()
    for decl in waiting:
        decl.assigned_officer = routing.take_next_officer(session)
        _record_assignment(session, decl, previous=key.id, actor=actor, reason=f"key {key.id} revoked")
    session.flush()
    return list(waiting)


on_revoke(release_revoked)


def _profile(session: Session, organisation_id: str) -> TraderProfile:
    from services.declarations.assessment import trader_profile

    return trader_profile(session, organisation_id)


def _compliance_feedback(session: Session, decl: Declaration, *, violation: bool) -> None:
    """Violations demote a trader one class at once; a run of clean reviewed clearances promotes it one class."""
    profile = _profile(session, decl.organisation_id)
    if violation:
        profile.violations += 1
        profile.compliance_class = DEMOTE[profile.compliance_class]
        profile.clean_since_change = 0
    else:
        profile.clean_since_change += 1
        if profile.clean_since_change >= CLEAN_CLEARANCES_TO_PROMOTE:
            profile.compliance_class = PROMOTE[profile.compliance_class]
            profile.clean_since_change = 0
    profile.updated_at = utcnow()


def check_authority(principal: Principal, decl: Declaration) -> None:
    """403 unless the caller may decide this declaration: its assignee, or a supervisor."""
    principal.require(Role.officer, Role.supervisor)
    if principal.role is Role.supervisor or decl.assigned_officer == principal.key_id:
        return
    if decl.assigned_officer is None:
        raise Forbidden(
            "this declaration is not assigned to anyone: take it first (POST its /assignment with your key id)",
            code="decision.unassigned",
        )
    raise Forbidden(
        "this declaration is assigned to another officer: only its assignee or a supervisor decides it",
        code="decision.not_assignee",
    )


def check_if_match(decl: Declaration, if_match: str | None) -> None:
    """428 without an ETag of the declaration, 412 unless it is the current one (what the officer reviewed)."""
    tag = (if_match or "").strip()
    if not tag or tag == "*":
        raise PreconditionRequired(
            "a decision requires If-Match with the ETag of the declaration as you reviewed it",
            code="decision.if_match_required",
        )
    if tag != service.etag(decl):
        raise PreconditionFailed(
            "the declaration changed since you reviewed it (amended, or acted on by someone else); "
            "read it again and decide on what it says now",
            code="decision.stale",
        )  # no current ETag here: the way to a new one is reading (reviewing) the declaration again


def decide(
    session: Session,
    *,
    principal: Principal,
    declaration_id: str,
    outcome: str,
    reason: str | None,
    violation: bool,
    if_match: str | None,
) -> Declaration:
    """Record a decision on the version the officer reviewed (each one an event with the officer and reason)."""
    principal.require(Role.officer, Role.supervisor)
    decl = _in_review(session, declaration_id)
    check_authority(principal, decl)
    check_if_match(decl, if_match)
    if (decl.status, outcome) not in service.TRANSITIONS or outcome not in service.OFFICER_DECISIONS:
        raise IllegalTransition(action=outcome, status=decl.status, allowed=service.officer_actions(decl.status))
    if outcome == "reject" and not reason:
        raise Unprocessable("a rejection needs a reason", code="decision.reason_required")
    if violation and outcome not in ("reject", "clear"):
        raise Unprocessable("violations are recorded with a clear or reject decision", code="decision.violation")
    if outcome == "clear" and not service.duties_assessed(decl):
        problems = sorted({p for line in (decl.duties or {}).get("lines", []) for p in line.get("problems", [])})
        raise Unprocessable(
            "duties could not be assessed (" + "; ".join(problems or ["no duty bill"]) + "): a declaration is "
            "cleared only with its duties; request documents so the trader amends it, or reject it",
            code="decision.duties_unassessed",
        )
    after_inspection = decl.status == Status.inspection
    text = reason or ""
    if after_inspection:
        text = f"inspection result: {'violation found' if violation else 'compliant'}" + (
            f"; {reason}" if reason else ""
        )
    service.transition(session, decl=decl, action=outcome, actor=principal.actor, reason=text or None)
    if outcome in ("clear", "reject"):
        found = violation or (outcome == "reject" and after_inspection)
        _compliance_feedback(session, decl, violation=found)
        # The label the learned model is measured (and can be trained) on.
        modelserving.record_outcome(session, decl, outcome=outcome, violation=found, after_inspection=after_inspection)
        if after_inspection and crossborder.correlation_of(decl):
            # One physical inspection can serve both sides: its outcome goes to the partner (controlResult).
            record_events(session, [crossborder.control_result(
                decl, outcome="violation" if found else "compliant",
                findings=[{"code": "inspection", "detail": text}], actor=principal.actor, now=utcnow())])  # fmt: skip
    if outcome == "clear":
        service.settle(session, decl)
    return decl


def store_document(
    session: Session,
    *,
    principal: Principal,
    declaration_id: str,
    filename: str,
    content_type: str,
    data: bytes,
    storage_dir: Path,
) -> DeclarationDocument:
    """Keep a trader's document (content-addressed on disk); answering a documents request returns it to review."""
    organisation_id = service._require_trader_of(principal)
    if not service.ID_SHAPE.match(declaration_id):
        raise DeclarationNotFound(declaration_id[:64])
    decl = session.scalar(
        select(Declaration).where(Declaration.id == declaration_id, Declaration.organisation_id == organisation_id)
    )
    if decl is None:
        raise DeclarationNotFound(declaration_id)
    if decl.status not in DOCUMENT_STATUSES:
        raise IllegalTransition(
            action="upload documents", status=decl.status, allowed=service.allowed_actions(decl.status)
        )
    if not data:
        raise Unprocessable("the uploaded file is empty", code="document.empty")
    digest = hashlib.sha256(data).hexdigest()
    # Before anything is recorded: a disk that cannot take it answers 503/507 and the transaction rolls back.
    write_once(storage_dir / digest[:2] / digest, data, what="document")
    doc = DeclarationDocument(
        declaration_id=decl.id,
        # Cleaned once, here: every listing and download shows this name; the bytes stay as sent (the SHA-256).
        filename=display_name(filename),
        content_type=content_type.replace("\x00", "")[:100] or "application/octet-stream",
        size_bytes=len(data),
        sha256=digest,
        uploaded_by=principal.actor,
    )
    session.add(doc)
    if decl.status == Status.awaiting_documents:
        service.transition(
            session,
            decl=decl,
            action="provide_documents",
            actor=principal.actor,
            reason=f"document {digest[:12]}",
            trader_only=True,
        )
    else:
        # A new document changes what an officer reviews: touching the row changes its ETag, so a decision taken
        # on the documents seen before is 412, like one taken on an earlier body.
        decl.updated_at = utcnow()
    session.flush()
    return doc


def document_path(storage_dir: Path, doc: DeclarationDocument) -> Path:
    """Where a document's bytes are."""
    return storage_dir / doc.sha256[:2] / doc.sha256
