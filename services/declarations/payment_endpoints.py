"""HTTP endpoints of duty payments: traders claim, the treasury confirms or rejects, confirmation releases."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query
from pydantic import Field, StrictInt

from services.declarations import payments
from services.declarations.endpoints import PROBLEMS
from services.declarations.models import Declaration as DeclarationRow
from services.declarations.models import Payment
from services.declarations.selectivity import public_actor
from services.kernel.auth import Principal, Role
from services.kernel.deps import CurrentPrincipal, SessionDep
from services.kernel.responses import JSONResponse
from services.kernel.schemas import InputSchema, Schema

router = APIRouter(tags=["payments"])


class PaymentIn(InputSchema):
    """A duty payment: the bank's reference and the amount in VND (a whole number: booleans, fractions and strings
    are refused)."""

    model_config = InputSchema.model_config | {
        "json_schema_extra": {"examples": [{"bank_reference": "VCB-20261128-000123", "amount_vnd": 1234567}]}
    }

    bank_reference: Annotated[str, Field(min_length=4, max_length=64, pattern=r"^[A-Za-z0-9\-_/.]+$")] = Field(
        description="The bank's reference of the transfer to the State Treasury account (4-64 letters, digits, "
        "`-`, `_`, `/`, `.`); the treasury matches it against its statement.",
        examples=["VCB-20261128-000123"],
    )
    amount_vnd: Annotated[StrictInt, Field(gt=0, le=10**15)] = Field(
        description="Amount transferred, in whole VND (an integer, no decimals).", examples=[1234567]
    )


class RejectIn(InputSchema):
    """Why the treasury refuses a claimed payment."""

    model_config = InputSchema.model_config | {
        "json_schema_extra": {"examples": [{"reason": "no credit with this reference on the treasury account"}]}
    }

    reason: Annotated[str, Field(min_length=3, max_length=1000)] = Field(
        description="Why the payment is refused (3-1000 characters); shown to the trader.",
        examples=["no credit with this reference on the treasury account"],
    )


class PaymentOut(Schema):
    """A payment and where its declaration stands."""

    id: str = Field(description="Identifier of the payment (UUID).", examples=["0192f0c4-7d55-7a3e-9c1b-3b8f4e2a9d10"])
    declaration_id: str = Field(
        description="The declaration the payment is for (UUID).", examples=["0192f0c4-7d55-7a3e-9c1b-3b8f4e2a9d10"]
    )
    bank_reference: str = Field(description="The bank's reference, as claimed.", examples=["VCB-20261128-000123"])
    amount_vnd: int = Field(description="Amount claimed, in whole VND.", examples=[1234567])
    status: Literal["claimed", "confirmed", "rejected"] = Field(
        description="claimed: reported by the trader, not counted yet; confirmed: the treasury saw the money "
        "(counted towards the duties); rejected: the treasury did not"
    )
    recorded_by: str = Field(description="Who claimed it (`<role>:<key id>`).", examples=["trader:k1a2b3"])
    recorded_at: dt.datetime = Field(
        description="When it was claimed (ISO 8601, UTC offset).", examples=["2026-11-28T08:31:12+07:00"]
    )
    decided_by: str | None = Field(
        description="The treasury key that confirmed or rejected it; null while claimed.",
        examples=["treasury:f1e2d3c4b5a6"],
    )
    decided_at: dt.datetime | None = Field(
        description="When it was confirmed or rejected; null while claimed.", examples=["2026-11-28T08:31:12+07:00"]
    )
    reason: str | None = Field(
        description="Why the treasury rejected it; null otherwise.",
        examples=["no credit with this reference on the treasury account"],
    )
    declaration_status: str = Field(description="The declaration's status after this payment.", examples=["released"])
    paid_vnd: int = Field(description="Confirmed payments of the declaration so far", examples=[12192000])
    duties_due_vnd: int = Field(
        description="Duties and taxes of the declaration still unpaid, in whole VND.", examples=[0]
    )


def _out(payment: Payment, decl: DeclarationRow, principal: Principal) -> dict[str, Any]:
    # A trader sees who recorded and decided by role (its own keys as they are), never staff key ids.
    name = (lambda actor: actor) if principal.role is not Role.trader else public_actor
    return PaymentOut(
        id=payment.id,
        declaration_id=payment.declaration_id,
        bank_reference=payment.bank_reference,
        amount_vnd=payment.amount_vnd,
        status=payment.status,  # type: ignore[arg-type]
        recorded_by=name(payment.recorded_by),
        recorded_at=payment.paid_at,
        decided_by=name(payment.decided_by) if payment.decided_by else None,
        decided_at=payment.decided_at,
        reason=payment.decision_reason,
        declaration_status=decl.status,
        paid_vnd=decl.paid_vnd,
        duties_due_vnd=decl.duties_due_vnd,
    ).model_dump(mode="json")


@router.post(
    "/api/v1/declarations/{declaration_id}/payments",
    status_code=201,
    response_model=PaymentOut,
    responses=PROBLEMS,
    summary="Record a duty payment",
)
def pay(declaration_id: str, body: PaymentIn, session: SessionDep, principal: CurrentPrincipal) -> JSONResponse:
    """A trader's payment is `claimed`: nothing is released until the treasury confirms it. A treasury key records
    money it received as `confirmed` at once (other organisations' claims of that reference are rejected).
    Confirmed payments covering the duties of a cleared declaration release it. A bank reference is 409 when the
    declaration's organisation already has a payment with it that is not rejected, or (for the treasury) when it
    is confirmed already; another organisation's use of a reference never shows in a trader's answer."""
    payment, decl = payments.record(
        session,
        principal=principal,
        declaration_id=declaration_id,
        bank_reference=body.bank_reference,
        amount_vnd=body.amount_vnd,
    )
    return JSONResponse(
        _out(payment, decl, principal), status_code=201, headers={"Location": f"/api/v1/payments/{payment.id}"}
    )


@router.get(
    "/api/v1/declarations/{declaration_id}/payments",
    response_model=list[PaymentOut],
    responses=PROBLEMS,
    summary="A declaration's payments",
)
def list_payments(declaration_id: str, session: SessionDep, principal: CurrentPrincipal) -> JSONResponse:
    """Every payment recorded for the declaration, oldest first, with its state."""
    rows = payments.of_declaration(session, principal=principal, declaration_id=declaration_id)
    decl = session.get(DeclarationRow, declaration_id)
    assert decl is not None
    return JSONResponse([_out(p, decl, principal) for p in rows])


@router.get("/api/v1/payments", response_model=list[PaymentOut], responses=PROBLEMS, summary="Payments by state")
def worklist(
    session: SessionDep,
    principal: CurrentPrincipal,
    status: Literal["claimed", "confirmed", "rejected"] = "claimed",
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> JSONResponse:
    """The treasury's worklist: payments in a state (claims waiting by default), oldest first."""
    rows = payments.worklist(session, principal=principal, status=status, limit=limit)
    decls = {p.declaration_id: session.get(DeclarationRow, p.declaration_id) for p in rows}
    return JSONResponse([_out(p, d, principal) for p in rows if (d := decls[p.declaration_id]) is not None])


@router.get("/api/v1/payments/{payment_id}", response_model=PaymentOut, responses=PROBLEMS, summary="A payment")
def get_payment(payment_id: str, session: SessionDep, principal: CurrentPrincipal) -> JSONResponse:
    """One payment and its state (its trader, customs, the treasury, admins)."""
    payment, decl = payments.get(session, principal=principal, payment_id=payment_id)
    return JSONResponse(_out(payment, decl, principal))


@router.post(
    "/api/v1/payments/{payment_id}/confirm",
    response_model=PaymentOut,
    responses=PROBLEMS,
    summary="Confirm a claimed payment",
)
def confirm(
    payment_id: str,
    session: SessionDep,
    principal: CurrentPrincipal,
    _body: Annotated[dict[str, Any] | None, Body(openapi_examples={"empty": {"value": {}}})] = None,
) -> JSONResponse:
    """Treasury only: the money arrived. It counts towards the duties (`declaration.paid`), and a cleared
    declaration now paid in full is released; other organisations' claims of the same bank reference are rejected.
    A payment already confirmed or rejected, or whose reference is confirmed already, is 409."""
    payment, decl = payments.confirm(session, principal=principal, payment_id=payment_id)
    return JSONResponse(_out(payment, decl, principal))


@router.post(
    "/api/v1/payments/{payment_id}/reject",
    response_model=PaymentOut,
    responses=PROBLEMS,
    summary="Reject a claimed payment",
)
def reject(payment_id: str, body: RejectIn, session: SessionDep, principal: CurrentPrincipal) -> JSONResponse:
    """Treasury only: no such money arrived. The claim never counts; the trader sees the reason."""
    payment, decl = payments.reject(session, principal=principal, payment_id=payment_id, reason=body.reason)
    return JSONResponse(_out(payment, decl, principal))
