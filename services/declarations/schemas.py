"""Request and response schemas of the declarations API (aligned with the WCO Data Model and VNACCS fields)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal, cast

from pydantic import AfterValidator, Field, ValidationError, ValidatorFunctionWrapHandler, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from services.declarations import codes
from services.declarations.duties import MAX_LINE_CUSTOMS_VALUE
from services.kernel.schemas import InputSchema, Schema


class Kind(StrEnum):
    """Direction of the goods."""

    import_ = "import"
    export = "export"


class Status(StrEnum):
    """Lifecycle states (UCC/CDS names where they exist)."""

    draft = "draft"
    submitted = "submitted"
    awaiting_documents = "awaiting_documents"
    inspection = "inspection"
    rejected = "rejected"
    cleared = "cleared"
    released = "released"
    exited = "exited"
    cancelled = "cancelled"
    expired = "expired"


def _code_in(allowed_fn: Any, code: str, what: str, example: str | None = None) -> Any:
    def check(value: str) -> str:
        allowed = allowed_fn() if callable(allowed_fn) else allowed_fn
        if value not in allowed:
            shown = value if len(value) <= 40 else value[:40] + "…"
            hint = f", e.g. {example}" if example else ""
            raise PydanticCustomError(code, f"'{shown}' is not a known {what}{hint}")
        return value

    return check


def _container(value: str) -> str:
    compact = value.replace(" ", "").upper()
    error = codes.check_container_number(compact)
    if error == "iso6346.check_digit":
        raise PydanticCustomError(error, "container number check digit does not match (ISO 6346)")
    if error:
        raise PydanticCustomError(error, "container number must be 3 letters, U/J/Z, 6 digits and a check digit")
    return compact


def _hs_code(value: str) -> str:
    if not codes.HS_CODE.match(value):
        raise PydanticCustomError("hs.format", "HS code must be 8 digits (AHTN 2022)")
    chapter = int(value[:2])
    if not 1 <= chapter <= 97 or chapter == 77:
        raise PydanticCustomError("hs.chapter", f"HS chapter {value[:2]} does not exist")
    return value


def _plate(value: str) -> str:
    upper = value.upper()
    if not codes.PLATE.match(upper):
        raise PydanticCustomError("plate.format", "plate must be 4-15 letters, digits, dots, dashes or spaces")
    return upper


def _size_type(value: str) -> str:
    if not codes.SIZE_TYPE.match(value.upper()):
        raise PydanticCustomError("iso6346.size_type", "size-type code must be 4 characters, e.g. 22G1 or 45R1")
    return value.upper()


def _customs_value(value: Decimal) -> Decimal:
    if value >= MAX_LINE_CUSTOMS_VALUE:
        # The declaration's total is bounded in VND once converted (assessment); this bounds one line at once.
        raise PydanticCustomError(
            "customs_value.too_large", f"a line's customs value must be below {MAX_LINE_CUSTOMS_VALUE:,}"
        )
    return value


def _aware(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        raise PydanticCustomError("datetime.timezone", "time must carry a UTC offset, e.g. 2026-11-28T08:00:00+07:00")
    return value


# The length is checked by the code list itself, so that "China" is told what to write instead ("too long" is not
# help); OpenAPI still shows the shape.
Country = Annotated[
    str,
    Field(
        max_length=64,
        json_schema_extra={"minLength": 2, "maxLength": 2, "pattern": "^[A-Z]{2}$", "examples": ["CN", "VN"]},
    ),
    AfterValidator(_code_in(codes.countries, "iso3166.code", "ISO 3166-1 alpha-2 country code", "CN")),
]
Currency = Annotated[
    str,
    Field(
        max_length=64,
        json_schema_extra={"minLength": 3, "maxLength": 3, "pattern": "^[A-Z]{3}$", "examples": ["USD", "CNY"]},
    ),
    AfterValidator(_code_in(codes.currencies, "iso4217.code", "ISO 4217 currency code", "USD")),
]
Unit = Annotated[
    str, AfterValidator(_code_in(codes.UNECE_REC20_UNITS, "unece_rec20.code", "UN/ECE Rec. 20 unit", "KGM"))
]
Incoterm = Annotated[
    str, AfterValidator(_code_in(codes.INCOTERMS_2020, "incoterms.code", "Incoterms 2020 rule", "FOB"))
]
ContainerNumber = Annotated[str, Field(min_length=11, max_length=13), AfterValidator(_container)]
HsCode = Annotated[str, AfterValidator(_hs_code)]
Plate = Annotated[str, AfterValidator(_plate)]
AwareDatetime = Annotated[dt.datetime, AfterValidator(_aware)]
Text = Annotated[str, Field(min_length=1, max_length=200)]
Mass = Annotated[Decimal, Field(gt=0, max_digits=14, decimal_places=3)]


class Party(InputSchema):
    """Consignor or consignee."""

    name: Text
    address: Annotated[str, Field(min_length=1, max_length=400)]
    country: Country
    tax_id: Annotated[str, Field(min_length=1, max_length=32)] | None = Field(
        default=None,
        description="Vietnamese MST (10 digits or 10-3) or Chinese unified social credit code (18 characters); "
        "required for VN and CN parties",
    )


class Transport(InputSchema):
    """The road means of transport."""

    truck_plate: Plate
    trailer_plate: Plate | None = None
    driver_name: Text
    driver_id: Annotated[str, Field(min_length=4, max_length=32)]
    expected_arrival: AwareDatetime


class Container(InputSchema):
    """Transport equipment: one container with its seals."""

    number: ContainerNumber
    size_type: Annotated[str, AfterValidator(_size_type)] | None = None
    seals: list[Annotated[str, Field(min_length=3, max_length=32)]] = Field(default_factory=list, max_length=10)


class GoodsItem(InputSchema):
    """One goods line (GovernmentAgencyGoodsItem)."""

    hs_code: HsCode
    description: Annotated[str, Field(min_length=3, max_length=500)]
    origin: Country
    quantity: Annotated[Decimal, Field(gt=0, max_digits=16, decimal_places=3)]
    unit: Unit
    gross_mass_kg: Mass
    net_mass_kg: Mass
    customs_value: Annotated[
        Decimal,
        Field(gt=0, max_digits=18, decimal_places=2, description="Below 10^13 in its currency; the declaration's "
              "total, converted at the registration date's rate, must stay below 10^13 VND"),
        AfterValidator(_customs_value),
    ]  # fmt: skip
    currency: Currency
    incoterms: Incoterm


class PreferentialOrigin(InputSchema):
    """An ACFTA Form E certificate of origin."""

    form_e_number: Annotated[str, Field(min_length=5, max_length=32, pattern=r"^[A-Z0-9/\-]+$")]
    issued_on: dt.date


EXAMPLE: dict[str, Any] = {
    "kind": "import",
    "procedure_code": "A11",
    "border_gate": "KIMTHANH",
    "consignor": {
        "name": "Yunnan Hekou Fruit Trading Co., Ltd.",
        "address": "No. 8 Binlang Road, Hekou, Yunnan, China",
        "country": "CN",
        "tax_id": "91110000600037341L",
    },
    "consignee": {
        "name": "Cong ty TNHH Thuong mai Lao Cai",
        "address": "So 1 Duong Hoang Lien, Lao Cai, Viet Nam",
        "country": "VN",
        "tax_id": "0100233488",
    },
    "transport": {
        "truck_plate": "24C-123.45",
        "trailer_plate": "24R-012.34",
        "driver_name": "Nguyen Van An",
        "driver_id": "001089012345",
        "expected_arrival": "2026-11-28T08:30:00+07:00",
    },
    "containers": [{"number": "CSQU3054383", "size_type": "22G1", "seals": ["CN1234567"]}],
    "items": [
        {
            "hs_code": "08109020",
            "description": "Fresh lychees, in cartons",
            "origin": "CN",
            "quantity": "12000",
            "unit": "KGM",
            "gross_mass_kg": "13000",
            "net_mass_kg": "12000",
            "customs_value": "9600.00",
            "currency": "USD",
            "incoterms": "DAP",
        }
    ],
    "total_gross_mass_kg": "13000",
    "total_net_mass_kg": "12000",
    "preferential_origin": {"form_e_number": "E263600001234567", "issued_on": "2026-11-20"},
}


class DeclarationIn(InputSchema):
    """A declaration as a trader files or amends it (the full body every time)."""

    model_config = InputSchema.model_config | {"json_schema_extra": {"examples": [EXAMPLE]}}

    kind: Kind
    procedure_code: Annotated[str, Field(pattern=r"^[A-Z]\d{2}$", description="VNACCS type code, e.g. A11 or B11")]
    border_gate: Annotated[str, Field(pattern=r"^[A-Z]{3,12}$")] = "KIMTHANH"
    consignor: Party
    consignee: Party
    transport: Transport
    containers: list[Container] = Field(default_factory=list, max_length=50)
    items: list[GoodsItem] = Field(min_length=1, max_length=999)
    total_gross_mass_kg: Mass
    total_net_mass_kg: Mass
    preferential_origin: PreferentialOrigin | None = None

    @model_validator(mode="wrap")
    @classmethod
    def _report_every_problem(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> DeclarationIn:
        """Field errors and cross-field errors together, so a trader fixes everything in one round trip."""
        cross = cross_field_errors(data)
        try:
            model = handler(data)
        except ValidationError as exc:
            raise _merge(exc, cross) from None
        if cross:
            raise ValidationError.from_exception_data(cls.__name__, cast("list[InitErrorDetails]", cross))
        return model


def _merge(exc: ValidationError, extra: list[Any]) -> ValidationError:
    errors = [
        {
            "type": PydanticCustomError(e["type"], e["msg"].replace("{", "(").replace("}", ")")),
            "loc": e["loc"],
            "input": e.get("input"),
        }
        for e in exc.errors()
    ]
    return ValidationError.from_exception_data(exc.title, errors + extra)


def _num(value: Any) -> Decimal | None:
    try:
        if isinstance(value, bool):
            return None
        number = Decimal(str(value)) if isinstance(value, int | float | str | Decimal) else None
    except ArithmeticError:
        return None
    # NaN and infinities are reported by the field's own validation, not compared here.
    return number if number is not None and number.is_finite() else None


def _err(code: str, message: str, loc: tuple[Any, ...], value: Any) -> dict[str, Any]:
    return {"type": PydanticCustomError(code, message), "loc": loc, "input": value}


def cross_field_errors(data: Any) -> list[dict[str, Any]]:  # noqa: C901 - one check per cross-field rule, in document order
    """Checks that span fields, computed defensively on the raw body so they run even when fields are broken."""
    if not isinstance(data, dict):
        return []
    errors: list[dict[str, Any]] = []
    kind, procedure = data.get("kind"), data.get("procedure_code")
    if isinstance(procedure, str) and kind in ("import", "export"):
        allowed = codes.IMPORT_PROCEDURES if kind == "import" else codes.EXPORT_PROCEDURES
        other = codes.EXPORT_PROCEDURES if kind == "import" else codes.IMPORT_PROCEDURES
        if procedure in other:
            errors.append(_err("procedure_code.kind_mismatch", f"{procedure} is not an {kind} procedure",
                               ("procedure_code",), procedure))  # fmt: skip
        elif procedure not in allowed:
            errors.append(_err("procedure_code.unknown", f"{procedure} is not a VNACCS type code",
                               ("procedure_code",), procedure))  # fmt: skip
    for role in ("consignor", "consignee"):
        party = data.get(role)
        if not isinstance(party, dict):
            continue
        country, tax_id = party.get("country"), party.get("tax_id")
        if country in ("VN", "CN") and not tax_id:
            errors.append(_err("tax_id.required", f"a {country} party needs its tax id", (role, "tax_id"), tax_id))
        elif isinstance(tax_id, str) and country in ("VN", "CN"):
            check = codes.check_vn_tax_id if country == "VN" else codes.check_cn_tax_id
            if code := check(tax_id):
                what = "Vietnamese MST" if country == "VN" else "unified social credit code"
                errors.append(_err(code, f"not a valid {what}", (role, "tax_id"), tax_id))
    items = data.get("items")
    if isinstance(items, list):
        gross_sum, net_sum, complete = Decimal(0), Decimal(0), True
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                complete = False
                continue
            gross, net = _num(item.get("gross_mass_kg")), _num(item.get("net_mass_kg"))
            if gross is None or net is None:
                complete = False
                continue
            gross_sum += gross
            net_sum += net
            if net > gross:
                errors.append(_err("mass.net_exceeds_gross", "net mass exceeds gross mass",
                                   ("items", i, "net_mass_kg"), item.get("net_mass_kg")))  # fmt: skip
        for field, total in (("total_gross_mass_kg", gross_sum), ("total_net_mass_kg", net_sum)):
            declared = _num(data.get(field))
            if complete and declared is not None and abs(declared - total) > Decimal("0.001"):
                errors.append(_err("mass.total_mismatch", f"{field} is {declared} but the items add up to {total}",
                                   (field,), data.get(field)))  # fmt: skip
    origin = data.get("preferential_origin")
    if isinstance(origin, dict) and isinstance(origin.get("issued_on"), str):
        try:
            if dt.date.fromisoformat(origin["issued_on"]) > dt.date.today() + dt.timedelta(days=1):
                errors.append(_err("form_e.future_date", "Form E cannot be issued in the future",
                                   ("preferential_origin", "issued_on"), origin["issued_on"]))  # fmt: skip
        except ValueError:
            pass
    containers = data.get("containers")
    if isinstance(containers, list):
        seen: dict[str, int] = {}
        for i, c in enumerate(containers):
            number = c.get("number") if isinstance(c, dict) else None
            if isinstance(number, str):
                key = number.replace(" ", "").upper()
                if key in seen:
                    errors.append(_err("container.duplicate", f"container listed twice (also at {seen[key]})",
                                       ("containers", i, "number"), number))  # fmt: skip
                seen.setdefault(key, i)
    return errors


class Transition(Schema):
    """One state change, with who did it and when (the timestamps of a WCO Time Release Study). A trader sees
    customs staff by role (`customs officer`), officers see the key id (`officer:…`)."""

    action: str
    from_status: str | None
    to_status: str
    actor: str
    reason: str | None
    version: int
    at: dt.datetime


class NextStep(Schema):
    """One thing the trader must do before the goods can leave: what, why (the officer's words, when an officer
    asked), since when, how much (duties) and where to do it in this API."""

    action: Literal["submit", "provide_documents", "present_goods_for_inspection", "pay_duties"] = Field(
        description="`submit`: lodge the draft; `provide_documents`: upload what the officer asked for; "
        "`present_goods_for_inspection`: bring the goods to the physical inspection (kiểm tra thực tế) the officer "
        "ordered; `pay_duties`: pay the duties still due (the goods are released once paid in full)",
        examples=["provide_documents"],
    )
    reason: str | None = Field(
        None,
        description="`provide_documents`, `present_goods_for_inspection`: the officer's reason, as recorded",
        examples=["phytosanitary certificate, please"],
    )
    since: dt.datetime | None = Field(None, description="When customs asked (the request's time), if customs asked")
    amount_vnd: int | None = Field(
        None, description="`pay_duties` only: duties due less confirmed payments, VND", examples=[1_250_000], ge=1
    )
    link: str | None = Field(
        None,
        description="The path of this API that does it (`POST`), if there is one",
        examples=["/api/v1/declarations/0b4c…/documents"],
    )


class TraderDeclaration(Schema):
    """A declaration as its trader sees it: the channel and what to do next, never how it was selected (WCO Risk
    Management Compendium: selectivity criteria are confidential)."""

    id: str
    number: str | None = Field(description="Registration number, assigned on submission (e.g. KT-2026-000123)")
    status: Status
    kind: Kind
    border_gate: str
    organisation_id: str
    version: int = Field(description="Body version: 1, then +1 per amendment")
    etag: str
    body_sha256: str = Field(description="SHA-256 of the RFC 8785 canonical JSON of the body")
    body: DeclarationIn
    created_at: dt.datetime
    updated_at: dt.datetime
    submitted_at: dt.datetime | None
    allowed_actions: list[str] = Field(description="What the caller may do next (trader actions or officer decisions)")
    channel: Literal["green", "yellow", "red"] | None = Field(
        description="Risk channel, set at registration; an amendment never lowers it"
    )
    duties: dict[str, Any] | None = Field(description="Per-line duty breakdown, rates used, and totals in VND")
    duties_due_vnd: int
    paid_vnd: int
    next_step: str | None = Field(
        description="What the trader is to do next (upload documents, present the goods, pay the duties due...)"
    )
    next_steps: list[NextStep] = Field(
        description="What the trader must do next, in order: documents requested (with the officer's reason), "
        "inspection ordered, duties due (with the amount); empty when nothing is asked of the trader (under "
        "review, or cleared and paid)"
    )


class OfficerDeclaration(TraderDeclaration):
    """A declaration as customs officers and admins see it: the trader's view plus the risk assessment and the
    officer it is assigned to."""

    risk: dict[str, Any] | None = Field(
        description="rule_set_version, score, reasons (each rule hit with its weight), random_draw, and the "
        "commitment the ledger's `declaration.assessed` event carries"
    )
    assigned_officer: str | None


# The name the review endpoints use for the officer view.
Declaration = OfficerDeclaration


class TraderDeclarationPage(Schema):
    """A page of a trader's declarations; pass `next_cursor` as `cursor` for the next."""

    items: list[TraderDeclaration]
    next_cursor: str | None


