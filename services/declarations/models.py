"""Tables of the declarations service: declarations, their body versions, their transitions, lookup indexes."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from services.kernel.database import Base, UTCDateTime, new_id, utcnow
from services.kernel.outbox import SeqType


class Declaration(Base):
    """The current state of a declaration; its full history lives in versions and transitions."""

    __tablename__ = "declarations"
    __table_args__ = (
        Index("ix_declarations_org_created", "organisation_id", "created_at", "id"),
        Index("ix_declarations_created", "created_at", "id"),
        Index("ix_declarations_status_submitted", "status", "submitted_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    number: Mapped[str | None] = mapped_column(String(32), unique=True)
    organisation_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"))
    status: Mapped[str] = mapped_column(String(24))
    kind: Mapped[str] = mapped_column(String(8))
    border_gate: Mapped[str] = mapped_column(String(12))
    version: Mapped[int] = mapped_column(Integer, default=1)
    # Bumped by every change (amend or transition): the ETag and the optimistic-lock column.
    row_version: Mapped[int] = mapped_column(Integer, default=1)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    body_sha256: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    submitted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

    __mapper_args__ = {"version_id_col": row_version}


class DeclarationVersion(Base):
    """A body as it was filed or amended; never changed afterwards."""

    __tablename__ = "declaration_versions"
    __table_args__ = (UniqueConstraint("declaration_id", "version", name="uq_declaration_versions_decl_version"),)

    id: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    declaration_id: Mapped[str] = mapped_column(ForeignKey("declarations.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    body_sha256: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class DeclarationTransition(Base):
    """One state change with its actor and time."""

    __tablename__ = "declaration_transitions"

    id: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    declaration_id: Mapped[str] = mapped_column(ForeignKey("declarations.id"), index=True)
    action: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[str | None] = mapped_column(String(24))
    to_status: Mapped[str] = mapped_column(String(24))
    actor: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class DeclarationContainer(Base):
    """Container numbers of the current version, for lookup by container."""

    __tablename__ = "declaration_containers"

    declaration_id: Mapped[str] = mapped_column(ForeignKey("declarations.id"), primary_key=True)
    number: Mapped[str] = mapped_column(String(11), primary_key=True, index=True)


class DeclarationHsCode(Base):
    """HS codes of the current version, for lookup by HS prefix."""

    __tablename__ = "declaration_hs_codes"

    declaration_id: Mapped[str] = mapped_column(ForeignKey("declarations.id"), primary_key=True)
    hs_code: Mapped[str] = mapped_column(String(8), primary_key=True, index=True)


class DeclarationSequence(Base):
    """The last registration number issued per prefix and year."""

    __tablename__ = "declaration_sequences"

    prefix: Mapped[str] = mapped_column(String(8), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_value: Mapped[int] = mapped_column(Integer)
