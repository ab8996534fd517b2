"""Request and response schemas of the Form E issuing endpoint."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from services.kernel.schemas import InputSchema, Schema

FORM_E_VALIDITY_DAYS = 365  # ACFTA Rules of Origin: valid for 12 months from the date of issue

Text = Annotated[str, Field(min_length=1, max_length=200)]
Quantity = Annotated[Decimal, Field(gt=0, max_digits=16, decimal_places=3)]


class CertificateParty(InputSchema):
    """The exporter or the importer named on the certificate (boxes 1 and 2 of the Form E)."""

    name: Text = Field(description="Legal name of the company.", examples=["Lao Cai Fruit Export JSC"])
    address: Annotated[str, Field(min_length=1, max_length=400)] = Field(
        description="Postal address, free text.", examples=["So 1 Duong Hoang Lien, Lao Cai, Viet Nam"]
    )
    country: Annotated[str, Field(pattern=r"^[A-Z]{2}$")] = Field(
        description="ISO 3166-1 alpha-2 country code of the address.", examples=["VN"]
    )
    tax_id: Annotated[str, Field(min_length=1, max_length=32)] | None = Field(
        None,
        description="Tax identifier: Vietnamese MST or Chinese unified social credit code.",
        examples=["0100233488"],
    )


class CertificateLine(InputSchema):
    """One goods line of the certificate (boxes 7 to 9)."""

    hs_code: Annotated[str, Field(pattern=r"^[0-9]{6}([0-9]{2})?$")] = Field(
        description="HS code of the goods: the 6-digit subheading, or the 8-digit national line (its first 6 digits "
        "are what the importing side verifies).",
        examples=["081090"],
    )
    description: Annotated[str, Field(min_length=3, max_length=500)] = Field(
        description="Description of the goods as on the certificate.", examples=["Fresh lychees, in cartons"]
    )
    quantity: Quantity = Field(description="Quantity certified, in `unit`, up to 3 decimals.", examples=["12000"])
    unit: Annotated[str, Field(pattern=r"^[A-Z0-9]{2,3}$")] = Field(
        description="UN/ECE Recommendation 20 unit of `quantity` (KGM, TNE, C62, XCT...).", examples=["KGM"]
    )
    gross_mass_kg: Quantity = Field(description="Gross mass of the line in kilograms.", examples=["13000"])
    origin_criterion: Annotated[str, Field(pattern=r"^(WO|PE|RVC[0-9]{2}|CTH|CTSH|CC|PSR)$")] = Field(
        description="ACFTA origin criterion (box 8): WO wholly obtained, PE produced from originating materials, "
        "RVC40 regional value content, CTH change of tariff heading, PSR product-specific rule.",
        examples=["WO"],
    )


CERTIFICATE_EXAMPLE: dict[str, Any] = {
    "number": "E263600001234567",
    "issuing_authority": "Regional Import-Export Management Office, Lao Cai (MOIT)",
    "exporter": {"name": "Lao Cai Fruit Export JSC", "address": "So 1 Duong Hoang Lien, Lao Cai, Viet Nam",
                 "country": "VN", "tax_id": "0100233488"},
    "importer": {"name": "Yunnan Hekou Fruit Trading Co., Ltd.", "address": "No. 8 Binlang Road, Hekou, Yunnan, China",
                 "country": "CN", "tax_id": "91110000600037341L"},
    "lines": [{"hs_code": "08109020", "description": "Fresh lychees, in cartons", "quantity": "12000", "unit": "KGM",
               "gross_mass_kg": "13000", "origin_criterion": "WO"}],
    "issue_date": "2026-11-20",
    "valid_until": "2027-11-20",
}  # fmt: skip


class CertificateIn(InputSchema):
    """An ACFTA Form E certificate of origin as the issuing authority issues it."""

    model_config = InputSchema.model_config | {"json_schema_extra": {"examples": [CERTIFICATE_EXAMPLE]}}

    number: Annotated[str, Field(pattern=r"^[A-Z0-9/\-]{5,32}$")] = Field(
        description="Reference number of the certificate (capital letters, digits, `/` and `-`), issued once.",
        examples=["E263600001234567"],
    )
    issuing_authority: Text = Field(
        description="Name of the issuing office, as printed on the certificate.",
        examples=["Regional Import-Export Management Office, Lao Cai (MOIT)"],
    )
    exporter: CertificateParty = Field(description="The exporter (box 1).")
    importer: CertificateParty = Field(
        description="The importer or consignee (box 2); its country is where the certificate is sent."
    )
    lines: list[CertificateLine] = Field(min_length=1, max_length=99, description="The goods lines, 1 to 99.")
    issue_date: dt.date = Field(description="Date of issue (ISO 8601), not in the future.", examples=["2026-11-20"])
    valid_until: dt.date | None = Field(
        None,
        description="Last day of validity; at most 12 months after issue, which is the default.",
        examples=["2027-11-20"],
    )

    @model_validator(mode="after")
    def _dates(self) -> CertificateIn:
        if self.issue_date > dt.date.today() + dt.timedelta(days=1):
            raise PydanticCustomError("form_e.future_date", "a Form E cannot be issued in the future")
        if self.issue_date < dt.date(2000, 1, 1):
            raise PydanticCustomError("form_e.past_date", "a Form E issued before 2000 is not a current certificate")
        latest = self.issue_date + dt.timedelta(days=FORM_E_VALIDITY_DAYS)
        if self.valid_until is None:
            self.valid_until = latest
        if not self.issue_date <= self.valid_until <= latest:
            raise PydanticCustomError("form_e.validity", "valid_until must lie within 12 months after issue_date")
        return self


class CertificateOut(Schema):
    """A Form E as stored: issued here, or received from the partner administration."""

    number: str = Field(description="Certificate reference number.", examples=["E263600001234567"])
    direction: str = Field(description="`issued` here, or `received` from the partner.", examples=["issued"])
    partner: str | None = Field(description="The administration it came from (received only).", examples=["cn-hekou"])
    issued_on: dt.date = Field(description="Date of issue.", examples=["2026-11-20"])
    valid_until: dt.date = Field(description="Last day of validity.", examples=["2027-11-20"])
    certificate: dict[str, Any] = Field(
        description="The certificate as exchanged (originCertificate.v1 payload, WCO Data Model names).",
        examples=[{"id": "E263600001234567", "typeCode": "ACFTA-E"}],
    )
    created_at: dt.datetime = Field(
        description="When it was issued or received here.", examples=["2026-11-20T09:00:00+00:00"]
    )


class CertificateList(Schema):
    """A certificate number as issued and/or received."""

    items: list[CertificateOut] = Field(description="The stored certificates with this number.")
