"""Duty payments: a trader claims one, the treasury (the bank / State Treasury side of e-payment) confirms or
rejects it; only confirmed money counts towards the duties, so only confirmation can release the goods."""

from __future__ import annotations

import hashlib

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.declarations import service
from services.declarations.events import PAID, PAYMENT_REJECTED
from services.declarations.exceptions import DeclarationNotFound, IllegalTransition
from services.declarations.models import Declaration, Payment
from services.declarations.schemas import Status
from services.declarations.selectivity import public_actor
from services.kernel.auth import Principal, Role
from services.kernel.database import table_of, utcnow
from services.kernel.errors import Conflict, NotFound, Unprocessable
from services.kernel.outbox import MAX_EXACT_INTEGER, record_event

CLAIMED, CONFIRMED, REJECTED = "claimed", "confirmed", "rejected"
PAYABLE_STATUSES = (Status.submitted, Status.awaiting_documents, Status.inspection, Status.cleared)
# Who may read a declaration's payments besides its own trader.
READERS = (Role.officer, Role.supervisor, Role.treasury, Role.admin)
_PAYMENTS = table_of(Payment)


def _declaration(session: Session, principal: Principal, declaration_id: str) -> Declaration:
    """The declaration a payment is for: a trader's own organisation's, else any (404 when neither)."""
    if not service.ID_SHAPE.match(declaration_id):
        raise DeclarationNotFound(declaration_id[:64])
    stmt = select(Declaration).where(Declaration.id == declaration_id)
    if principal.role is Role.trader:
        stmt = stmt.where(Declaration.organisation_id == principal.organisation_id)
    decl = session.scalar(stmt)
    if decl is None:
        raise DeclarationNotFound(declaration_id)
    return decl


def record(
    session: Session, *, principal: Principal, declaration_id: str, bank_reference: str, amount_vnd: int
) -> tuple[Payment, Declaration]:
    """Record a payment: a trader's is claimed (it proves nothing until the treasury confirms it); the treasury's
    own record of money received is confirmed at once."""
    principal.require(Role.trader, Role.treasury)
    decl = _declaration(session, principal, declaration_id)
    if decl.status not in PAYABLE_STATUSES or decl.channel is None:
        raise IllegalTransition(action="pay", status=decl.status, allowed=service.allowed_actions(decl.status))
    if session.scalar(select(Payment.id).where(Payment.bank_reference == bank_reference)) is not None:
        raise Conflict(f"bank reference {bank_reference} was already recorded", code="payment.duplicate")
    _within_exact_range(decl, amount_vnd)
    by_treasury = principal.role is Role.treasury
    payment = Payment(
        declaration_id=decl.id,
        bank_reference=bank_reference,
        amount_vnd=amount_vnd,
        recorded_by=principal.actor,
        paid_at=utcnow(),
        status=CONFIRMED if by_treasury else CLAIMED,
        decided_by=principal.actor if by_treasury else None,
        decided_at=utcnow() if by_treasury else None,
    )
    session.add(payment)
    try:
        session.flush()
    except IntegrityError as exc:
        raise Conflict(f"bank reference {bank_reference} was already recorded", code="payment.duplicate") from exc
    if by_treasury:
        _credit(session, decl, payment, actor=principal.actor)
    return payment, decl


def _payment(session: Session, payment_id: str) -> Payment:
    payment = session.get(Payment, payment_id) if service.ID_SHAPE.match(payment_id) else None
    if payment is None:
        raise NotFound(f"payment {payment_id[:64]} not found", code="payment.not_found")
    return payment


def _decide(session: Session, payment: Payment, *, status: str, actor: str, reason: str | None) -> None:
    """Move a claimed payment to `status`; of two racing decisions on it, the second finds it decided (409)."""
    done = session.execute(
        update(_PAYMENTS)
        .where(_PAYMENTS.c.id == payment.id, _PAYMENTS.c.status == CLAIMED)
        .values(status=status, decided_by=actor, decided_at=utcnow(), decision_reason=reason)
    )
    if done.rowcount != 1:  # type: ignore[attr-defined]
        session.refresh(payment)
        raise Conflict(
            f"payment {payment.id} is {payment.status}, not claimed",
            code="payment.not_claimed",
            payment_status=payment.status,
        )
    session.refresh(payment)


