"""HTTP endpoints of the declarations service: parse, authorise, delegate to service.py."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Query
from sqlalchemy import select
from sqlalchemy.orm import Session, object_session
from sqlalchemy.orm.exc import StaleDataError

from services.declarations import repository, riskmodels, service
from services.declarations.models import Declaration as DeclarationRow
from services.declarations.models import DeclarationTransition, RiskAssessment
from services.declarations.payments import PAYABLE_STATUSES
from services.declarations.schemas import (
    DOCUMENTED_EXAMPLE,
    EXPORT_EXAMPLE,
    AssessmentOut,
    CancelIn,
    DeclarationIn,
    History,
    Kind,
    ListStatus,
    OfficerDeclaration,
    OfficerDeclarationPage,
    TraderDeclaration,
    TraderDeclarationPage,
    Transition,
    VersionOut,
)
from services.kernel.auth import Role
from services.kernel.database import read_first
from services.kernel.deps import CurrentOfficer, CurrentPrincipal, CurrentTrader, RuntimeDep, SessionDep
from services.kernel.errors import PreconditionFailed, Unprocessable
from services.kernel.idempotency import (
    IdempotencyRecord,
    find_record,
    replay_or_conflict,
    request_fingerprint,
    save_response,
    validate_key,
)
from services.kernel.responses import JSONResponse
from services.kernel.schemas import problems

router = APIRouter(prefix="/api/v1/declarations", tags=["declarations"])


PROBLEMS = problems(401, 403, 404, 409, 422)
# Answers whose shape depends on the caller: a trader gets the trader view, officers and admins the officer view.
EITHER_VIEW = TraderDeclaration | OfficerDeclaration
OFFICER_ONLY = ("risk", "assigned_officer")


def officer_view(role: Role) -> bool:
    """Whether `role` sees how declarations were selected (customs staff do, traders and the gate do not)."""
    return role in (Role.officer, Role.supervisor, Role.admin)


def next_step(decl: DeclarationRow) -> str | None:
    """What the trader is to do next, in words (None once nothing is left to do)."""
    owed = max(decl.duties_due_vnd - decl.paid_vnd, 0)
    steps = {
        "draft": "complete the declaration and submit it",
        "submitted": "wait for customs: the declaration is under review",
        "awaiting_documents": "upload the documents customs asked for (the officer's reason is in the history), "
        "or amend the declaration",
        "inspection": "present the goods for physical inspection at the gate",
        "cleared": f"pay the {owed} VND of duties still due: the goods are released once paid in full",
        "released": "the goods may leave through the gate",
    }
    return steps.get(decl.status)


# What an officer's request asks of the trader, by the status it put the declaration in.
_REQUESTED = {"awaiting_documents": "provide_documents", "inspection": "present_goods_for_inspection"}


def next_steps(decl: DeclarationRow, request: DeclarationTransition | None) -> list[dict[str, Any]]:
    """What the trader must do next (`NextStep`s): submit a draft; provide the documents or present the goods an
    officer asked for, with the officer's reason (`request`, the transition that asked); pay the duties still due
    while payment is accepted (from registration until released). Nothing once cleared and paid."""
    steps: list[dict[str, Any]] = []
    if decl.status == "draft":
        steps.append({"action": "submit", "link": f"/api/v1/declarations/{decl.id}/submit"})
    action = _REQUESTED.get(decl.status)
    if action is not None:
        step: dict[str, Any] = {
            "action": action,
            "reason": request.reason if request else None,
            "since": request.at.isoformat() if request else None,
        }
        if action == "provide_documents":
            step["link"] = f"/api/v1/declarations/{decl.id}/documents"
        steps.append(step)
    owed = decl.duties_due_vnd - decl.paid_vnd
    if owed > 0 and decl.status in PAYABLE_STATUSES and decl.channel is not None:
        steps.append({"action": "pay_duties", "amount_vnd": owed, "link": f"/api/v1/declarations/{decl.id}/payments"})
    return steps


def views(session: Session, decls: list[DeclarationRow], *, role: Role) -> list[dict[str, Any]]:
    """`to_json` of a page of declarations, with the officers' requests they wait on read in one query."""
    requests = repository.requests_awaited(session, decls)
    return [to_json(d, role=role, requests=requests) for d in decls]


