"""Tables the message types keep in the exchange service's database: the Form E certificates issued here and
those received from the partner (messages themselves are the transport's)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Date, String
from sqlalchemy.orm import Mapped, mapped_column

from services.kernel.database import Base, UTCDateTime, utcnow


class OriginCertificate(Base):
    """An ACFTA Form E: issued by our issuer (`direction` issued) or received from the partner (`received`)."""

    __tablename__ = "exchange_origin_certificates"

    number: Mapped[str] = mapped_column(String(32), primary_key=True)
    direction: Mapped[str] = mapped_column(String(8), primary_key=True)  # issued | received
    partner: Mapped[str | None] = mapped_column(String(32))
    certificate: Mapped[dict[str, Any]] = mapped_column(JSON)
    issued_on: Mapped[dt.date] = mapped_column(Date)
    valid_until: Mapped[dt.date] = mapped_column(Date)
    message_id: Mapped[str | None] = mapped_column(String(36))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
