"""Officer review: duty roster, queue, decisions, documents, payments and the compliance feedback they drive."""

from __future__ import annotations

import hashlib
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.declarations import routing, service
from services.declarations.events import ASSIGNED, PAID
from services.declarations.exceptions import DeclarationNotFound, IllegalTransition
from services.declarations.models import Declaration, DeclarationDocument, OfficerDuty, Payment, TraderProfile
from services.declarations.schemas import Status
from services.kernel.auth import ApiKey, Principal, Role
from services.kernel.blobs import write_once
from services.kernel.database import utcnow
from services.kernel.errors import Conflict, Unprocessable
from services.kernel.filenames import display_name
from services.kernel.outbox import record_event

QUEUE_STATUSES = (Status.submitted.value, Status.awaiting_documents.value, Status.inspection.value)
CLEAN_CLEARANCES_TO_PROMOTE = 20
DEMOTE = {"A": "B", "B": "C", "C": "C"}
PROMOTE = {"C": "B", "B": "A", "A": "A"}
DOCUMENT_STATUSES = (Status.draft, Status.submitted, Status.awaiting_documents, Status.inspection)
PAYABLE_STATUSES = (Status.submitted, Status.awaiting_documents, Status.inspection, Status.cleared)


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
    principal.require(Role.officer, Role.admin)
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


def reassign(session: Session, *, principal: Principal, declaration_id: str, officer_key_id: str) -> Declaration:
    """Give a queued declaration to another officer."""
    principal.require(Role.officer, Role.admin)
    decl = _in_review(session, declaration_id)
    if decl.status not in QUEUE_STATUSES or decl.queued_at is None:
        raise IllegalTransition(action="reassign", status=decl.status, allowed=service.officer_actions(decl.status))
    key = session.get(ApiKey, officer_key_id)
    if key is None or key.role != Role.officer.value or key.revoked_at is not None:
        raise Unprocessable(f"'{officer_key_id}' is not an active officer key id", code="officer.unknown")
    duty = session.get(OfficerDuty, officer_key_id)
    if duty is None:
        duty = OfficerDuty(officer_key_id=officer_key_id, on_duty=False, assigned_count=0)
        session.add(duty)
    previous = decl.assigned_officer
    routing.assign(session, decl, duty)
    record_event(
        session,
        type=ASSIGNED,
        subject=decl.id,
        # Which officers: not in the event (the ledger is readable by the trader); the declaration row has it.
        payload={
            "declaration_id": decl.id,
            "reassigned": previous != officer_key_id,
            "actor": service.public_actor(principal.actor),
        },  # fmt: skip
    )
    return decl


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


def decide(
    session: Session, *, principal: Principal, declaration_id: str, outcome: str, reason: str | None, violation: bool
) -> Declaration:
    """Record an officer's decision on a queued declaration (each one an event with the officer and reason)."""
    principal.require(Role.officer)
    decl = _in_review(session, declaration_id)
    if (decl.status, outcome) not in service.TRANSITIONS or outcome not in service.OFFICER_DECISIONS:
        raise IllegalTransition(action=outcome, status=decl.status, allowed=service.officer_actions(decl.status))
    if outcome == "reject" and not reason:
        raise Unprocessable("a rejection needs a reason", code="decision.reason_required")
    if violation and outcome not in ("reject", "clear"):
        raise Unprocessable("violations are recorded with a clear or reject decision", code="decision.violation")
    after_inspection = decl.status == Status.inspection
    text = reason or ""
    if after_inspection:
        text = f"inspection result: {'violation found' if violation else 'compliant'}" + (
            f"; {reason}" if reason else ""
        )
    service.transition(session, decl=decl, action=outcome, actor=principal.actor, reason=text or None)
    if outcome in ("clear", "reject"):
        _compliance_feedback(session, decl, violation=violation or (outcome == "reject" and after_inspection))
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
    session.flush()
    return doc


def document_path(storage_dir: Path, doc: DeclarationDocument) -> Path:
    """Where a document's bytes are."""
    return storage_dir / doc.sha256[:2] / doc.sha256


def record_payment(
    session: Session, *, principal: Principal, declaration_id: str, bank_reference: str, amount_vnd: int
) -> Declaration:
    """Record a duty payment (stand-in for the e-payment gateway); cleared and paid in full → released."""
    if not service.ID_SHAPE.match(declaration_id):
        raise DeclarationNotFound(declaration_id[:64])
    if principal.role is Role.trader:
        decl = session.scalar(
            select(Declaration).where(
                Declaration.id == declaration_id, Declaration.organisation_id == principal.organisation_id
            )
        )
    else:
        principal.require(Role.admin)
        decl = session.get(Declaration, declaration_id)
    if decl is None:
        raise DeclarationNotFound(declaration_id)
    if decl.status not in PAYABLE_STATUSES or decl.channel is None:
        raise IllegalTransition(action="pay", status=decl.status, allowed=service.allowed_actions(decl.status))
    if session.scalar(select(Payment.id).where(Payment.bank_reference == bank_reference)) is not None:
        raise Conflict(f"bank reference {bank_reference} was already recorded", code="payment.duplicate")
    session.add(
        Payment(
            declaration_id=decl.id, bank_reference=bank_reference, amount_vnd=amount_vnd, recorded_by=principal.actor
        )
    )
    try:
        session.flush()
    except IntegrityError as exc:
        raise Conflict(f"bank reference {bank_reference} was already recorded", code="payment.duplicate") from exc
    decl.paid_vnd += amount_vnd
    record_event(
        session,
        type=PAID,
        subject=decl.id,
        payload={
            "declaration_id": decl.id,
            "number": decl.number,
            "organisation_id": decl.organisation_id,
            "bank_reference_sha256": hashlib.sha256(bank_reference.encode()).hexdigest(),
            "amount_vnd": amount_vnd,
            "paid_vnd": decl.paid_vnd,
            "due_vnd": decl.duties_due_vnd,
            "actor": service.public_actor(principal.actor),
        },
    )
    service.settle(session, decl)
    return decl
