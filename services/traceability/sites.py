"""Farms and packing houses as GLNs, with their Vietnamese and Chinese registration codes (master data)."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any, Literal

from pydantic import Field, field_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.kernel.auth import Principal, Role
from services.kernel.database import utcnow
from services.kernel.errors import Forbidden, NotFound, Unprocessable
from services.kernel.schemas import InputSchema
from services.traceability import identifiers
from services.traceability.models import EpcisSite

__all__ = ["EpcisSite", "SiteIn", "get_site", "list_sites", "put_site", "site_json"]

# Codes issued by Vietnam's Plant Protection Department: `VN-` then letters/digits in dash-separated groups
# (e.g. a growing area `VN-LCOR-0012`, a packing house `VN-LCPH-003`). Only the shape is checked here.
VN_CODE = re.compile(r"VN(-[A-Z0-9]{1,12}){1,4}")
# GACC registration numbers of overseas producers: letters, digits, dashes and slashes.
CN_REGISTRATION = re.compile(r"[A-Z0-9][A-Z0-9/-]{2,39}")


class SiteIn(InputSchema):
    """A farm (its growing area) or a packing house."""

    kind: Literal["farm", "packhouse"] = Field(description="`farm` (a growing area) or `packhouse`.")
    name: str = Field(
        min_length=1, max_length=200, description="The site's name.", examples=["HTX Vải thiều Bắc Hà, vùng trồng 12"]
    )
    vn_code: str = Field(
        max_length=40,
        description="growing-area code (mã số vùng trồng) or packing-house code (mã số cơ sở đóng gói): VN- then "
        "dash-separated groups of letters and digits",
        examples=["VN-LCOR-0012"],
    )
    cn_registration: str | None = Field(
        default=None, max_length=40, description="GACC registration number", examples=["VNLC-2026-0012"]
    )
    province: str | None = Field(
        default=None, max_length=80, description="The province it is in.", examples=["Lào Cai"]
    )
    area_ha: Decimal | None = Field(
        default=None, gt=0, le=100_000, description="farms: the growing area, hectares", examples=["4.5"]
    )
    crops: list[str] = Field(
        default=[], max_length=20, description="Crops grown or packed (up to 20).", examples=[["lychee"]]
    )

    @field_validator("vn_code")
    @classmethod
    def _vn(cls, value: str) -> str:
        if not VN_CODE.fullmatch(value.upper()):
            raise ValueError("a Vietnamese code is VN- then letters/digits groups, e.g. VN-LCOR-0012")
        return value.upper()

    @field_validator("cn_registration")
    @classmethod
    def _cn(cls, value: str | None) -> str | None:
        if value is not None and not CN_REGISTRATION.fullmatch(value.upper()):
            raise ValueError("letters, digits, '-' and '/', 3 to 40")
        return value.upper() if value else None


EXAMPLE_SITE: dict[str, Any] = {
    "kind": "farm",
    "name": "HTX Vải thiều Bắc Hà, vùng trồng 12",
    "vn_code": "VN-LCOR-0012",
    "cn_registration": "VNLC-2026-0012",
    "province": "Lào Cai",
    "area_ha": "4.5",
    "crops": ["lychee"],
}


def site_json(site: EpcisSite) -> dict[str, Any]:
    return {
        "gln": site.gln,
        "id": f"{identifiers.ID_GS1}/414/{site.gln}",
        "kind": site.kind,
        "name": site.name,
        "organisation_id": site.organisation_id,
        "vn_code": site.vn_code,
        "cn_registration": site.cn_registration,
        "province": site.province,
        "area_ha": site.area_ha,
        "crops": site.crops,
        "updated_at": site.updated_at.isoformat(),
    }


def put_site(session: Session, gln: str, body: SiteIn, principal: Principal) -> tuple[EpcisSite, bool]:
    """Create or update a site; producers register farms, packhouses packing houses, of their own organisation."""
    try:
        gln = identifiers.gln(gln)
    except identifiers.IdentifierError as exc:
        raise Unprocessable(f"not a GLN: {exc}", code="epcis.bad_gln") from exc
    if principal.role is Role.producer and body.kind != "farm":
        raise Forbidden("a producer registers farms", code="epcis.site_kind")
    if principal.role is Role.packhouse and body.kind != "packhouse":
        raise Forbidden("a packhouse registers packing houses", code="epcis.site_kind")
    site = session.get(EpcisSite, gln)
    if site is not None and principal.role in (Role.producer, Role.packhouse):
        if site.organisation_id != principal.organisation_id:
            raise Forbidden(f"site {gln} belongs to another organisation", code="epcis.site_owner")
    created = site is None
    if site is None:
        site = EpcisSite(gln=gln, organisation_id=principal.organisation_id)
        session.add(site)
    site.kind, site.name, site.vn_code = body.kind, body.name, body.vn_code
    site.cn_registration, site.province, site.crops = body.cn_registration, body.province, list(body.crops)
    site.area_ha = str(body.area_ha) if body.area_ha is not None else None
    site.updated_by, site.updated_at = principal.actor, utcnow()
    session.flush()
    return site, created


def get_site(session: Session, gln: str) -> EpcisSite:
    site = session.get(EpcisSite, gln) if len(gln) == 13 else None
    if site is None:
        raise NotFound(f"no site {gln[:20]!r}", code="epcis.no_site")
    return site


def list_sites(session: Session, kind: str | None) -> list[EpcisSite]:
    stmt = select(EpcisSite).order_by(EpcisSite.gln).limit(1000)
    if kind:
        stmt = stmt.where(EpcisSite.kind == kind)
    return list(session.scalars(stmt))
