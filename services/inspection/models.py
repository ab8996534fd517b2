"""Tables of the inspection service: gate events, officers' resolutions of holds, and the read model of declarations
expected at the gate."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from services.kernel.database import Base, UTCDateTime, new_id, utcnow
from services.kernel.outbox import SeqType


class GateEvent(Base):
    """One truck passing one camera: what was read, what it matched, and the decision."""

    __tablename__ = "gate_events"
    __table_args__ = (
        Index("ix_gate_events_received", "received_at", "id"),
        Index("ix_gate_events_decision_received", "decision", "received_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    # camera + time + images: a camera that retries the same upload gets the first event back, not a second one.
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    lane: Mapped[str] = mapped_column(String(16), index=True)
    direction: Mapped[str] = mapped_column(String(3))
    camera_id: Mapped[str] = mapped_column(String(64))
    taken_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    plate: Mapped[str | None] = mapped_column(String(16))
    decision: Mapped[str] = mapped_column(String(8))
    reasons: Mapped[list[str]] = mapped_column(JSON)
    # Per image: its sha256, the codes and barcodes read, the seconds OCR took.
    reads: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    image_sha256s: Mapped[list[str]] = mapped_column(JSON)
    # The best code read (filter "container") and what it was matched to.
    container_number: Mapped[str | None] = mapped_column(String(11), index=True)
    match_kind: Mapped[str] = mapped_column(String(16))
    matched_container: Mapped[str | None] = mapped_column(String(11), index=True)
    declaration_id: Mapped[str | None] = mapped_column(String(36), index=True)
    declaration_number: Mapped[str | None] = mapped_column(String(32))
    # Facts the decision used (declaration status, seals, QR, plate), so an officer sees why.
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON)
    actor: Mapped[str] = mapped_column(String(64))


class GateHoldResolution(Base):
    """An officer's resolution of one held gate event: `release` (the truck goes on) or `escalate` (physical
    inspection). One per hold: the primary key is the gate event's, so a second resolution is refused by the
    database itself, whoever races."""

    __tablename__ = "gate_hold_resolutions"

    gate_event_id: Mapped[str] = mapped_column(ForeignKey("gate_events.id"), primary_key=True)
    action: Mapped[str] = mapped_column(String(8))  # release | escalate
    reason: Mapped[str] = mapped_column(Text)
    # Who: `officer:<key id>` (customs sees the officer's name; outside customs, events name the role only).
    actor: Mapped[str] = mapped_column(String(64))
    resolved_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ExpectedDeclaration(Base):
    """Read model: a declaration as the gate needs to know it, kept from the declarations service's events."""

    __tablename__ = "gate_expected_declarations"

    declaration_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    number: Mapped[str | None] = mapped_column(String(32), index=True)
    # The trader's organisation (declaration events carry it): whose gate events these are, whose webhooks
    # receive them. NULL for rows written before it was kept, until the declaration's next event.
    organisation_id: Mapped[str | None] = mapped_column(String(36))
    status: Mapped[str] = mapped_column(String(24))
    version: Mapped[int] = mapped_column(Integer)
    # Outbox sequence of the last event applied: orders events of the same body version.
    event_seq: Mapped[int] = mapped_column(SeqType)
    body_sha256: Mapped[str | None] = mapped_column(String(64))
    truck_plate: Mapped[str | None] = mapped_column(String(16))
    containers: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ExpectedContainer(Base):
    """Read model index: which declaration declares which container number."""

    __tablename__ = "gate_expected_containers"

    number: Mapped[str] = mapped_column(String(11), primary_key=True)
    declaration_id: Mapped[str] = mapped_column(String(36), primary_key=True)


class ExpectedPallet(Base):
    """Read model index: which declaration draws on which pallet (SSCC), from the traceability service's
    `trace.checked` (the pallets a declaration's goods lines name, and those carrying the lots they name)."""

    __tablename__ = "gate_expected_pallets"

    sscc: Mapped[str] = mapped_column(String(18), primary_key=True)
    declaration_id: Mapped[str] = mapped_column(String(36), primary_key=True, index=True)
