"""Tables of the webhooks service: the endpoints traders register, and every delivery with its attempts."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from services.kernel.database import Base, UTCDateTime, new_id, utcnow


class WebhookEndpoint(Base):
    """A trader organisation's URL that receives its declarations' events."""

    __tablename__ = "webhook_endpoints"
    __table_args__ = (
        # The per-organisation limit, held by the database: an endpoint takes a free slot below the limit, and two
        # registrations racing for the same slot cannot both commit (a count checked first can be raced past).
        UniqueConstraint("organisation_id", "slot", name="uq_webhook_endpoints_organisation_slot"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    organisation_id: Mapped[str] = mapped_column(String(36), index=True)
    # 0 .. limit - 1: which of the organisation's endpoint slots this one holds.
    slot: Mapped[int] = mapped_column(Integer)
    url: Mapped[str] = mapped_column(String(2048))
    description: Mapped[str] = mapped_column(String(200), default="")
    # Event types sent to this endpoint; empty means every type a trader may receive.
    event_types: Mapped[list[str]] = mapped_column(JSON)
    # `whsec_<base64>` (Standard Webhooks). Kept recoverable: the platform must sign with it.
    secret: Mapped[str] = mapped_column(String(100))
    # After a rotation the previous secret also signs, until this moment (receivers switch without a gap).
    previous_secret: Mapped[str | None] = mapped_column(String(100))
    previous_secret_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Why the platform switched it off (the receiver answered 410 Gone), if it did.
    disabled_reason: Mapped[str | None] = mapped_column(String(200))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class WebhookDelivery(Base):
    """One event for one endpoint: pending until a 2xx answer, failed after the last attempt."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        # At-least-once events arrive more than once: each makes one delivery per endpoint.
        UniqueConstraint("endpoint_id", "event_id", name="uq_webhook_deliveries_endpoint_event"),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_endpoint_created", "endpoint_id", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    endpoint_id: Mapped[str] = mapped_column(String(36), ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    event_id: Mapped[str] = mapped_column(String(36))
    event_type: Mapped[str] = mapped_column(String(64))
    # The body sent, fixed when the delivery is made (retries send the same bytes' content).
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(12), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    last_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    # Milliseconds the receiver took to answer the last attempt.
    last_duration_ms: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
