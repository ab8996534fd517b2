"""HTTP endpoints of officer review, documents, risk rule sets, tariff and exchange rates."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, File, Form, Query, Request, UploadFile
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse
from pydantic import Field
from sqlalchemy.orm.exc import StaleDataError

from services.declarations import repository, review, rulesets, service, tariff
from services.declarations.duties import MAX_VND_PER_UNIT
from services.declarations.endpoints import PROBLEMS, problems, to_json, views
from services.declarations.models import DeclarationDocument, TariffLine
from services.declarations.schemas import Declaration
from services.kernel.auth import Role
from services.kernel.deps import CurrentAdmin, CurrentOfficer, CurrentPrincipal, CurrentTrader, RuntimeDep, SessionDep
from services.kernel.errors import NotFound, PreconditionFailed, Unprocessable
from services.kernel.filenames import content_disposition, display_name
from services.kernel.schemas import InputSchema, Schema

router = APIRouter(tags=["review"])
risk_router = APIRouter(prefix="/api/v1/risk", tags=["risk"])
tariff_router = APIRouter(tags=["tariff"])

MAX_DOCUMENT_BYTES = 10 * 1024 * 1024
DOWNLOAD_HEADERS = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "default-src 'none'; sandbox"}
VersionPath = Annotated[str, PathParam(pattern=r"^[0-9A-Za-z.\-_]{1,32}$")]


class DecisionIn(InputSchema):
    """An officer's decision."""

    model_config = InputSchema.model_config | {
        "json_schema_extra": {
            "examples": [{"outcome": "clear", "reason": "documents consistent with the goods", "violation": False}]
        }
    }

    outcome: Literal["clear", "request_documents", "inspect", "reject"] = Field(
        description="The decision: `clear` (goods may go once duties are paid), `request_documents` (the trader "
        "must upload more), `inspect` (physical inspection), `reject`."
    )
    reason: Annotated[str, Field(min_length=3, max_length=2000)] | None = Field(
        None,
        description="The officer's reason (3-2000 characters), shown to the trader with the decision; required "
        "to `reject`.",
        examples=["documents consistent with the goods"],
    )
    violation: bool = Field(False, description="A violation was found (lowers the trader's compliance class)")


class DutyIn(InputSchema):
    """Go on or off duty."""

    model_config = InputSchema.model_config | {"json_schema_extra": {"examples": [{"on_duty": True}]}}

    on_duty: bool = Field(description="true to go on duty (receive assignments), false to go off duty.")


class AssignmentIn(InputSchema):
    """Who gets the declaration: an officer's (or supervisor's) key id, or null for the unassigned pool."""

    model_config = InputSchema.model_config | {
        "json_schema_extra": {"examples": [{"officer_key_id": "a1b2c3d4e5f6", "reason": "covering for a colleague"}]}
    }

    officer_key_id: Annotated[str, Field(min_length=4, max_length=16)] | None = Field(
        description="The new assignee's key id; null hands the declaration back to the unassigned pool",
        examples=["a1b2c3d4e5f6"],
    )
    reason: Annotated[str, Field(min_length=3, max_length=500)] | None = Field(
        None,
        description="Why the declaration is (re)assigned (3-500 characters), kept in the history.",
        examples=["covering for a colleague"],
    )


class RateIn(InputSchema):
    """A daily exchange rate to VND."""

    model_config = InputSchema.model_config | {
        "json_schema_extra": {
            "examples": [{"currency": "USD", "day": "2026-11-28", "vnd_per_unit": "25400", "source": "SBV central"}]
        }
    }

    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] = Field(
        description="The foreign currency: ISO 4217 code.", examples=["USD", "CNY"]
    )
    day: dt.date = Field(description="The day the rate applies to (ISO 8601 date).", examples=["2026-11-28"])
    vnd_per_unit: Annotated[Decimal, Field(gt=0, le=MAX_VND_PER_UNIT, max_digits=18, decimal_places=6)] = Field(
        description="VND for one unit of `currency` (> 0, up to 6 decimals); a JSON number or a decimal string.",
        examples=["25400"],
    )
    source: Annotated[str, Field(max_length=200)] = Field(
        "",
        description="Where the rate comes from (e.g. State Bank of Viet Nam central rate).",
        examples=["SBV central"],
    )


