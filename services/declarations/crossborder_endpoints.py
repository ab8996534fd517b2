"""HTTP endpoints of the cross-border view (issue 14): our declaration beside the partner's data, the consignment's
journey across both gates, and the cross-border times (customs staff only)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from fastapi import Path as PathParam
from pydantic import Field

from services.declarations import crossborder, service
from services.declarations.endpoints import PROBLEMS
from services.kernel.deps import CurrentOfficer, SessionDep
from services.kernel.schemas import Schema

router = APIRouter(tags=["review"])
Reference = Annotated[str, PathParam(pattern=r"^[A-Za-z0-9/\-.]{3,64}$")]


class MirrorField(Schema):
    """One figure of an HS6 subheading, ours and the partner's."""

    name: str = Field(description="`quantity`, `gross_mass_kg` or `origin`.", examples=["gross_mass_kg"])
    ours: str | None = Field(description="Our declaration's figure (lines of the HS6 summed).", examples=["13000"])
    theirs: str | None = Field(description="The partner's figure.", examples=["13500"])
    differs: bool = Field(description="The mirror check flagged it (beyond the rule set's tolerance).",
                          examples=[True])  # fmt: skip


class MirrorRow(Schema):
    """One HS6 subheading on either side."""

    hs6: str = Field(description="HS 6-digit subheading.", examples=["081090"])
    fields: list[MirrorField] = Field(description="The figures compared.")


class PartnerView(Schema):
    """Our declaration and the partner administration's data on the same consignment, side by side."""

    reference: str | None = Field(description="The consignment's reference shared with the partner (the "
                                  "exporting side's declaration number).", examples=["HK-2026-000042"])  # fmt: skip
    received: bool = Field(description="The partner's pre-arrival notice was received.", examples=[True])
    rows: list[MirrorRow] = Field(description="Per HS6: our figures and the partner's.")
    controls: list[dict[str, Any]] = Field(
        description="Control results the partner shared (inspection outcomes, mirror findings).",
        examples=[[{"outcome": "compliant", "findings": [], "at": "2026-12-03T10:00:00+00:00",
                    "sender": "cn-hekou"}]],
    )  # fmt: skip
    certificate: dict[str, Any] | None = Field(
        description="The Form E the exporting side sent under the claimed number (originCertificate payload).",
        examples=[{"id": "E263600001234567", "typeCode": "ACFTA-E"}],
    )
    origin_check: dict[str, Any] | None = Field(
        description="The verification of the Form E claim: verified, not_found or mismatch, with the reasons.",
        examples=[{"certificate": "E263600001234567", "status": "verified", "reasons": []}],
    )
    hits: list[dict[str, Any]] = Field(
        description="The cross-border rule hits of the latest assessment (mirror_discrepancy, origin_unverified) "
        "with their evidence.",
        examples=[[{"rule": "mirror_discrepancy", "weight": 40, "detail": "HS 081090 gross_mass: ours 13000, "
                    "partner 13500"}]],
    )  # fmt: skip


class Crossing(Schema):
    """One side's crossing of the consignment."""

    side: str = Field(description="`ours` or `partner`.", examples=["ours"])
    direction: str = Field(description="`exit` from the exporting country or `entry` into the importing one.",
                           examples=["exit"])  # fmt: skip
    at: str = Field(description="When (RFC 3339).", examples=["2026-12-03T08:00:00+00:00"])
    gate: str | None = Field(description="The border gate.", examples=["KIMTHANH"])
    truck_plate: str | None = Field(description="The truck's plate.", examples=["24C-123.45"])


class Journey(Schema):
    """A consignment across the border: exit on one side, entry on the other."""

    correlation_id: str = Field(description="The consignment's reference.", examples=["KT-2026-000001"])
    crossings: list[Crossing] = Field(description="The crossings known, oldest first.")
    closed: bool = Field(description="Both an exit and an entry are known.", examples=[True])
    cross_border_seconds: int | None = Field(description="Entry minus exit, in seconds.", examples=[2520])


class CrossBorderTimes(Schema):
    """The WCO Time Release Study across the border, over every closed journey."""

    journeys: int = Field(description="Closed journeys counted.", examples=[12])
    median_seconds: int | None = Field(description="Median exit-to-entry time.", examples=[2400])
    p90_seconds: int | None = Field(description="90th percentile.", examples=[5400])
    max_seconds: int | None = Field(description="Longest.", examples=[9000])


@router.get("/api/v1/review/declarations/{declaration_id}/partner", response_model=PartnerView, responses=PROBLEMS,
            summary="Our declaration beside the partner's data")  # fmt: skip
def partner_view(declaration_id: str, session: SessionDep, principal: CurrentOfficer) -> dict[str, Any]:
    """Per HS6, our figures and the partner administration's (its pre-arrival notice), what the mirror check
    flagged, the Form E received and its verification, and the partner's control results."""
    decl = service.get_visible(session, principal=principal, declaration_id=declaration_id)
    return crossborder.partner_side(session, decl)


@router.get("/api/v1/review/journeys/{reference}", response_model=Journey, responses=PROBLEMS,
            summary="A consignment's journey across the border")  # fmt: skip
def journey(reference: Reference, session: SessionDep, principal: CurrentOfficer) -> dict[str, Any]:
    """Our gate's crossing and the partner's, and the cross-border time once both are known."""
    return crossborder.journey(session, reference)


@router.get("/api/v1/review/cross-border-times", response_model=CrossBorderTimes, responses=PROBLEMS,
            summary="Cross-border times")  # fmt: skip
def cross_border_times(session: SessionDep, principal: CurrentOfficer) -> dict[str, Any]:
    """Exit on one side to entry on the other, over every closed journey (count, median, p90, max)."""
    return crossborder.cross_border_times(session)
