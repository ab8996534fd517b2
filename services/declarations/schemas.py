"""Request and response schemas of the declarations API (aligned with the WCO Data Model and VNACCS fields)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal, cast

from biip import ParseError
from biip.gtin import Gtin
from biip.sscc import Sscc
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
            if example:
                raise PydanticCustomError(code, f"'{shown}' is not a known {what}, e.g. {example}")
            raise PydanticCustomError(code, f"'{shown}' is not a known {what}")
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


def _gs1_key(kind: Any, what: str, digits: str) -> Any:
    """A GS1 key checked by biip (format and check digit), as it normalises it (GTIN-14, 18-digit SSCC)."""

    def check(value: str) -> str:
        if not value.isdigit():
            raise PydanticCustomError("gs1.format", f"{what} must be {digits} digits")
        try:
            parsed = kind.parse(value)
        except ParseError as exc:
            raise PydanticCustomError("gs1.check_digit", f"not a valid {what}: {exc}") from None
        return str(parsed.as_gtin_14() if what == "GTIN" else parsed.value)

    return check


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
    str,
    Field(json_schema_extra={"enum": sorted(codes.UNECE_REC20_UNITS), "examples": ["KGM", "C62"]}),
    AfterValidator(_code_in(codes.UNECE_REC20_UNITS, "unece_rec20.code", "UN/ECE Rec. 20 unit", "KGM")),
]
Incoterm = Annotated[
    str,
    Field(json_schema_extra={"enum": sorted(codes.INCOTERMS_2020), "examples": ["DAP", "FOB"]}),
    AfterValidator(_code_in(codes.INCOTERMS_2020, "incoterms.code", "Incoterms 2020 rule", "FOB")),
]
ContainerNumber = Annotated[str, Field(min_length=11, max_length=13), AfterValidator(_container)]
HsCode = Annotated[
    str, Field(json_schema_extra={"pattern": "^[0-9]{8}$", "examples": ["08109020"]}), AfterValidator(_hs_code)
]
Plate = Annotated[str, AfterValidator(_plate)]
AwareDatetime = Annotated[dt.datetime, AfterValidator(_aware)]
Text = Annotated[str, Field(min_length=1, max_length=200)]
Mass = Annotated[Decimal, Field(gt=0, max_digits=14, decimal_places=3)]


class Party(InputSchema):
    """Consignor or consignee."""

    name: Text = Field(
        description="Legal name of the company or person, as on its registration.",
        examples=["Yunnan Hekou Fruit Trading Co., Ltd."],
    )
    address: Annotated[str, Field(min_length=1, max_length=400)] = Field(
        description="Postal address (street, town, province, country), free text up to 400 characters.",
        examples=["No. 8 Binlang Road, Hekou, Yunnan, China"],
    )
    country: Country = Field(description="Country of the party's address: ISO 3166-1 alpha-2 code, e.g. CN, VN.")
    tax_id: Annotated[str, Field(min_length=1, max_length=32)] | None = Field(
        default=None,
        description="Vietnamese MST (10 digits; a branch 13: 10-3 or 13 digits) or Chinese unified social credit code "
        "(18 characters); "
        "required for VN and CN parties",
        examples=["0100233488", "91110000600037341L"],
    )


class Transport(InputSchema):
    """The road means of transport."""

    truck_plate: Plate = Field(
        description="Registration plate of the tractor or truck (VN or CN), 4-15 letters, digits, dots, dashes or "
        "spaces; stored upper-case. The gate cameras match it on arrival.",
        examples=["24C-123.45", "云A12345"],
    )
    trailer_plate: Plate | None = Field(
        None, description="Plate of the trailer or semi-trailer, if any (same format).", examples=["24R-012.34"]
    )
    driver_name: Text = Field(description="Driver's full name as on the identity document.", examples=["Nguyen Van An"])
    driver_id: Annotated[str, Field(min_length=4, max_length=32)] = Field(
        description="Driver's identity card (CCCD, 12 digits) or passport number.", examples=["001089012345"]
    )
    expected_arrival: AwareDatetime = Field(
        description="When the truck is expected at the border gate: ISO 8601 with a UTC offset, e.g. "
        "2026-11-28T08:30:00+07:00 (a time without offset is refused).",
        examples=["2026-11-28T08:30:00+07:00"],
    )


class Container(InputSchema):
    """Transport equipment: one container with its seals."""

    number: ContainerNumber = Field(
        description="ISO 6346 container number: owner code (3 letters), category U/J/Z, 6 digits and the check "
        "digit; spaces are removed and letters upper-cased.",
        examples=["CSQU3054383"],
    )
    size_type: Annotated[str, AfterValidator(_size_type)] | None = Field(
        None,
        description="ISO 6346 size-and-type code (4 characters), e.g. 22G1 (20' general purpose) or 45R1 (40' high "
        "cube reefer).",
        examples=["22G1", "45R1"],
    )
    seals: list[Annotated[str, Field(min_length=3, max_length=32)]] = Field(
        default_factory=list,
        max_length=10,
        description="Numbers of the seals on the container (up to 10), as printed on them; checked against the "
        "gate camera reads.",
        examples=[["CN1234567"]],
    )


GtinCode = Annotated[
    str,
    Field(json_schema_extra={"pattern": "^[0-9]{8,14}$", "examples": ["08930001000018"]}),
    AfterValidator(_gs1_key(Gtin, "GTIN", "8, 12, 13 or 14")),
]
SsccCode = Annotated[
    str,
    Field(json_schema_extra={"pattern": "^[0-9]{18}$", "examples": ["089300010000000017"]}),
    AfterValidator(_gs1_key(Sscc, "SSCC", "18")),
]
LotNumber = Annotated[str, Field(pattern=r"^[!-\"%-/0-9:-?A-Z_a-z]{1,20}$")]


class GoodsTrace(InputSchema):
    """Where a goods line's produce comes from: the pallets (SSCC) and lots (GTIN + lot) of the traceability
    repository that carry it. On submission a trace check verifies them (docs/traceability.md)."""

    gtin: GtinCode = Field(
        description="GTIN of the product the line declares (the GTIN its lots were harvested under), with a valid "
        "GS1 check digit; stored as GTIN-14.",
    )
    ssccs: list[SsccCode] = Field(
        default_factory=list,
        max_length=200,
        description="SSCCs of the pallets that carry the line (18 digits, valid check digit), up to 200; the gate "
        "matches the pallets' QR codes against them.",
        examples=[["089300010000000017"]],
    )
    lots: list[LotNumber] = Field(
        default_factory=list,
        max_length=200,
        description="Lot numbers (GS1 AI 10, up to 20 characters) of `gtin` that the line draws on, up to 200; "
        "every pallet carrying them counts.",
        examples=[["LC2026A"]],
    )

    @model_validator(mode="after")
    def _something(self) -> GoodsTrace:
        if not self.ssccs and not self.lots:
            raise PydanticCustomError("trace.empty", "name at least one pallet (ssccs) or lot (lots)")
        return self


class GoodsItem(InputSchema):
    """One goods line (GovernmentAgencyGoodsItem)."""

    hs_code: HsCode = Field(
        description="Tariff line of the goods: 8-digit HS code of the ASEAN Harmonised Tariff Nomenclature (AHTN "
        "2022), digits only (0810.90.20 is written 08109020); chapter 01-97, not 77.",
    )
    description: Annotated[str, Field(min_length=3, max_length=500)] = Field(
        description="Commercial description of the goods, precise enough to classify them (3-500 characters).",
        examples=["Fresh lychees, in cartons"],
    )
    origin: Country = Field(description="Country of origin of the goods: ISO 3166-1 alpha-2, e.g. CN.")
    quantity: Annotated[Decimal, Field(gt=0, max_digits=16, decimal_places=3)] = Field(
        description="Quantity in `unit`, > 0, up to 3 decimals; a JSON number or a decimal string.",
        examples=["12000"],
    )
    unit: Unit = Field(
        description="Unit of `quantity`: UN/ECE Recommendation 20 code (KGM kilogram, TNE tonne, C62 piece, "
        "LTR litre, MTQ cubic metre, SET set, PR pair, XCT carton, XBX box, ...)."
    )
    gross_mass_kg: Mass = Field(
        description="Gross mass of the line in kilograms (goods and packing), > 0, up to 3 decimals.",
        examples=["13000"],
    )
    net_mass_kg: Mass = Field(
        description="Net mass of the line in kilograms (goods alone), > 0, not above `gross_mass_kg`.",
        examples=["12000"],
    )
    customs_value: Annotated[
        Decimal,
        Field(gt=0, max_digits=18, decimal_places=2, description="Customs value of the line in `currency`, up to 2 "
              "decimals, below 10^13 in its currency; the declaration's total, converted at the registration "
              "date's rate, must stay below 10^13 VND", examples=["9600.00"]),
        AfterValidator(_customs_value),
    ]  # fmt: skip
    currency: Currency = Field(description="Currency of `customs_value`: ISO 4217 code, e.g. USD, CNY, VND.")
    incoterms: Incoterm = Field(
        description="Delivery term of the sale: Incoterms 2020 rule (EXW, FCA, CPT, CIP, DAP, DPU, DDP, FAS, FOB, "
        "CFR, CIF); tells which freight and insurance the customs value includes."
    )
    trace: GoodsTrace | None = Field(
        None,
        description="Optional: the pallets and lots of the traceability repository that carry this line (farm "
        "produce for export). When given, the declaration is checked against the farm diaries and packing records "
        "on submission and is not cleared before that check has answered.",
        examples=[{"gtin": "08930001000018", "ssccs": ["089300010000000017"], "lots": ["LC2026A"]}],
    )


class PreferentialOrigin(InputSchema):
    """An ACFTA Form E certificate of origin."""

    form_e_number: Annotated[str, Field(min_length=5, max_length=32, pattern=r"^[A-Z0-9/\-]+$")] = Field(
        description="Reference number printed on the Form E (capital letters, digits, `/` and `-`); claims the "
        "ACFTA preferential duty rate.",
        examples=["E263600001234567"],
    )
    issued_on: dt.date = Field(
        description="Date the Form E was issued: ISO 8601 date, e.g. 2026-11-20 (not in the future).",
        examples=["2026-11-20"],
    )


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
            # An import line names no Vietnamese pallets; an export line may (see GoodsItem.trace's example).
            "trace": None,
        }
    ],
    "total_gross_mass_kg": "13000",
    "total_net_mass_kg": "12000",
    "preferential_origin": {"form_e_number": "E263600001234567", "issued_on": "2026-11-20"},
    "partner_reference": None,
}
# What the API documents (every field filled: OpenAPI drops nulls): the import names the exporting side's declaration.
DOCUMENTED_EXAMPLE: dict[str, Any] = {**EXAMPLE, "partner_reference": "HK-2026-000042"}


# The Kim Thành gate's typical export: a Lào Cai cooperative's lychees to Hekou, the goods line naming the pallets
# and lot of the traceability repository it carries (checked on submission: docs/traceability.md).
EXPORT_EXAMPLE: dict[str, Any] = {
    **EXAMPLE,
    "procedure_code": "B11",
    "kind": "export",
    "consignor": {
        "name": "Hop tac xa Nong nghiep Bac Ha",
        "address": "Thon Na Hoi, Bac Ha, Lao Cai, Viet Nam",
        "country": "VN",
        "tax_id": "0100233488",
    },
    "consignee": EXAMPLE["consignor"],
    "items": [
        {
            **EXAMPLE["items"][0],
            "origin": "VN",
            "trace": {"gtin": "08930001000018", "ssccs": ["089300010000000179"], "lots": ["LC2026A"]},
        }
    ],
}


class DeclarationIn(InputSchema):
    """A declaration as a trader files or amends it (the full body every time)."""

    model_config = InputSchema.model_config | {"json_schema_extra": {"examples": [EXPORT_EXAMPLE, DOCUMENTED_EXAMPLE]}}

    kind: Kind = Field(description="`import` into Viet Nam or `export` from it; decides which procedure codes apply.")
    procedure_code: Annotated[
        str,
        Field(
            pattern=r"^[A-Z]\d{2}$",
            description="VNACCS type code (mã loại hình), e.g. A11 (import for domestic consumption) or B11 (export "
            "for trade); must be an import code for `kind: import` and an export code for `kind: export`",
            json_schema_extra={"enum": sorted(codes.IMPORT_PROCEDURES | codes.EXPORT_PROCEDURES)},
            examples=["A11", "B11"],
        ),
    ]
    border_gate: Annotated[str, Field(pattern=r"^[A-Z]{3,12}$")] = Field(
        "KIMTHANH",
        description="Border gate the goods cross, as the platform names it (3-12 capital letters); decides the "
        "registration number's prefix (KIMTHANH: KT, HEKOU: HK). Omitted: this deployment's gate (KIMTHANH on the "
        "Vietnamese side, HEKOU on the Chinese one).",
        examples=["KIMTHANH"],
    )
    consignor: Party = Field(description="Who sends the goods (the seller or shipper abroad for an import).")
    consignee: Party = Field(description="Who receives the goods (the importer in Viet Nam for an import).")
    transport: Transport = Field(description="The truck that carries the goods across the gate, and its driver.")
    containers: list[Container] = Field(
        default_factory=list,
        max_length=50,
        description="Containers on the truck (none for bulk or break-bulk); each number at most once.",
    )
    items: list[GoodsItem] = Field(min_length=1, max_length=999, description="The goods lines, 1 to 999.")
    total_gross_mass_kg: Mass = Field(
        description="Gross mass of the consignment in kilograms: the sum of the lines' `gross_mass_kg` (to 0.001).",
        examples=["13000"],
    )
    total_net_mass_kg: Mass = Field(
        description="Net mass of the consignment in kilograms: the sum of the lines' `net_mass_kg` (to 0.001).",
        examples=["12000"],
    )
    preferential_origin: PreferentialOrigin | None = Field(
        None,
        description="The ACFTA Form E certificate of origin: on an import, claims the preferential duty rate (verified "
        "against the certificates the exporting administration sent); on an export, the Form E issued for the "
        "goods, sent to the importing side with the pre-arrival notice.",
    )
    partner_reference: Annotated[str, Field(min_length=3, max_length=35, pattern=r"^[A-Za-z0-9/\-.]+$")] | None = Field(
        None,
        description="Import only: the consignment's reference on the exporting side (its export declaration "
        "number, or the UCR), up to 35 characters (WCO DM UCR, ID 016); links this declaration to the partner "
        "administration's pre-arrival notice, certificates and crossings for the mirror checks.",
        examples=["HK-2026-000042"],
    )

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
            # The context travels along: it fills the message in the client's language (kernel/errors.py).
            "type": PydanticCustomError(e["type"], e["msg"].replace("{", "(").replace("}", ")"), e.get("ctx")),
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

    action: str = Field(
        description="What happened: create, submit, amend, cancel, clear, request_documents, "
        "provide_documents, inspect, reject, release, exit, expire.",
        examples=["submit"],
    )
    from_status: str | None = Field(description="Status before the change (null for the creation).", examples=["draft"])
    to_status: str = Field(description="Status after the change.", examples=["submitted"])
    actor: str = Field(
        description="Who made the change: `<role>:<key id>` (e.g. `trader:k1a2b3`), `system:<part>` for the "
        "platform (e.g. `system:risk`); a trader sees customs staff by role (`customs officer`).",
        examples=["customs officer"],
    )
    reason: str | None = Field(
        description="Why, when the actor gave a reason (cancellation, decision).",
        examples=["documents consistent with the goods"],
    )
    version: int = Field(description="Body version the change applied to.", examples=[1])
    at: dt.datetime = Field(description="When, ISO 8601 with UTC offset.", examples=["2026-11-28T08:31:12+00:00"])


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
    since: dt.datetime | None = Field(
        None, description="When customs asked (the request's time), if customs asked", examples=["2026-11-28T05:12:09Z"]
    )
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

    id: str = Field(
        description="Identifier of the declaration (UUID), assigned by the platform when it is filed; used in URLs.",
        examples=["0192f0c4-7d55-7a3e-9c1b-3b8f4e2a9d10"],
    )
    number: str | None = Field(
        description="Registration number, assigned on submission (e.g. KT-2026-000123)", examples=["KT-2026-000123"]
    )
    status: Status = Field(description="Where the declaration is in its lifecycle (set by the platform).")
    kind: Kind = Field(description="`import` or `export`, as filed.")
    border_gate: str = Field(description="Border gate, as filed.", examples=["KIMTHANH"])
    organisation_id: str = Field(
        description="The trader organisation that filed it (the API key's organisation).", examples=["lao-cai-trading"]
    )
    version: int = Field(description="Body version: 1, then +1 per amendment", examples=[1])
    etag: str = Field(
        description="The declaration's current ETag (also in the `ETag` header): send it as `If-Match` to amend.",
        examples=['"3-5d41402abc4b"'],
    )
    body_sha256: str = Field(
        description="SHA-256 of the RFC 8785 canonical JSON of the body",
        examples=["9f2c5e0b6d1a4b7c8e3f2a1d0c9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b"],
    )
    body: DeclarationIn = Field(description="The declaration as the trader last filed or amended it.")
    created_at: dt.datetime = Field(
        description="When it was filed (ISO 8601, UTC offset).", examples=["2026-11-28T08:31:12+07:00"]
    )
    updated_at: dt.datetime = Field(
        description="When it last changed (ISO 8601, UTC offset).", examples=["2026-11-28T08:31:12+07:00"]
    )
    submitted_at: dt.datetime | None = Field(
        description="When it was submitted and registered; null for a draft.", examples=["2026-11-28T08:31:12+07:00"]
    )
    allowed_actions: list[str] = Field(
        description="What the caller may do next (trader actions or officer decisions)", examples=[["amend", "cancel"]]
    )
    channel: Literal["green", "yellow", "red"] | None = Field(
        description="Risk channel, set at registration; an amendment never lowers it",
        examples=["yellow"],
    )
    duties: dict[str, Any] | None = Field(
        description="Per-line duty breakdown, rates used, and totals in VND",
        examples=[
            {
                "assessed": True,
                "registration_date": "2026-11-28",
                "form_e_applied": True,
                "lines": [
                    {
                        "line": 1,
                        "hs_code": "08109020",
                        "customs_value": "9600.00",
                        "currency": "USD",
                        "vnd_per_unit": "25400",
                        "value_vnd": 243840000,
                        "import_basis": "ACFTA",
                        "import_rate": "0",
                        "import_duty_vnd": 0,
                        "vat_rate": "5",
                        "vat_vnd": 12192000,
                        "export_rate": None,
                        "export_duty_vnd": 0,
                        "total_vnd": 12192000,
                        "tariff_status": "verified",
                        "problems": [],
                    }
                ],
                "import_duty_vnd": 0,
                "vat_vnd": 12192000,
                "export_duty_vnd": 0,
                "total_vnd": 12192000,
            }
        ],
    )
    duties_due_vnd: int = Field(
        description="Duties and taxes still to pay, in whole VND (0 before assessment and once paid).",
        examples=[12192000],
    )
    paid_vnd: int = Field(description="Payments confirmed by the treasury so far, in whole VND.", examples=[0])
    next_step: str | None = Field(
        description="What the trader is to do next (upload documents, present the goods, pay the duties due...)",
        examples=["pay the 12192000 VND of duties still due: the goods are released once paid in full"],
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
        description="rule_set_version, score, reasons (each rule hit with its weight; trace-check hits `trace_*` "
        "with their evidence), random_draw, the commitment the ledger's `declaration.assessed` event carries, and "
        "`trace` when goods lines name pallets or lots: the latest trace check (version, failures, anomaly flags "
        "with their explanation, pallets)",
        examples=[
            {
                "declaration_id": "0192f0c4-7d55-7a3e-9c1b-3b8f4e2a9d10",
                "version": 1,
                "body_sha256": "9f2c5e0b6d1a4b7c8e3f2a1d0c9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b",
                "channel": "yellow",
                "score": 40,
                "rule_set_version": "2026.12.1",
                "reasons": [
                    {
                        "rule": "new_trader",
                        "weight": 40,
                        "detail": "first declaration of this organisation",
                        "reason": "no compliance history",
                    }
                ],
                "random_draw": 0.532117,
                "gate_mismatches": 0,
                "commitment": "9f2c5e0b6d1a4b7c8e3f2a1d0c9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b",
            }
        ],
    )
    assigned_officer: str | None = Field(
        description="Key id of the officer the declaration is assigned to for review; null when unassigned.",
        examples=["a1b2c3d4e5f6"],
    )


# The name the review endpoints use for the officer view.
Declaration = OfficerDeclaration


class TraderDeclarationPage(Schema):
    """A page of a trader's declarations; pass `next_cursor` as `cursor` for the next."""

    items: list[TraderDeclaration] = Field(description="The declarations of this page, newest first.")
    next_cursor: str | None = Field(
        description="Opaque cursor of the next page; null on the last page.",
        examples=["MjAyNi0xMS0yOFQwMTozMToxMiswMDowMA"],
    )