class RuleSetIn(InputSchema):
    """A rule set in YAML."""

    # Stored byte for byte: its SHA-256 identifies the version.
    model_config = InputSchema.model_config | {
        "str_strip_whitespace": False,
        "json_schema_extra": {
            "examples": [
                {
                    "yaml": "version: '2026.12.1'\nseed: 1\nthresholds: {yellow: 30, red: 75}\n"
                    "rules:\n  - {id: gate_mismatch, type: gate_mismatch, weight: 100}\n"
                }
            ]
        },
    }

    yaml: Annotated[str, Field(min_length=10, max_length=200_000)] = Field(
        description="The rule set as a YAML document (version, seed, thresholds, rules), stored byte for byte; "
        "its SHA-256 identifies it. See the README's section on duties and risk.",
        examples=["version: 2026-12\nseed: 7\nthresholds: {yellow: 30, red: 60}\nrules: []\n"],
    )


class DocumentOut(Schema):
    """A stored document."""

    id: str = Field(
        description="Identifier of the document (UUID), used to download it.",
        examples=["0192f0c4-7d55-7a3e-9c1b-3b8f4e2a9d10"],
    )
    filename: str = Field(
        description="As uploaded, without control or bidi-override characters or a directory part",
        examples=["form-e-E263600001234567.pdf"],
    )
    content_type: str = Field(description="Media type as detected on upload.", examples=["application/pdf"])
    size_bytes: int = Field(description="Size of the file in bytes.", examples=[184320])
    sha256: str = Field(
        description="SHA-256 of the file's bytes (hex).",
        examples=["9f2c5e0b6d1a4b7c8e3f2a1d0c9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b"],
    )
    uploaded_by: str = Field(description="Who uploaded it (`<role>:<key id>`).", examples=["trader:k1a2b3"])
    uploaded_at: dt.datetime = Field(
        description="When it was uploaded (ISO 8601, UTC offset).", examples=["2026-11-28T08:31:12+07:00"]
    )


class DutyOut(Schema):
    """An officer's duty status."""

    officer_key_id: str = Field(
        description="Your key id: the one assignments and the history name.", examples=["a1b2c3d4e5f6"]
    )
    on_duty: bool = Field(description="Whether you are on duty (receive new assignments).")
    assigned_count: int = Field(description="How many declarations have been assigned to you.", examples=[3])


class RuleSetOut(Schema):
    """A stored rule set."""

    version: str = Field(description="The rule set's version, as its YAML states it.", examples=["2026.12.1"])
    sha256: str = Field(
        description="SHA-256 (hex) of the YAML bytes as stored.",
        examples=["9f2c5e0b6d1a4b7c8e3f2a1d0c9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b"],
    )
    active: bool = Field(description="Whether this is the rule set that channels new declarations (only one is).")
    created_by: str = Field(description="Who uploaded it (`<role>:<key id>`).", examples=["admin:a9b8c7d6e5f4"])
    created_at: dt.datetime = Field(
        description="When it was uploaded (ISO 8601, UTC offset).", examples=["2026-11-28T08:31:12+07:00"]
    )
    activated_at: dt.datetime | None = Field(
        description="When it was last activated; null if never.", examples=["2026-11-28T08:31:12+07:00"]
    )