class OfficerDeclarationPage(Schema):
    """A page of declarations as officers see them; pass `next_cursor` as `cursor` for the next."""

    items: list[OfficerDeclaration]
    next_cursor: str | None


class VersionOut(Schema):
    """A stored body version."""

    version: int
    body_sha256: str
    body: dict[str, Any]
    created_at: dt.datetime
    actor: str


class History(Schema):
    """Every state change and every body version of a declaration."""

    id: str
    number: str | None
    transitions: list[Transition]
    versions: list[VersionOut]


class AssessmentOut(Schema):
    """One assessment's confidential record and the salt of its commitment (officers and admins): the SHA-256 of
    the RFC 8785 canonical JSON of `record` with `salt` added equals the `assessment_sha256` of the
    `declaration.assessed` event in the ledger."""

    version: int
    record: dict[str, Any]
    salt: str
    commitment: str
    created_at: dt.datetime


class CancelIn(InputSchema):
    """Why the declaration is cancelled."""

    model_config = InputSchema.model_config | {
        "json_schema_extra": {"examples": [{"reason": "Buyer cancelled the order; goods not shipped"}]}
    }

    reason: Annotated[str, Field(min_length=3, max_length=1000)]


class SubmitIn(InputSchema):
    """Submission has no parameters; the body may be empty."""

    model_config = InputSchema.model_config | {"json_schema_extra": {"examples": [{}]}}


ListStatus = Literal[
    "draft",
    "submitted",
    "awaiting_documents",
    "inspection",
    "rejected",
    "cleared",
    "released",
    "exited",
    "cancelled",
    "expired",
]