def to_json(
    decl: DeclarationRow, *, role: Role = Role.trader, requests: dict[str, DeclarationTransition] | None = None
) -> dict[str, Any]:
    """The API view of a stored declaration: `OfficerDeclaration` for customs staff, otherwise
    `TraderDeclaration`, without the risk assessment or the assigned officer (the body is returned as stored).

    `requests`: the officers' requests declarations wait on, by declaration id (`views` reads them for a page);
    left out, this declaration's is read from its session."""
    if requests is None:
        session = object_session(decl)
        requests = repository.requests_awaited(session, [decl]) if session is not None else {}
    customs = role in (Role.officer, Role.supervisor)
    actions = service.officer_actions(decl.status) if customs else service.allowed_actions(decl.status)
    view = {
        "id": decl.id,
        "number": decl.number,
        "status": decl.status,
        "kind": decl.kind,
        "border_gate": decl.border_gate,
        "organisation_id": decl.organisation_id,
        "version": decl.version,
        "etag": service.etag(decl),
        "body_sha256": decl.body_sha256,
        "body": decl.body,
        "created_at": decl.created_at.isoformat(),
        "updated_at": decl.updated_at.isoformat(),
        "submitted_at": decl.submitted_at.isoformat() if decl.submitted_at else None,
        "allowed_actions": actions,
        "channel": decl.channel,
        "duties": decl.duties,
        "duties_due_vnd": decl.duties_due_vnd,
        "paid_vnd": decl.paid_vnd,
        "next_step": next_step(decl),
        "next_steps": next_steps(decl, requests.get(decl.id)),
    }
    if officer_view(role):
        view |= {"risk": decl.risk, "assigned_officer": decl.assigned_officer}
    return view


def _respond(decl: DeclarationRow, status_code: int = 200, *, role: Role = Role.trader, **headers: str) -> JSONResponse:
    return JSONResponse(
        to_json(decl, role=role), status_code=status_code, headers={"ETag": service.etag(decl), **headers}
    )


@router.post(
    "",
    status_code=201,
    response_model=TraderDeclaration,
    responses={**PROBLEMS, **problems(400, 413)},
    summary="File a declaration",
)
def create_declaration(
    session: SessionDep,
    principal: CurrentTrader,
    runtime: RuntimeDep,
    body: Annotated[
        DeclarationIn,
        Body(
            openapi_examples={
                "lychee-export": {"value": EXPORT_EXAMPLE},
                "lychee-import": {"value": DOCUMENTED_EXAMPLE},
            }
        ),
    ],
    idempotency_key: Annotated[str | None, Header(description="Unique per intended declaration")] = None,
    submit: Annotated[bool, Query(description="Submit at once instead of keeping a draft")] = False,
) -> JSONResponse:
    """File a declaration as a draft (or submit it with `?submit=true`). Requires `Idempotency-Key`: a retry with
    the same key and body returns the first response; the same key with another body is 422."""
    key = validate_key(idempotency_key)
    scope = principal.organisation_id or principal.key_id
    body = _at_own_gate(body, runtime.settings.gate_code)
    document = service.document_of(body)
    fingerprint = request_fingerprint("POST", f"declarations?submit={submit}", document[1].encode())
    # Reads and the assessment first; on SQLite the writer lock is then held only by the inserts. A repeated
    # key is found by the unique insert of its response below (retries are rare; a look-up first would cost
    # every filing a statement).
    read_apart = read_first(session)
    filing = service.prepare(session, principal=principal, body=body, submit=submit, document=document)
    if read_apart:
        session.commit()
    decl = service.store(session, filing)
    location = f"/api/v1/declarations/{decl.id}"
    content = to_json(decl)
    stored = save_response(
        session, scope=scope, key=key, fingerprint=fingerprint, status_code=201, body=content, location=location
    )
    if not stored:
        # The key was used before (a retry, or a concurrent request that won): undo this one, answer as the first.
        session.rollback()
        existing = find_record(session, scope=scope, key=key)
        assert existing is not None
        return _replay(replay_or_conflict(existing, fingerprint=fingerprint))
    # Committed here, in this thread, rather than in another hop to the thread pool.
    session.commit()
    return JSONResponse(content, status_code=201, headers={"ETag": service.etag(decl), "Location": location})