def confirm(session: Session, *, principal: Principal, payment_id: str) -> tuple[Payment, Declaration]:
    """The treasury confirms the money arrived: it counts towards the duties, and may release the goods."""
    principal.require(Role.treasury)
    payment = _payment(session, payment_id)
    _decide(session, payment, status=CONFIRMED, actor=principal.actor, reason=None)
    decl = session.get(Declaration, payment.declaration_id)
    assert decl is not None  # a foreign key
    _credit(session, decl, payment, actor=principal.actor)
    return payment, decl


def reject(session: Session, *, principal: Principal, payment_id: str, reason: str) -> tuple[Payment, Declaration]:
    """The treasury found no such money (or another amount): the claim never counts."""
    principal.require(Role.treasury)
    payment = _payment(session, payment_id)
    _decide(session, payment, status=REJECTED, actor=principal.actor, reason=reason)
    decl = session.get(Declaration, payment.declaration_id)
    assert decl is not None
    record_event(
        session,
        type=PAYMENT_REJECTED,
        subject=decl.id,
        payload={**_about(decl, payment), "reason": reason, "actor": public_actor(principal.actor)},
    )
    return payment, decl


def _about(decl: Declaration, payment: Payment) -> dict[str, object]:
    """What every payment event says of the declaration and the payment (staff only by role: traders read it)."""
    return {
        "declaration_id": decl.id,
        "number": decl.number,
        "organisation_id": decl.organisation_id,
        "payment_id": payment.id,
        "amount_vnd": payment.amount_vnd,
    }


def _within_exact_range(decl: Declaration, amount_vnd: int) -> None:
    """Confirmed money is a JSON integer in the `paid` event, hence in the ledger: it must stay exact in RFC 8785
    (at most 2^53 - 1). A claim that could never be confirmed is refused at once; a confirmation, when it is made."""
    if decl.paid_vnd + amount_vnd > MAX_EXACT_INTEGER:
        raise Unprocessable(
            f"{decl.paid_vnd} VND confirmed plus {amount_vnd} VND would exceed {MAX_EXACT_INTEGER} VND",
            code="amount_vnd.too_large",
            errors=[{"pointer": "/amount_vnd", "code": "amount_vnd.too_large",
                     "detail": f"confirmed payments of a declaration add up to at most {MAX_EXACT_INTEGER} VND"}],
        )  # fmt: skip


def _credit(session: Session, decl: Declaration, payment: Payment, *, actor: str) -> None:
    """Count confirmed money towards the duties (the `paid` event), then release if cleared and covered."""
    _within_exact_range(decl, payment.amount_vnd)
    decl.paid_vnd += payment.amount_vnd
    decl.updated_at = utcnow()
    record_event(
        session,
        type=PAID,
        subject=decl.id,
        payload={
            **_about(decl, payment),
            "bank_reference_sha256": hashlib.sha256(payment.bank_reference.encode()).hexdigest(),
            "paid_vnd": decl.paid_vnd,
            "due_vnd": decl.duties_due_vnd,
            "recorded_by": public_actor(payment.recorded_by),
            "actor": public_actor(actor),
        },
    )
    session.flush()
    service.settle(session, decl)


def of_declaration(session: Session, *, principal: Principal, declaration_id: str) -> list[Payment]:
    """A declaration's payments, oldest first (its trader, customs, the treasury and admins)."""
    if principal.role is not Role.trader:
        principal.require(*READERS)
    decl = _declaration(session, principal, declaration_id)
    return list(session.scalars(select(Payment).where(Payment.declaration_id == decl.id).order_by(Payment.paid_at)))


def get(session: Session, *, principal: Principal, payment_id: str) -> tuple[Payment, Declaration]:
    """One payment with its declaration; a trader sees only its organisation's (404 otherwise)."""
    if principal.role is not Role.trader:
        principal.require(*READERS)
    payment = _payment(session, payment_id)
    decl = _declaration(session, principal, payment.declaration_id)
    return payment, decl


def worklist(session: Session, *, principal: Principal, status: str, limit: int) -> list[Payment]:
    """Payments in `status`, oldest first: the treasury's list of claims to match against its statements."""
    principal.require(Role.treasury, Role.admin)
    stmt = select(Payment).where(Payment.status == status).order_by(Payment.paid_at, Payment.id).limit(limit)
    return list(session.scalars(stmt))
