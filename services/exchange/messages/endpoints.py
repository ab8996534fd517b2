"""HTTP endpoints of the message types: the Form E issuer's `/api/v1/exchange/origin-certificates`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter

from services.exchange.messages import origin_certificate
from services.exchange.messages.schemas import CertificateIn, CertificateList, CertificateOut
from services.kernel.auth import Principal, Role
from services.kernel.deps import CurrentPrincipal, SessionDep, require_roles
from services.kernel.responses import JSONResponse
from services.kernel.schemas import problems

router = APIRouter(prefix="/api/v1/exchange/origin-certificates", tags=["exchange"])
CurrentIssuer = Annotated[Principal, require_roles(Role.origin_issuer)]


def _json(row: origin_certificate.OriginCertificate) -> dict[str, object]:
    return CertificateOut.model_validate(row).model_dump(mode="json")


@router.post(
    "",
    status_code=201,
    response_model=CertificateOut,
    responses=problems(401, 403, 409, 422),
    summary="Issue an ACFTA Form E certificate of origin",
)
def issue_certificate(body: CertificateIn, session: SessionDep, principal: CurrentIssuer) -> JSONResponse:
    """Issue a Form E on the exporting side: stored here and sent to the importing administration
    (originCertificate), whose customs verify Form E claims against it. A number is issued once (409)."""
    row = origin_certificate.issue(session, principal=principal, body=body)
    return JSONResponse(
        _json(row), status_code=201, headers={"Location": f"/api/v1/exchange/origin-certificates/{row.number}"}
    )


@router.get(
    "/{number}",
    response_model=CertificateList,
    responses=problems(401, 403, 404, 422),
    summary="A Form E certificate, as issued and/or received",
)
def get_certificate(number: str, session: SessionDep, principal: CurrentPrincipal) -> JSONResponse:
    """The certificate issued here and/or received from the partner under this number (issuers, customs)."""
    rows = origin_certificate.get(session, principal=principal, number=number)
    return JSONResponse({"items": [_json(r) for r in rows]})