class OfficerDeclarationPage(Schema):
    """A page of declarations as officers see them; pass `next_cursor` as `cursor` for the next."""

    items: list[OfficerDeclaration] = Field(description="The declarations of this page, newest first.")
    next_cursor: str | None = Field(
        description="Opaque cursor of the next page; null on the last page.",
        examples=["MjAyNi0xMS0yOFQwMTozMToxMiswMDowMA"],
    )


class VersionOut(Schema):
    """A stored body version."""

    version: int = Field(description="Body version: 1 as filed, +1 per amendment.", examples=[1])
    body_sha256: str = Field(
        description="SHA-256 (hex) of the RFC 8785 canonical JSON of `body`.",
        examples=["9f2c5e0b6d1a4b7c8e3f2a1d0c9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b"],
    )
    body: dict[str, Any] = Field(
        description="The declaration body of this version, as filed (see DeclarationIn).", examples=[EXAMPLE]
    )
    created_at: dt.datetime = Field(
        description="When this version was stored (ISO 8601, UTC offset).", examples=["2026-11-28T08:31:12+07:00"]
    )
    actor: str = Field(description="Who filed this version (`trader:<key id>`).", examples=["trader:k1a2b3"])


class History(Schema):
    """Every state change and every body version of a declaration."""

    id: str = Field(
        description="Identifier of the declaration (UUID).", examples=["0192f0c4-7d55-7a3e-9c1b-3b8f4e2a9d10"]
    )
    number: str | None = Field(description="Registration number; null for a draft.", examples=["KT-2026-000123"])
    transitions: list[Transition] = Field(description="Every state change, oldest first.")
    versions: list[VersionOut] = Field(description="Every body version, oldest first.")