def _at_own_gate(body: DeclarationIn, gate_code: str) -> DeclarationIn:
    """A body that names no border gate crosses this deployment's (SMARTGATE_GATE_CODE, else the administration's:
    KIMTHANH on the Vietnamese side, HEKOU on the Chinese one)."""
    if "border_gate" in body.model_fields_set or body.border_gate == gate_code:
        return body
    return body.model_copy(update={"border_gate": gate_code})


def _replay(record: IdempotencyRecord) -> JSONResponse:
    headers = {"Idempotent-Replayed": "true"}
    if record.location:
        headers["Location"] = record.location
    if etag := record.response_body.get("etag"):
        headers["ETag"] = etag
    # Responses stored before traders got their own view held the officer's fields: never replay those.
    body = {k: v for k, v in record.response_body.items() if k not in OFFICER_ONLY}
    return JSONResponse(body, status_code=record.status_code, headers=headers)


@router.get(
    "",
    response_model=TraderDeclarationPage | OfficerDeclarationPage,
    responses=PROBLEMS,
    summary="List declarations",
)
def list_declarations(
    session: SessionDep,
    principal: CurrentPrincipal,
    status: ListStatus | None = None,
    kind: Kind | None = None,
    gate: Annotated[str | None, Query(pattern=r"^[A-Z]{3,12}$")] = None,
    created_from: dt.datetime | None = None,
    created_to: dt.datetime | None = None,
    hs_prefix: Annotated[str | None, Query(pattern=r"^\d{1,8}$")] = None,
    container: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9 ]{1,13}$")] = None,
    number: Annotated[
        str | None, Query(pattern=r"^[A-Za-z0-9-]{1,32}$", description="The declaration number, exactly")
    ] = None,
    plate: Annotated[
        str | None,
        Query(
            pattern=r"^[A-Za-z0-9 .-]{1,20}$",
            description="The truck's plate, compared without case, spaces, dots or dashes",
            examples=["24C-123.45"],
        ),
    ] = None,
    trader: Annotated[
        str | None,
        Query(
            min_length=2,
            max_length=100,
            pattern=r"^[^\x00-\x1f\x7f]+$",
            description="Part of the consignee's or consignor's name, any case; or either's tax id, exactly",
            examples=["Lao Cai"],
        ),
    ] = None,
    unpaid: Annotated[
        bool, Query(description="Only declarations cleared (or released, exited) with less paid than the duties due")
    ] = False,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> JSONResponse:
    """Declarations newest first; traders see their organisation's (trader view), officers all (officer view).
    Paginate with `cursor`."""
    if principal.role is not Role.trader:
        principal.require(Role.officer, Role.supervisor, Role.admin)
    for name, value in (("created_from", created_from), ("created_to", created_to)):
        if value is None:
            continue
        if value.tzinfo is None:
            raise Unprocessable(f"{name} must carry a UTC offset", errors=[{"pointer": "", "in": "query",
                                "code": "datetime.timezone", "detail": name}])  # fmt: skip
        try:
            value.astimezone(dt.UTC)
        except OverflowError as exc:
            raise Unprocessable(f"{name} is out of range", errors=[{"pointer": "", "in": "query",
                                "code": "datetime.range", "detail": name}]) from exc  # fmt: skip
    filt = repository.ListFilter(
        organisation_id=principal.organisation_id if principal.role is Role.trader else None,
        status=status,
        kind=kind.value if kind else None,
        border_gate=gate,
        created_from=created_from,
        created_to=created_to,
        hs_prefix=hs_prefix,
        container=container.replace(" ", "").upper() if container else None,
        number=number.upper() if number else None,
        plate=repository.plate_key(plate) if plate else None,
        trader=trader.strip() or None if trader else None,
        unpaid=unpaid,
    )
    rows = repository.list_page(session, filt, limit=limit, cursor=cursor)
    more = len(rows) > limit
    rows = rows[:limit]
    return JSONResponse(
        {
            "items": views(session, rows, role=principal.role),
            "next_cursor": repository.encode_cursor(rows[-1]) if more and rows else None,
        }
    )


@router.get("/{declaration_id}", response_model=EITHER_VIEW, responses=PROBLEMS, summary="Get a declaration")
def get_declaration(declaration_id: str, session: SessionDep, principal: CurrentPrincipal) -> JSONResponse:
    """One declaration with its `ETag` (needed to amend it): the trader view for its trader (channel, duties,
    what to do next), the officer view with the risk assessment for officers and admins."""
    decl = service.get_visible(session, principal=principal, declaration_id=declaration_id)
    view = to_json(decl, role=principal.role)
    if "risk" in view:  # customs staff: the learned model's reasons, computed now rather than at filing
        view["risk"] = riskmodels.explained(session, decl, view["risk"])
    return JSONResponse(view, headers={"ETag": service.etag(decl)})