class TariffOut(Schema):
    """A tariff line."""

    hs_code: str = Field(description="8-digit AHTN 2022 code of the line.", examples=["08109020"])
    description: str = Field(description="Description of the tariff line.", examples=["Lychees, fresh"])
    mfn_rate: Decimal = Field(
        description="Preferential (MFN) import duty rate, in percent of the customs value.", examples=["30"]
    )
    acfta_rate: Decimal | None = Field(
        description="ACFTA import duty rate in percent, with a Form E; null when the line has no ACFTA rate.",
        examples=["0"],
    )
    vat_rate: Decimal = Field(description="VAT rate at import, in percent.", examples=["5"])
    export_rate: Decimal = Field(description="Export duty rate, in percent.", examples=["0"])
    sources: dict[str, Any] = Field(
        description="The legal source of each rate: keys `mfn`, `acfta`, `vat`, "
        "`export`, values a citation (decree, annex).",
        examples=[
            {
                "mfn": "Decree 26/2023/NĐ-CP, Annex II",
                "acfta": "Decree 118/2022/NĐ-CP, Annex I",
                "vat": "Law on VAT No. 48/2024/QH15, Art. 9(2)",
                "export": "Decree 26/2023/NĐ-CP, Annex I",
            }
        ],
    )
    status: str = Field(
        description="`verified` (rates checked against their sources) or `unverified`.", examples=["verified"]
    )
    notes: str = Field(
        description="What was checked and what was not, in words.",
        examples=["MFN and ACFTA rates checked against the 2026 tariff schedule"],
    )


class RateOut(Schema):
    """An exchange rate."""

    currency: str = Field(description="The foreign currency: ISO 4217 code.", examples=["USD"])
    day: dt.date = Field(description="The day the rate applies to (ISO 8601 date).", examples=["2026-11-28"])
    vnd_per_unit: Decimal = Field(description="VND for one unit of `currency`.", examples=["25400"])
    source: str = Field(description="Where the rate comes from.", examples=["SBV central"])


class QueuedDeclaration(Declaration):
    """A declaration in the review queue: the officer view, and whether the trader just provided documents."""

    documents_provided_at: dt.datetime | None = Field(
        None,
        description="When the trader provided the documents an officer asked for, if that is the latest change "
        "(the declaration is back for review); null otherwise",
        examples=["2026-11-28T09:41:00Z"],
    )


class OfficerOut(Schema):
    """An officer or supervisor key, named as the console shows it."""

    key_id: str = Field(
        description="The key id assignments and the history name (`officer:<key id>`)", examples=["a1b2c3d4e5f6"]
    )
    role: Literal["officer", "supervisor"] = Field(description="The key's role")
    label: str = Field(
        description="The name given when the key was created (empty if none)", examples=["Nguyễn Văn An"]
    )
    on_duty: bool = Field(description="Whether the officer is on duty (takes new declarations by rotation)")
    revoked: bool = Field(description="Whether the key was revoked (kept: the history still names it)")


@router.get("/api/v1/review/officers", response_model=list[OfficerOut], responses=PROBLEMS, summary="Officers")
def list_officers(session: SessionDep, principal: CurrentOfficer) -> list[OfficerOut]:
    """Every officer and supervisor key (revoked ones too, since the history names them), with its label: how
    the console shows a key id by name."""
    return [OfficerOut.model_validate(o) for o in review.officers(session, principal=principal)]