class AssessmentOut(Schema):
    """One assessment's confidential record and the salt of its commitment (officers and admins): the SHA-256 of
    the RFC 8785 canonical JSON of `record` with `salt` added equals the `assessment_sha256` of the
    `declaration.assessed` event in the ledger."""

    version: int = Field(description="Body version that was assessed.", examples=[1])
    record: dict[str, Any] = Field(
        description="The assessment: rule set version, score, the rules hit with their weights, random draw and "
        "the channel chosen (confidential: never shown to traders).",
        examples=[
            {
                "declaration_id": "0192f0c4-7d55-7a3e-9c1b-3b8f4e2a9d10",
                "version": 1,
                "body_sha256": "9f2c5e0b6d1a4b7c8e3f2a1d0c9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b",
                "channel": "yellow",
                "score": 40,
                "rule_set_version": "2026.12.1",
                "reasons": [
                    {
                        "rule": "new_trader",
                        "weight": 40,
                        "detail": "first declaration of this organisation",
                        "reason": "no compliance history",
                    }
                ],
                "random_draw": 0.532117,
                "gate_mismatches": 0,
            }
        ],
    )
    salt: str = Field(
        description="Random salt (hex) added to `record` before hashing, so the commitment reveals nothing by itself.",
        examples=["3f1e9a7c5b2d4e6f8a0b1c2d3e4f5a6b"],
    )
    commitment: str = Field(
        description="SHA-256 (hex) of the canonical JSON of `record` with `salt`: equals the "
        "ledger event's `assessment_sha256`.",
        examples=["9f2c5e0b6d1a4b7c8e3f2a1d0c9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b"],
    )
    created_at: dt.datetime = Field(
        description="When the assessment was made (ISO 8601, UTC offset).", examples=["2026-11-28T08:31:12+07:00"]
    )


class CancelIn(InputSchema):
    """Why the declaration is cancelled."""

    model_config = InputSchema.model_config | {
        "json_schema_extra": {"examples": [{"reason": "Buyer cancelled the order; goods not shipped"}]}
    }

    reason: Annotated[str, Field(min_length=3, max_length=1000)] = Field(
        description="Why the trader cancels (3-1000 characters); kept in the history.",
        examples=["Buyer cancelled the order; goods not shipped"],
    )


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
