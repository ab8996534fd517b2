"""Tables of the exchange service: partners and their keys, every message sent or received with its delivery state,
and the refusals (what was refused, never its content)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from services.kernel.database import Base, UTCDateTime, new_id, utcnow
from services.kernel.outbox import SeqType


class ExchangePartner(Base):
    """The administration across the border: where its inbox is and the keys its messages are signed with."""

    __tablename__ = "exchange_partners"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    # The partner platform's base URL; messages are POSTed to <base_url>/api/v1/exchange/inbox.
    base_url: Mapped[str] = mapped_column(String(2048))
    # Public JWKs (Ed25519) with their `kid`: more than one while the partner rotates its key.
    keys: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ExchangeMessage(Base):
    """One message, sent (`out`) or received (`in`), with its JWS, its delivery state and its receipt."""

    __tablename__ = "exchange_messages"
    __table_args__ = (
        # A message id is acted on once per direction (a duplicate delivery finds the row).
        UniqueConstraint("direction", "message_id", name="uq_exchange_messages_direction_message"),
        # The order of one consignment's messages to one partner.
        UniqueConstraint("direction", "partner", "correlation_id", "sequence", name="uq_exchange_messages_order"),
        Index("ix_exchange_messages_due", "direction", "state", "next_attempt_at"),
        Index("ix_exchange_messages_partner_seq", "partner", "direction", "seq"),
        Index("ix_exchange_messages_correlation", "correlation_id"),
    )

    # Insertion order: the pull endpoint's cursor.
    seq: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(36), unique=True, default=new_id)
    direction: Mapped[str] = mapped_column(String(3))
    message_id: Mapped[str] = mapped_column(String(36))
    partner: Mapped[str] = mapped_column(String(32))
    type: Mapped[str] = mapped_column(String(32))
    correlation_id: Mapped[str] = mapped_column(String(64))
    # 1, 2, ... per (direction, partner, consignment); received messages carry 0 (ordered by the sender).
    sequence: Mapped[int] = mapped_column(Integer, default=0)
    # The domain event it was made from (sent messages), for the dedupe of redelivered events.
    event_id: Mapped[str | None] = mapped_column(String(36))
    jws: Mapped[str] = mapped_column(Text)
    jws_sha256: Mapped[str] = mapped_column(String(71))
    # out: queued → delivered → acknowledged, or retrying / failed; in: accepted, acceptedWithWarnings, rejected.
    state: Mapped[str] = mapped_column(String(24))
    # The receipt's status (ours for a received message, the partner's for a sent one) and its JWS.
    receipt_status: Mapped[str | None] = mapped_column(String(24))
    receipt_jws: Mapped[str | None] = mapped_column(Text)
    reasons: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class ExchangeRejection(Base):
    """A message refused at the inbox (bad signature, unknown key, replay, skew, schema): who and why, and the hash
    of what was sent, nothing of its content."""

    __tablename__ = "exchange_rejections"
    __table_args__ = (Index("ix_exchange_rejections_at", "at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # The partner the key id names (None: unknown key), and the claimed key id and message id.
    partner: Mapped[str | None] = mapped_column(String(32))
    kid: Mapped[str | None] = mapped_column(String(128))
    message_id: Mapped[str | None] = mapped_column(String(36))
    code: Mapped[str] = mapped_column(String(64))
    status: Mapped[int] = mapped_column(Integer)
    detail: Mapped[str] = mapped_column(Text)
    jws_sha256: Mapped[str | None] = mapped_column(String(71))
    remote: Mapped[str | None] = mapped_column(String(64))
