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
    own record of money received is confirmed at once, and rejects other organisations' claims of its reference.

    A reference is refused (409) only when the declaration's own organisation has a live (not rejected) payment
    with it, or, for the treasury, when it is confirmed already. Another organisation's claim of the same reference
    changes nothing in a trader's answer: the claim is recorded like any other and the treasury reconciles it
    against its statement, as an e-payment reconciliation does, so no answer tells a trader what references other
    organisations used (a 409 would: a squatter, or a prober, would learn the reference is someone's).
    """
    principal.require(Role.trader, Role.treasury)
    decl = _declaration(session, principal, declaration_id)
    if decl.status not in PAYABLE_STATUSES or decl.channel is None:
        raise IllegalTransition(action="pay", status=decl.status, allowed=service.allowed_actions(decl.status))
    _within_exact_range(decl, amount_vnd)
    by_treasury = principal.role is Role.treasury
    if by_treasury:
        _lock_reference(session, bank_reference)
        confirmed = session.scalar(
            select(Payment.id).where(Payment.bank_reference == bank_reference, Payment.status == CONFIRMED)
        )
        if confirmed is not None:
            raise _confirmed_already(bank_reference, confirmed)
    own = session.scalar(
        select(Payment).where(
            Payment.bank_reference == bank_reference,
            Payment.organisation_id == decl.organisation_id,
            Payment.status != REJECTED,
        )
    )
    if own is not None:
        if by_treasury:  # staff: it may see which payment, and what to do with it
            raise Conflict(
                f"bank reference {bank_reference} is claimed by payment {own.id}: confirm or reject that claim",
                code="payment.duplicate",
                payment_id=own.id,
            )
        raise _duplicate(bank_reference)
    payment = Payment(
        declaration_id=decl.id,
        organisation_id=decl.organisation_id,
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
    except IntegrityError as exc:  # the same organisation recording it at the same time, or a confirmation
        raise _duplicate(bank_reference) from exc
    if by_treasury:
        _reject_other_claims(session, payment, actor=principal.actor)
        _credit(session, decl, payment, actor=principal.actor)
    return payment, decl


def _lock_reference(session: Session, bank_reference: str) -> None:
    """Before the treasury decides anything about a reference, lock its live payments in one order (PostgreSQL):
    two confirmations of claims of one reference then queue instead of deadlocking on each other's rows and the
    unique index of confirmed references; the second sees what the first decided."""
    session.execute(
        select(_PAYMENTS.c.id)
        .where(_PAYMENTS.c.bank_reference == bank_reference, _PAYMENTS.c.status != REJECTED)
        .order_by(_PAYMENTS.c.id)
        .with_for_update()
    ).all()


def _duplicate(bank_reference: str) -> Conflict:
    return Conflict(f"bank reference {bank_reference} was already recorded", code="payment.duplicate")


def _confirmed_already(bank_reference: str, payment_id: str | None) -> Conflict:
    """The treasury's answer (staff: it may see which payment): the money behind a reference counts once."""
    if payment_id is None:
        return Conflict(f"bank reference {bank_reference} is already confirmed", code="payment.duplicate")
    return Conflict(
        f"bank reference {bank_reference} is already confirmed (payment {payment_id})",
        code="payment.duplicate",
        payment_id=payment_id,
    )


def _reject_other_claims(session: Session, payment: Payment, *, actor: str) -> None:
    """The treasury's record of a reference wins: other organisations' claims of it are rejected, each with its
    reason and a `declaration.payment_rejected` event. The reason says only that the claim does not match."""
    others = session.scalars(
        select(Payment)
        .where(
            Payment.bank_reference == payment.bank_reference,
            Payment.organisation_id != payment.organisation_id,
            Payment.status == CLAIMED,
        )
        .order_by(Payment.paid_at, Payment.id)
    ).all()
    reason = f"the treasury's record of bank reference {payment.bank_reference} does not match this claim"
    for other in others:
        done = session.execute(
            update(_PAYMENTS)
            .where(_PAYMENTS.c.id == other.id, _PAYMENTS.c.status == CLAIMED)
            .values(status=REJECTED, decided_by=actor, decided_at=utcnow(), decision_reason=reason)
        )
        if done.rowcount != 1:  # type: ignore[attr-defined]  # decided meanwhile by someone else
            continue
        session.refresh(other)
        decl = session.get(Declaration, other.declaration_id)
        assert decl is not None  # a foreign key
        record_event(
            session,
            type=PAYMENT_REJECTED,
            subject=decl.id,
            payload={**_about(decl, other), "reason": reason, "actor": public_actor(actor)},
        )


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
    """The treasury confirms the money arrived: it counts towards the duties, and may release the goods; other
    organisations' claims of the same reference are rejected (409 if the reference is confirmed already)."""
    principal.require(Role.treasury)
    payment = _payment(session, payment_id)
    _lock_reference(session, payment.bank_reference)
    try:
        _decide(session, payment, status=CONFIRMED, actor=principal.actor, reason=None)
    except IntegrityError as exc:  # another payment of this reference is confirmed (or being confirmed now)
        raise _confirmed_already(payment.bank_reference, None) from exc
    decl = session.get(Declaration, payment.declaration_id)
    assert decl is not None  # a foreign key
    _reject_other_claims(session, payment, actor=principal.actor)
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
