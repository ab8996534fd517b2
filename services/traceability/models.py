"""Tables of the traceability service: captured EPCIS events, the EPCs they name, and capture jobs."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from services.kernel.database import Base, UTCDateTime, new_id, utcnow


class EpcisCapture(Base):
    """One `POST /api/v1/epcis/capture`: what was accepted, or why not (EPCIS 2.0 capture job)."""

    __tablename__ = "epcis_captures"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    # accepted | rejected
    status: Mapped[str] = mapped_column(String(12))
    event_count: Mapped[int] = mapped_column(Integer, default=0)
    # Events already in the repository (same eventID, same content): accepted again without a second copy.
    duplicate_count: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class EpcisEvent(Base):
    """A captured EPCIS 2.0 event, as JSON-LD, with the fields the standard queries filter on."""

    __tablename__ = "epcis_events"
    __table_args__ = (
        Index("ix_epcis_events_time", "event_time", "id"),
        Index("ix_epcis_events_biz_step", "biz_step", "event_time"),
        Index("ix_epcis_events_biz_location", "biz_location", "event_time"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    # The capturer's eventID, or the event hash when it gave none.
    event_id: Mapped[str] = mapped_column(String(512), unique=True)
    # CBV 2.0 event hash ID, `ni:///sha-256;{hex}?ver=CBV2.0`.
    event_hash: Mapped[str] = mapped_column(String(100), index=True)
    event_type: Mapped[str] = mapped_column(String(32))
    event_time: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    record_time: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # CBV terms as bare words, other vocabularies' URIs as given; locations as canonical GS1 Digital Link URIs.
    biz_step: Mapped[str | None] = mapped_column(String(512))
    disposition: Mapped[str | None] = mapped_column(String(512), index=True)
    biz_location: Mapped[str | None] = mapped_column(String(512))
    capture_id: Mapped[str | None] = mapped_column(String(36), index=True)
    recorded_by: Mapped[str] = mapped_column(String(64))
    # The outbox event that puts the hash in the ledger (its ledger subject is `epcis:{id}`).
    ledger_event_id: Mapped[str] = mapped_column(String(36))
    body: Mapped[dict[str, Any]] = mapped_column(JSON)


class EpcisEventEpc(Base):
    """An EPC an event names, canonical: `direct` for epcList/childEPCs (MATCH_epc), `other` for parentID and the
    transformation's inputs and outputs (which MATCH_anyEPC adds)."""

    __tablename__ = "epcis_event_epcs"
    __table_args__ = (Index("ix_epcis_event_epcs_epc", "epc", "role"),)

    event_pk: Mapped[str] = mapped_column(
        String(36), ForeignKey("epcis_events.id", ondelete="CASCADE"), primary_key=True
    )
    epc: Mapped[str] = mapped_column(String(512), primary_key=True)
    role: Mapped[str] = mapped_column(String(8), primary_key=True)


__all__ = ["EpcisCapture", "EpcisEvent", "EpcisEventEpc", "EpcisSite", "TraceClaim"]


class EpcisSite(Base):
    """A farm (its growing area) or a packing house, identified by its GLN, with the codes export needs: the
    Vietnamese growing-area code (mã số vùng trồng) or packing-house code (mã số cơ sở đóng gói), and the
    registration number China's customs (GACC) gave it for the exporting country's list."""

    __tablename__ = "epcis_sites"

    gln: Mapped[str] = mapped_column(String(13), primary_key=True)
    # farm | packhouse
    kind: Mapped[str] = mapped_column(String(12))
    name: Mapped[str] = mapped_column(String(200))
    organisation_id: Mapped[str | None] = mapped_column(String(36), index=True)
    vn_code: Mapped[str] = mapped_column(String(40), index=True)
    cn_registration: Mapped[str | None] = mapped_column(String(40))
    province: Mapped[str | None] = mapped_column(String(80))
    area_ha: Mapped[str | None] = mapped_column(String(20))
    crops: Mapped[list[str]] = mapped_column(JSON, default=list)
    updated_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class TraceClaim(Base):
    """How much of one packed lot on one pallet a declaration's goods line draws on (mass balance across
    declarations: what earlier declarations used is no longer available). Replaced at each trace check of the
    declaration; removed when it is cancelled, rejected or expires."""

    __tablename__ = "trace_claims"
    __table_args__ = (Index("ix_trace_claims_unit", "sscc", "gtin", "lot"),)

    declaration_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    line: Mapped[int] = mapped_column(Integer, primary_key=True)
    sscc: Mapped[str] = mapped_column(String(18), primary_key=True)
    gtin: Mapped[str] = mapped_column(String(14), primary_key=True)
    lot: Mapped[str] = mapped_column(String(20), primary_key=True)
    kg: Mapped[Decimal] = mapped_column(Numeric(16, 3))
    number: Mapped[str | None] = mapped_column(String(32))
    version: Mapped[int] = mapped_column(Integer)
    claimed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