@router.get("/{declaration_id}/history", response_model=History, responses=PROBLEMS, summary="History")
def get_history(declaration_id: str, session: SessionDep, principal: CurrentPrincipal) -> History:
    """Every state change (with actor and time) and every body version. Traders see customs staff by role
    (`customs officer`); officers and admins see their key ids."""
    decl = service.get_visible(session, principal=principal, declaration_id=declaration_id)
    transitions = [Transition.model_validate(t) for t in repository.transitions(session, decl.id)]
    if not officer_view(principal.role):
        # Who works a file inside customs (assignments) is not the trader's to see; staff are named by role.
        transitions = [
            t.model_copy(update={"actor": service.public_actor(t.actor)}) for t in transitions if t.action != "assign"
        ]
    return History(
        id=decl.id,
        number=decl.number,
        transitions=transitions,
        versions=[VersionOut.model_validate(v) for v in repository.versions(session, decl.id)],
    )


@router.get(
    "/{declaration_id}/assessments",
    response_model=list[AssessmentOut],
    responses=PROBLEMS,
    summary="Risk assessments with their salts (officers and admins)",
)
def get_assessments(declaration_id: str, session: SessionDep, principal: CurrentOfficer) -> list[AssessmentOut]:
    """Every assessment of the declaration, oldest first: the confidential record (score, rule hits, draw) and
    the salt that, added to it, gives the commitment the ledger's `declaration.assessed` event carries."""
    decl = service.get_visible(session, principal=principal, declaration_id=declaration_id)
    rows = session.scalars(
        select(RiskAssessment).where(RiskAssessment.declaration_id == decl.id).order_by(RiskAssessment.id)
    )
    return [AssessmentOut.model_validate(r) for r in rows]


@router.post("/{declaration_id}/submit", response_model=TraderDeclaration, responses=PROBLEMS, summary="Submit a draft")
def submit_declaration(
    declaration_id: str,
    session: SessionDep,
    principal: CurrentTrader,
    _body: Annotated[dict[str, Any] | None, Body(openapi_examples={"empty": {"value": {}}})] = None,
) -> JSONResponse:
    """Register a draft with customs: it gets its registration number (e.g. `KT-2026-000123`)."""
    return _respond(service.submit(session, principal=principal, declaration_id=declaration_id))


@router.post(
    "/{declaration_id}/amend",
    response_model=TraderDeclaration,
    responses={**PROBLEMS, **problems(412, 428)},
    summary="Amend (replace the body)",
)
def amend_declaration(
    declaration_id: str,
    session: SessionDep,
    principal: CurrentTrader,
    runtime: RuntimeDep,
    body: Annotated[
        DeclarationIn,
        Body(
            openapi_examples={
                "lychee-export": {"value": EXPORT_EXAMPLE},
                "lychee-import": {"value": DOCUMENTED_EXAMPLE},
            }
        ),
    ],
    if_match: Annotated[str | None, Header(description="The ETag you last read")] = None,
) -> JSONResponse:
    """Replace the body with a new version (the old one is kept). `If-Match` is required; a stale one is 412.
    A registered declaration is assessed again: its channel may rise, never fall, and one under review (or
    awaiting documents, or cleared but not released) goes back to review."""
    body = _at_own_gate(body, runtime.settings.gate_code)
    try:
        decl = service.amend(session, principal=principal, declaration_id=declaration_id, body=body, if_match=if_match)
    except StaleDataError as exc:
        session.rollback()
        raise PreconditionFailed("the declaration changed while you amended it; fetch it again") from exc
    return _respond(decl)


@router.post(
    "/{declaration_id}/cancel", response_model=TraderDeclaration, responses=PROBLEMS, summary="Cancel a declaration"
)
def cancel_declaration(
    declaration_id: str,
    body: CancelIn,
    session: SessionDep,
    principal: CurrentTrader,
) -> JSONResponse:
    """Cancel with a reason; not possible once the goods are released."""
    return _respond(service.cancel(session, principal=principal, declaration_id=declaration_id, reason=body.reason))
