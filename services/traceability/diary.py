"""The e-production diary (nhật ký sản xuất điện tử): plain entries a cooperative or packhouse records, turned into
EPCIS 2.0 events (and so hashed, stored and put in the ledger like any captured event).

| entry | EPCIS event | bizStep | what it carries |
| --- | --- | --- | --- |
| planting | ObjectEvent OBSERVE | sg planting | crop, area (ha) |
| fertilising | ObjectEvent OBSERVE | sg fertilising | product, quantity (kg) |
| spraying | ObjectEvent OBSERVE | sg spraying | product, active ingredient, pre-harvest interval (days) |
| harvest | ObjectEvent ADD of the lot (GTIN + lot) | commissioning | quantity (kg), area (ha), growing-area code |
| packing | TransformationEvent: lots in, pallet (SSCC) out | packing | quantities per lot |
| inspection | ObjectEvent OBSERVE of pallets | inspecting | phytosanitary certificate (`cert` transaction), result |
| shipping | ObjectEvent OBSERVE of pallets | shipping | destination |

Steps with no CBV 2.0 term (planting, fertilising, spraying) are URIs of our own vocabulary, as EPCIS allows.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, Field, field_validator

from services.kernel.auth import Principal, Role
from services.kernel.errors import Forbidden, Unprocessable
from services.kernel.schemas import InputSchema
from services.traceability import identifiers
from services.traceability.models import EpcisSite

NAMESPACE = "https://smartgate.example/epcis/"
CONTEXT: list[Any] = ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld", {"sg": NAMESPACE}]
OWN_STEPS = {"planting", "fertilising", "spraying"}
LOT = r"^[!-\"%-/0-9:-?A-Z_a-z]{1,20}$"  # GS1 AI (10): up to 20 characters of the GS1 AI encodable set 82

Gln = Annotated[str, Field(pattern=r"^\d{13}$", description="the site's GLN", examples=["8930001000001"])]
Gtin = Annotated[str, Field(pattern=r"^\d{8,14}$", description="the product's GTIN", examples=["08930001000018"])]
Sscc = Annotated[str, Field(pattern=r"^\d{18}$", description="the pallet's SSCC", examples=["089300010000000017"])]
Kg = Annotated[
    Decimal,
    Field(
        gt=0,
        le=10_000_000,
        max_digits=12,
        decimal_places=3,
        description="mass in kilograms, > 0, up to 3 decimals (a JSON number or a decimal string)",
        examples=["1250.5"],
    ),
]


class _Entry(InputSchema):
    at: AwareDatetime = Field(
        description="when it happened (with its offset, e.g. +07:00)", examples=["2026-06-10T06:30:00+07:00"]
    )
    site_gln: Gln

    @field_validator("at")
    @classmethod
    def _past(cls, value: dt.datetime) -> dt.datetime:
        if value > dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10):
            raise ValueError("a diary entry cannot be in the future")
        return value


class Planting(_Entry):
    """A crop planted on a growing area (producer)."""

    kind: Literal["planting"] = Field(description="The entry type: `planting`.")
    crop: str = Field(min_length=1, max_length=60, description="The crop planted.", examples=["lychee"])
    area_ha: Decimal = Field(
        gt=0,
        le=100_000,
        decimal_places=4,
        description="Area planted, in hectares (up to 4 decimals).",
        examples=["2.5"],
    )


class Fertilising(_Entry):
    """A fertiliser applied (producer)."""

    kind: Literal["fertilising"] = Field(description="The entry type: `fertilising`.")
    product: str = Field(
        min_length=1, max_length=120, description="The fertiliser's trade name.", examples=["NPK 16-16-8"]
    )
    quantity_kg: Kg


class Spraying(_Entry):
    """A plant protection product sprayed (producer)."""

    kind: Literal["spraying"] = Field(description="The entry type: `spraying`.")
    product: str = Field(
        min_length=1, max_length=120, description="The product's trade name.", examples=["Abatimec 3.6EC"]
    )
    active_ingredient: str = Field(
        min_length=1, max_length=120, description="Its active ingredient.", examples=["abamectin"]
    )
    pre_harvest_interval_days: int = Field(
        ge=0, le=365, description="no harvest before this many days have passed", examples=[7]
    )


class Harvest(_Entry):
    """A lot harvested (producer): the lot (GTIN + lot number) comes into being."""

    kind: Literal["harvest"] = Field(description="The entry type: `harvest`.")
    gtin: Gtin
    lot: str = Field(pattern=LOT, description="Lot number (GS1 AI 10, up to 20 characters).", examples=["LC2026A"])
    quantity_kg: Kg
    area_ha: Decimal = Field(
        gt=0, le=100_000, decimal_places=4, description="Area harvested, in hectares.", examples=["2.5"]
    )


class LotIn(InputSchema):
    """A quantity of one lot packed."""

    gtin: Gtin
    lot: str = Field(pattern=LOT, description="Lot number (GS1 AI 10, up to 20 characters).", examples=["LC2026A"])
    quantity_kg: Kg


class Packing(_Entry):
    """Lots packed onto a pallet (packhouse)."""

    kind: Literal["packing"] = Field(description="The entry type: `packing`.")
    lots: list[LotIn] = Field(min_length=1, max_length=50, description="The lots packed (1 to 50).")
    sscc: Sscc


class Inspection(_Entry):
    """Pallets inspected and certified (plant protection inspector)."""

    kind: Literal["inspection"] = Field(description="The entry type: `inspection`.")
    ssccs: list[Sscc] = Field(min_length=1, max_length=200, description="The pallets inspected (SSCCs, 1 to 200).")
    certificate: str = Field(
        pattern=r"^[A-Za-z0-9/-]{3,40}$", description="phytosanitary certificate number", examples=["VN-LC-2026/00123"]
    )
    conformant: bool = Field(True, description="Whether the pallets passed the inspection.")


class Shipping(_Entry):
    """Pallets shipped (packhouse)."""

    kind: Literal["shipping"] = Field(description="The entry type: `shipping`.")
    ssccs: list[Sscc] = Field(min_length=1, max_length=200, description="The pallets shipped (SSCCs, 1 to 200).")
    destination_gln: Gln | None = Field(None, description="GLN of where they go, if known.")


DiaryEntry = Annotated[
    Planting | Fertilising | Spraying | Harvest | Packing | Inspection | Shipping, Field(discriminator="kind")
]
WHO: dict[str, tuple[Role, ...]] = {
    "planting": (Role.producer,),
    "fertilising": (Role.producer,),
    "spraying": (Role.producer,),
    "harvest": (Role.producer,),
    "packing": (Role.packhouse,),
    "shipping": (Role.packhouse,),
    "inspection": (Role.inspector,),
}
EXAMPLE: dict[str, Any] = {
    "kind": "harvest",
    "at": "2026-06-10T06:30:00+07:00",
    "site_gln": "8930001000001",
    "gtin": "08930001000018",
    "lot": "LC2026A",
    "quantity_kg": "1250.5",
    "area_ha": "2.5",
}


def _place(gln: str) -> dict[str, str]:
    return {"id": f"{identifiers.ID_GS1}/414/{gln}"}


def _number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def _sscc(value: str) -> str:
    try:
        return f"{identifiers.ID_GS1}/00/{identifiers.sscc(value)}"
    except identifiers.IdentifierError as exc:
        raise Unprocessable(str(exc), code="epcis.bad_sscc") from exc


def _lot_class(gtin: str, lot: str) -> str:
    try:
        return f"{identifiers.ID_GS1}/01/{identifiers.gtin(gtin)}/10/{lot}"
    except identifiers.IdentifierError as exc:
        raise Unprocessable(str(exc), code="epcis.bad_gtin") from exc


def check(entry: Any, principal: Principal, site: EpcisSite | None) -> None:
    """Who may record which entry, at which site."""
    allowed = (*WHO[entry.kind], Role.admin)
    if principal.role not in allowed:
        raise Forbidden(f"a {principal.role.value} does not record {entry.kind}", code="epcis.diary_role")
    if site is None:
        raise Unprocessable(
            f"site {entry.site_gln} is not registered (PUT /api/v1/epcis/sites/{{gln}})", code="epcis.no_site"
        )
    wanted = "farm" if Role.producer in WHO[entry.kind] else "packhouse" if Role.packhouse in WHO[entry.kind] else None
    if wanted and site.kind != wanted:
        raise Unprocessable(f"{entry.kind} happens at a {wanted}; {site.gln} is a {site.kind}", code="epcis.site_kind")
    if principal.role in (Role.producer, Role.packhouse) and site.organisation_id != principal.organisation_id:
        raise Forbidden(f"site {site.gln} belongs to another organisation", code="epcis.site_owner")


def to_event(entry: Any, site: EpcisSite) -> dict[str, Any]:
    """The EPCIS 2.0 event (JSON-LD, with its @context) of a diary entry."""
    at = entry.at
    offset = at.strftime("%z")
    event: dict[str, Any] = {
        "@context": CONTEXT,
        "eventTime": at.isoformat(),
        "eventTimeZoneOffset": f"{offset[:3]}:{offset[3:]}",
        "readPoint": _place(site.gln),
        "bizLocation": _place(site.gln),
    }
    if entry.kind in OWN_STEPS:
        event.update(type="ObjectEvent", action="OBSERVE", epcList=[], bizStep=f"{NAMESPACE}bizstep/{entry.kind}")
        event["quantityList"] = []
        if entry.kind == "planting":
            event.update({"sg:crop": entry.crop, "sg:areaHa": _number(entry.area_ha)})
        elif entry.kind == "fertilising":
            event.update({"sg:product": entry.product, "sg:quantityKg": _number(entry.quantity_kg)})
        else:
            event.update(
                {
                    "sg:product": entry.product,
                    "sg:activeIngredient": entry.active_ingredient,
                    "sg:preHarvestIntervalDays": entry.pre_harvest_interval_days,
                }
            )
        del event["quantityList"]
        event["sg:growingArea"] = site.vn_code
    elif entry.kind == "harvest":
        event.update(type="ObjectEvent", action="ADD", epcList=[], bizStep="commissioning", disposition="active")
        event["quantityList"] = [
            {"epcClass": _lot_class(entry.gtin, entry.lot), "quantity": _number(entry.quantity_kg), "uom": "KGM"}
        ]
        event["ilmd"] = {"sg:growingArea": site.vn_code, "sg:harvestAreaHa": _number(entry.area_ha)}
    elif entry.kind == "packing":
        event.update(type="TransformationEvent", bizStep="packing", disposition="in_progress")
        event["inputQuantityList"] = [
            {"epcClass": _lot_class(lot.gtin, lot.lot), "quantity": _number(lot.quantity_kg), "uom": "KGM"}
            for lot in entry.lots
        ]
        event["outputEPCList"] = [_sscc(entry.sscc)]
        event["sg:packingHouse"] = site.vn_code
    elif entry.kind == "inspection":
        event.update(type="ObjectEvent", action="OBSERVE", bizStep="inspecting")
        event["epcList"] = sorted({_sscc(s) for s in entry.ssccs})
        event["disposition"] = "conformant" if entry.conformant else "non_conformant"
        event["bizTransactionList"] = [{"type": "cert", "bizTransaction": f"{NAMESPACE}phyto/{entry.certificate}"}]
    else:  # shipping
        event.update(type="ObjectEvent", action="OBSERVE", bizStep="shipping", disposition="in_transit")
        event["epcList"] = sorted({_sscc(s) for s in entry.ssccs})
        if entry.destination_gln:
            event["destinationList"] = [{"type": "location", "destination": _place(entry.destination_gln)["id"]}]
    return event
