"""HTTP endpoints of the learned risk models: upload, list, dry run, shadow, activate, roll back, drift."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request
from fastapi import Path as PathParam
from starlette.concurrency import run_in_threadpool

from services.declarations import riskmodels
from services.declarations.endpoints import PROBLEMS, problems
from services.kernel.deps import CurrentAdmin, CurrentOfficer, SessionDep
from services.kernel.errors import PayloadTooLarge
from services.kernel.schemas import Schema

router = APIRouter(prefix="/api/v1/risk/models", tags=["risk"])
VersionPath = Annotated[str, PathParam(pattern=r"^[0-9A-Za-z.\-_]{1,32}$")]
EMPTY = Body(openapi_examples={"empty": {"value": {}}})


class RiskModelOut(Schema):
    """A stored learned risk model (its file is not served back)."""

    version: str
    sha256: str
    size_bytes: int
    state: str
    value_currency: str
    info: dict[str, Any]
    created_by: str
    created_at: dt.datetime
    state_changed_by: str | None
    state_changed_at: dt.datetime | None
    previous_version: str | None
    dry_run: dict[str, Any] | None


@router.post(
    "",
    status_code=201,
    response_model=RiskModelOut,
    responses={**PROBLEMS, **problems(413)},
    summary="Upload a model",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/octet-stream": {
                    "schema": {"type": "string", "format": "binary"},
                    "example": "(the bytes of var/risk.onnx, as written by smartgate risk model train)",
                }
            },
        }
    },
)
async def upload(
    request: Request,
    session: SessionDep,
    principal: CurrentAdmin,
    version: Annotated[str, Query(pattern=r"^[0-9A-Za-z.\-_]{1,32}$", description="The new model's version")],
    value_currency: Annotated[
        str, Query(pattern=r"^[A-Z]{3}$", description="Currency of the training data's values (KCS: KRW)")
    ] = "VND",
) -> RiskModelOut:
    """Store a model written by `smartgate risk model train` (the ONNX file as the request body) as a new,
    inactive version. Dry run it, shadow it, then activate it."""
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > riskmodels.MAX_MODEL_BYTES:
            raise PayloadTooLarge(f"a model file is at most {riskmodels.MAX_MODEL_BYTES} bytes")
    row = await run_in_threadpool(
        riskmodels.upload,
        session,
        principal=principal,
        version=version,
        data=bytes(data),
        value_currency=value_currency,
    )
    return RiskModelOut.model_validate(row)


@router.get("", response_model=list[RiskModelOut], responses=PROBLEMS, summary="List models")
def listing(session: SessionDep, principal: CurrentOfficer) -> list[RiskModelOut]:
    """Every stored model, newest first, with its state (stored, shadow, active, retired)."""
    return [RiskModelOut.model_validate(r) for r in riskmodels.listing(session)]


@router.get("/drift", responses=PROBLEMS, summary="Drift report")
def drift(
    session: SessionDep,
    principal: CurrentOfficer,
    weeks: Annotated[int, Query(ge=1, le=104)] = 12,
    version: Annotated[str | None, Query(pattern=r"^[0-9A-Za-z.\-_]{1,32}$")] = None,
) -> dict[str, Any]:
    """Per model and week: precision of model-selected inspections beside the rules', exploration hit rate, PSI
    of the scores; alarms when the model's precision falls below the rules'. Supervisors and admins."""
    return riskmodels.drift(session, principal=principal, weeks=weeks, version=version)


@router.post("/rollback", response_model=RiskModelOut | None, responses=PROBLEMS, summary="Roll back")
def rollback(
    session: SessionDep, principal: CurrentAdmin, _body: Annotated[dict[str, Any] | None, EMPTY] = None
) -> RiskModelOut | None:
    """Retire the active model and reactivate the one it replaced (null: none, the rules alone select)."""
    row = riskmodels.rollback(session, principal=principal)
    return RiskModelOut.model_validate(row) if row is not None else None


@router.get("/{version}", response_model=RiskModelOut, responses=PROBLEMS, summary="Get a model")
def get(version: VersionPath, session: SessionDep, principal: CurrentOfficer) -> RiskModelOut:
    """A stored model: state, training info, last dry run."""
    return RiskModelOut.model_validate(riskmodels.get(session, version))


@router.post("/{version}/dry-run", responses=PROBLEMS, summary="Dry run a model")
def dry_run(
    version: VersionPath,
    session: SessionDep,
    principal: CurrentOfficer,
    limit: Annotated[int, Query(ge=1, le=20000)] = 5000,
    threshold: Annotated[float | None, Query(gt=0, lt=1)] = None,
    _body: Annotated[dict[str, Any] | None, EMPTY] = None,
) -> dict[str, Any]:
    """Score the most recent registered declarations: which the model would have selected (at the active rule
    set's threshold unless given), and the precision of past inspections among them."""
    return riskmodels.dry_run(session, principal=principal, version=version, limit=limit, threshold=threshold)


@router.post("/{version}/shadow", response_model=RiskModelOut, responses=PROBLEMS, summary="Shadow a model")
def shadow(
    version: VersionPath,
    session: SessionDep,
    principal: CurrentAdmin,
    _body: Annotated[dict[str, Any] | None, EMPTY] = None,
) -> RiskModelOut:
    """Score and record every new registration with this model, with no effect on channels."""
    return RiskModelOut.model_validate(riskmodels.shadow(session, principal=principal, version=version))


@router.post("/{version}/activate", response_model=RiskModelOut, responses=PROBLEMS, summary="Activate a model")
def activate(
    version: VersionPath,
    session: SessionDep,
    principal: CurrentAdmin,
    _body: Annotated[dict[str, Any] | None, EMPTY] = None,
) -> RiskModelOut:
    """Combine this model with the rules from now on, as the active rule set's `model:` block says (needs a dry
    run first). The model active until now is what a rollback returns to."""
    return RiskModelOut.model_validate(riskmodels.activate(session, principal=principal, version=version))