@router.get("/api/v1/review/queue", response_model=list[QueuedDeclaration], responses=PROBLEMS, summary="Review queue")
def review_queue(
    session: SessionDep,
    principal: CurrentOfficer,
    channel: Literal["yellow", "red"] | None = None,
    status: Literal["submitted", "awaiting_documents", "inspection"] | None = None,
    assigned: Annotated[str, Query(max_length=16, description="me | unassigned | all | an officer key id")] = "all",
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> JSONResponse:
    """Yellow and red declarations waiting for a decision, oldest first."""
    rows = review.queue(session, principal=principal, channel=channel, status=status, assigned=assigned, limit=limit)
    provided = repository.documents_just_provided(session, [d.id for d in rows])
    return JSONResponse(
        [
            view | {"documents_provided_at": provided[d.id].isoformat() if d.id in provided else None}
            for d, view in zip(rows, views(session, rows, role=Role.officer), strict=True)
        ]
    )


@router.get("/api/v1/review/duty", response_model=DutyOut, responses=PROBLEMS, summary="Your duty status")
def get_duty(session: SessionDep, principal: CurrentOfficer) -> DutyOut:
    """Your key id (the one assignments name), whether you are on duty, and how many declarations you were given."""
    return DutyOut.model_validate(review.duty_of(session, principal=principal))


@router.put("/api/v1/review/duty", response_model=DutyOut, responses=PROBLEMS, summary="Go on or off duty")
def set_duty(body: DutyIn, session: SessionDep, principal: CurrentOfficer) -> DutyOut:
    """On-duty officers receive new yellow and red declarations in rotation."""
    return DutyOut.model_validate(review.set_duty(session, principal=principal, on_duty=body.on_duty))


IF_MATCH_REQUIRED = {
    "parameters": [
        {
            "name": "If-Match",
            "in": "header",
            "required": True,
            "description": "The ETag of the declaration as you reviewed it (GET /api/v1/declarations/{id}). "
            "Missing: 428; any other than the current one (the trader amended it, or someone acted on it): 412.",
            "schema": {"type": "string", "examples": ['"3-5f2c0a9e1b7d"']},
        }
    ]
}


@router.post(
    "/api/v1/declarations/{declaration_id}/decisions",
    response_model=Declaration,
    responses={**PROBLEMS, **problems(412, 428)},
    summary="Decide on a declaration",
    tags=["review"],
    openapi_extra=IF_MATCH_REQUIRED,
)
def decide(
    declaration_id: str, body: DecisionIn, request: Request, session: SessionDep, principal: CurrentOfficer
) -> JSONResponse:
    """Clear, request documents, order a physical inspection, or reject (with a reason), on the version you
    reviewed: `If-Match` carries its ETag. Only the assignee or a supervisor decides (403); illegal decisions 409."""
    # Read by hand, not as a declared header: a missing one must be 428, which FastAPI's validation would make 422.
    if_match = request.headers.get("if-match")
    try:
        decl = review.decide(
            session,
            principal=principal,
            declaration_id=declaration_id,
            outcome=body.outcome,
            reason=body.reason,
            violation=body.violation,
            if_match=if_match,
        )
    except StaleDataError as exc:  # changed between our read and our write: as stale as a wrong ETag
        session.rollback()
        raise PreconditionFailed("the declaration changed while you decided; read it again") from exc
    return JSONResponse(to_json(decl, role=principal.role), headers={"ETag": service.etag(decl)})


@router.post(
    "/api/v1/declarations/{declaration_id}/assignment",
    response_model=Declaration,
    responses=PROBLEMS,
    summary="Assign, take or hand back",
)
def reassign(declaration_id: str, body: AssignmentIn, session: SessionDep, principal: CurrentOfficer) -> JSONResponse:
    """A supervisor assigns a queued declaration to any officer (or `null`: back to the pool); an officer takes an
    unassigned one for itself or hands its own back. Recorded in the history (`assign`) and as an event."""
    decl = review.reassign(
        session,
        principal=principal,
        declaration_id=declaration_id,
        officer_key_id=body.officer_key_id,
        reason=body.reason,
    )
    return JSONResponse(to_json(decl, role=principal.role), headers={"ETag": service.etag(decl)})


@router.post(
    "/api/v1/declarations/{declaration_id}/documents",
    status_code=201,
    response_model=DocumentOut,
    responses={**PROBLEMS, **problems(413, 503, 507)},
    summary="Upload a document",
    tags=["declarations"],
    openapi_extra={
        "requestBody": {
            "content": {
                "multipart/form-data": {
                    "example": {"file": "(the PDF's bytes)", "description": "Phytosanitary certificate No. 2026/123"}
                }
            }
        }
    },
)
async def upload_document(
    declaration_id: str,
    request: Request,
    file: Annotated[UploadFile, File(description="The document (PDF, image...), at most 10 MiB")],
    principal: CurrentTrader,
    session: SessionDep,
    description: Annotated[
        str,
        Form(
            max_length=500,
            description="What the document is (up to 500 characters)",
            examples=["Phytosanitary certificate"],
        ),
    ] = "",
) -> DocumentOut:
    """Attach a document; if an officer asked for documents, the declaration goes back to review. The file name is
    kept without control or bidi characters or a directory part (the bytes, and their SHA-256, as sent); storage that
    cannot take the file answers 503 (507 when full) and nothing is recorded."""
    data = await file.read(MAX_DOCUMENT_BYTES + 1)
    if len(data) > MAX_DOCUMENT_BYTES:
        from services.kernel.errors import PayloadTooLarge

        raise PayloadTooLarge(f"documents are limited to {MAX_DOCUMENT_BYTES} bytes")
    runtime = request.app.state.runtime
    from starlette.concurrency import run_in_threadpool

    doc = await run_in_threadpool(
        review.store_document,
        session,
        principal=principal,
        declaration_id=declaration_id,
        filename=file.filename or "document",
        content_type=file.content_type or "application/octet-stream",
        data=data,
        storage_dir=runtime.settings.var_dir / "documents",
    )
    return DocumentOut.model_validate(doc)


@router.get(
    "/api/v1/declarations/{declaration_id}/documents",
    response_model=list[DocumentOut],
    responses=PROBLEMS,
    summary="List documents",
    tags=["declarations"],
)
def list_documents(declaration_id: str, session: SessionDep, principal: CurrentPrincipal) -> list[DocumentOut]:
    """Documents attached to a declaration."""
    decl = service.get_visible(session, principal=principal, declaration_id=declaration_id)
    from sqlalchemy import select

    docs = session.scalars(
        select(DeclarationDocument)
        .where(DeclarationDocument.declaration_id == decl.id)
        .order_by(DeclarationDocument.uploaded_at)
    )
    # Names are cleaned when stored; cleaning again covers rows stored before that rule.
    return [DocumentOut.model_validate(d).model_copy(update={"filename": display_name(d.filename)}) for d in docs]


@router.get(
    "/api/v1/declarations/{declaration_id}/documents/{document_id}",
    responses={**PROBLEMS, 200: {"content": {"application/octet-stream": {}}}},
    summary="Download a document",
    tags=["declarations"],
)
def get_document(
    declaration_id: str, document_id: str, session: SessionDep, principal: CurrentPrincipal, runtime: RuntimeDep
) -> FileResponse:
    """The document's bytes, always as an `application/octet-stream` attachment (the type the trader gave is in the
    listing): a browser never renders a trader's file as a page of this origin."""
    decl = service.get_visible(session, principal=principal, declaration_id=declaration_id)
    doc = session.get(DeclarationDocument, document_id) if service.ID_SHAPE.match(document_id) else None
    if doc is None or doc.declaration_id != decl.id:
        raise NotFound(f"document {document_id} not found")
    path = review.document_path(runtime.settings.var_dir / "documents", doc)
    if not path.exists():
        raise NotFound("the document's file is missing from storage")
    return FileResponse(path, media_type="application/octet-stream", headers=DOWNLOAD_HEADERS
                        | {"Content-Disposition": content_disposition(doc.filename)})  # fmt: skip


@risk_router.get("/rule-sets", response_model=list[RuleSetOut], responses=PROBLEMS, summary="List rule sets")
def list_rule_sets(session: SessionDep, principal: CurrentOfficer) -> list[RuleSetOut]:
    """Every stored rule set version; one is active."""
    return [RuleSetOut.model_validate(r) for r in rulesets.listing(session)]


@risk_router.get(
    "/rule-sets/{version}",
    responses={**PROBLEMS, 200: {"content": {"application/yaml": {}}}},
    summary="Get a rule set",
    response_class=PlainTextResponse,
)
def get_rule_set(version: VersionPath, session: SessionDep, principal: CurrentOfficer) -> PlainTextResponse:
    """The rule set's YAML, exactly as stored."""
    row = rulesets.get(session, version)
    return PlainTextResponse(row.source_yaml, media_type="application/yaml", headers={"X-Rule-Set-SHA256": row.sha256})


@risk_router.post(
    "/rule-sets", status_code=201, response_model=RuleSetOut, responses=PROBLEMS, summary="Add a rule set"
)
def create_rule_set(body: RuleSetIn, session: SessionDep, principal: CurrentAdmin) -> RuleSetOut:
    """Store a new (inactive) rule set version; errors name the path of the problem."""
    return RuleSetOut.model_validate(rulesets.create(session, principal=principal, source_yaml=body.yaml))


@risk_router.post("/rule-sets/{version}/dry-run", responses=PROBLEMS, summary="Replay a rule set")
def dry_run(
    version: VersionPath,
    session: SessionDep,
    principal: CurrentOfficer,
    limit: Annotated[int, Query(ge=1, le=20000)] = 5000,
    _body: Annotated[dict[str, Any] | None, Body(openapi_examples={"empty": {"value": {}}})] = None,
) -> dict[str, Any]:
    """Replay over the most recent registered declarations: channel split, rules fired, channels that would change."""
    return rulesets.dry_run(session, principal=principal, version=version, limit=limit)


@risk_router.post("/rule-sets/{version}/activate", response_model=RuleSetOut, responses=PROBLEMS, summary="Activate")
def activate(
    version: VersionPath,
    session: SessionDep,
    principal: CurrentAdmin,
    _body: Annotated[dict[str, Any] | None, Body(openapi_examples={"empty": {"value": {}}})] = None,
) -> RuleSetOut:
    """Assess new registrations with this rule set from now on."""
    return RuleSetOut.model_validate(rulesets.activate(session, principal=principal, version=version))


@tariff_router.get("/api/v1/tariff/{hs_code}", response_model=TariffOut, responses=PROBLEMS, summary="Tariff line")
def get_tariff(
    hs_code: Annotated[str, PathParam(pattern=r"^\d{8}$")], session: SessionDep, principal: CurrentPrincipal
) -> TariffOut:
    """Rates of an 8-digit HS code with their sources and verification status."""
    row = session.get(TariffLine, hs_code)
    if row is None:
        raise NotFound(f"HS {hs_code} is not in the tariff")
    return TariffOut.model_validate(row)


@tariff_router.post(
    "/api/v1/exchange-rates", status_code=201, response_model=RateOut, responses=PROBLEMS, summary="Post a rate"
)
def post_rate(body: RateIn, session: SessionDep, principal: CurrentAdmin) -> RateOut:
    """Set a currency's VND rate for a day (the rate of the registration date applies)."""
    from services.declarations.codes import currencies

    if body.currency not in currencies():
        raise Unprocessable(f"'{body.currency}' is not an ISO 4217 currency", code="iso4217.code")
    row = tariff.post_rate(
        session,
        currency=body.currency,
        day=body.day,
        vnd_per_unit=body.vnd_per_unit,
        source=body.source,
        actor=principal.actor,
    )
    return RateOut.model_validate(row)


@tariff_router.get("/api/v1/exchange-rates", response_model=list[RateOut], responses=PROBLEMS, summary="Rates")
def get_rates(session: SessionDep, principal: CurrentPrincipal, day: dt.date | None = None) -> list[RateOut]:
    """The rates in force on `day` (default: today in Hanoi)."""
    from services.declarations.assessment import VN_TZ

    the_day = day or dt.datetime.now(VN_TZ).date()
    return [RateOut.model_validate(r) for r in tariff.rates_on(session, the_day)]
