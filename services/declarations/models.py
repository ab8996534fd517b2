"""Tables of the declarations service: declarations, their body versions, their transitions, lookup indexes."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql import text

from services.kernel.database import Base, UTCDateTime, new_id, utcnow
from services.kernel.outbox import SeqType


class Declaration(Base):
    """The current state of a declaration; its full history lives in versions and transitions."""

    __tablename__ = "declarations"
    __table_args__ = (
        Index("ix_declarations_org_created", "organisation_id", "created_at", "id"),
        Index("ix_declarations_created", "created_at", "id"),
        Index("ix_declarations_status_submitted", "status", "submitted_at"),
        # Covers the risk engine's count of an organisation's earlier declarations: without it SQLite reads each
        # row, and submitted_at lies after the large JSON body (overflow pages).
        Index("ix_declarations_org_submitted", "organisation_id", "submitted_at", "id"),
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
    # Assessment (risk and duties) and review.
    channel: Mapped[str | None] = mapped_column(String(8))
    risk: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    duties: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    duties_due_vnd: Mapped[int] = mapped_column(BigInteger, default=0)
    paid_vnd: Mapped[int] = mapped_column(BigInteger, default=0)
    assigned_officer: Mapped[str | None] = mapped_column(String(16), index=True)
    queued_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    # Cross-border exchange (issue 14): the exporting side's reference the importer names, and the Form E claimed,
    # copied from the body so that what the partner sends finds its declarations.
    partner_reference: Mapped[str | None] = mapped_column(String(35), index=True)
    origin_certificate: Mapped[str | None] = mapped_column(String(32), index=True)

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


class DeclarationSearchKey(Base):
    """What the officers' search finds a declaration by, kept from its current body (`repository.search_keys`):
    `plate` (the truck's plate as `plate_key` compares it), `tax_id` (the consignee's and consignor's tax ids) and
    `trader` (their names, lower case). A search is an index look-up here, never a read of every body."""

    __tablename__ = "declaration_search_keys"
    __table_args__ = (Index("ix_declaration_search_keys_kind_value", "kind", "value"),)

    declaration_id: Mapped[str] = mapped_column(ForeignKey("declarations.id"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    value: Mapped[str] = mapped_column(String(200), primary_key=True)


class TraderName(Base):
    """Every trader name (lower case) any declaration has carried, once: a search for part of a name reads these few
    rows, then finds the declarations by the names that match (DeclarationSearchKey)."""

    __tablename__ = "declaration_trader_names"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)


class DeclarationSequence(Base):
    """The last registration number issued per prefix and year."""

    __tablename__ = "declaration_sequences"

    prefix: Mapped[str] = mapped_column(String(8), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_value: Mapped[int] = mapped_column(Integer)


class TariffLine(Base):
    """Rates of one 8-digit HS code: MFN and ACFTA import duty, VAT, export duty (percent), with their sources."""

    __tablename__ = "tariff_lines"

    hs_code: Mapped[str] = mapped_column(String(8), primary_key=True)
    description: Mapped[str] = mapped_column(Text)
    mfn_rate: Mapped[Decimal] = mapped_column(Numeric(7, 3))
    acfta_rate: Mapped[Decimal | None] = mapped_column(Numeric(7, 3))
    vat_rate: Mapped[Decimal] = mapped_column(Numeric(7, 3))
    export_rate: Mapped[Decimal] = mapped_column(Numeric(7, 3))
    sources: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    notes: Mapped[str] = mapped_column(Text, default="")


class ExchangeRate(Base):
    """VND per unit of a currency on a day (the rate of the registration date applies)."""

    __tablename__ = "exchange_rates"

    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    vnd_per_unit: Mapped[Decimal] = mapped_column(Numeric(18, 6))
    source: Mapped[str] = mapped_column(String(200), default="")
    posted_by: Mapped[str] = mapped_column(String(64))
    posted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class RuleSet(Base):
    """A versioned risk rule set (YAML); exactly one is active."""

    __tablename__ = "risk_rule_sets"

    version: Mapped[str] = mapped_column(String(32), primary_key=True)
    source_yaml: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    activated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class TraderProfile(Base):
    """A trader organisation's compliance record (class A best, C worst)."""

    __tablename__ = "trader_profiles"

    organisation_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"), primary_key=True)
    compliance_class: Mapped[str] = mapped_column(String(1), default="B")
    violations: Mapped[int] = mapped_column(Integer, default=0)
    clean_since_change: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class OfficerDuty(Base):
    """Which officers are on duty, and when each was last given a declaration (for rotation)."""

    __tablename__ = "officer_duty"

    officer_key_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    on_duty: Mapped[bool] = mapped_column(Boolean, default=True)
    last_assigned_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    assigned_count: Mapped[int] = mapped_column(Integer, default=0)


class DeclarationDocument(Base):
    """A file a trader uploaded for a declaration, addressed by its SHA-256."""

    __tablename__ = "declaration_documents"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    declaration_id: Mapped[str] = mapped_column(ForeignKey("declarations.id"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    size_bytes: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    uploaded_by: Mapped[str] = mapped_column(String(64))
    uploaded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Payment(Base):
    """A duty payment: claimed by the trader, then confirmed (or rejected) by the treasury; only confirmed money
    counts towards the duties."""

    __tablename__ = "declaration_payments"
    __table_args__ = (
        Index("ix_declaration_payments_status_paid", "status", "paid_at"),
        # The money behind a bank reference counts once: one confirmed payment per reference.
        Index(
            "uq_declaration_payments_confirmed_reference",
            "bank_reference",
            unique=True,
            postgresql_where=text("status = 'confirmed'"),
            sqlite_where=text("status = 'confirmed'"),
        ),
        # An organisation has one live payment per reference (a rejected one may be claimed again); organisations
        # never collide with each other here, so a claim never learns that another organisation used a reference.
        Index(
            "uq_declaration_payments_live_reference",
            "bank_reference",
            "organisation_id",
            unique=True,
            postgresql_where=text("status <> 'rejected'"),
            sqlite_where=text("status <> 'rejected'"),
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    declaration_id: Mapped[str] = mapped_column(ForeignKey("declarations.id"), index=True)
    # The declaration's organisation (copied: the unique index of live references is per organisation).
    organisation_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"))
    bank_reference: Mapped[str] = mapped_column(String(64))
    amount_vnd: Mapped[int] = mapped_column(BigInteger)
    recorded_by: Mapped[str] = mapped_column(String(64))
    # When it was recorded (claimed, or recorded as confirmed by the treasury).
    paid_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    status: Mapped[str] = mapped_column(String(12), default="claimed")
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    decision_reason: Mapped[str | None] = mapped_column(Text)


class UnitValueObservation(Base):
    """Customs value per kg of an assessed goods line: the history the unit-value rule compares against."""

    __tablename__ = "unit_value_observations"
    __table_args__ = (Index("ix_unit_value_observations_hs_at", "hs_code", "observed_at"),)

    id: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    hs_code: Mapped[str] = mapped_column(String(8))
    vnd_per_kg: Mapped[Decimal] = mapped_column(Numeric(20, 4))
    declaration_id: Mapped[str] = mapped_column(String(36))
    observed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class RiskDrawKey(Base):
    """The secret key of the random selection draw (one row, made by the migration; never served by the API)."""

    __tablename__ = "risk_draw_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key_hex: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class RiskAssessment(Base):
    """One assessment's confidential record (score, rule hits, draw) and the salt of the commitment that the
    `declaration.assessed` event carries in its place: given both, an auditor recomputes the commitment."""

    __tablename__ = "risk_assessments"

    id: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    declaration_id: Mapped[str] = mapped_column(ForeignKey("declarations.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    record: Mapped[dict[str, Any]] = mapped_column(JSON)
    salt: Mapped[str] = mapped_column(String(64))
    commitment: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class RiskModel(Base):
    """A learned fraud model (ONNX, with its risk profiles inside) as a versioned artefact: stored, dry run on the
    history, then in shadow (scores recorded, no effect) or active (combined with the rules as the active rule set
    says). At most one model is active and one in shadow (partial unique indexes); `previous_version` is the model
    that was active before this one, what a rollback returns to."""

    __tablename__ = "risk_models"
    __table_args__ = (
        Index("uq_risk_models_active", "state", unique=True, postgresql_where=text("state = 'active'"),
              sqlite_where=text("state = 'active'")),
        Index("uq_risk_models_shadow", "state", unique=True, postgresql_where=text("state = 'shadow'"),
              sqlite_where=text("state = 'shadow'")),
    )  # fmt: skip

    version: Mapped[str] = mapped_column(String(32), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(Integer)
    # The ONNX file itself, in the database: every process that assesses loads it from there (no shared disk).
    data: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    info: Mapped[dict[str, Any]] = mapped_column(JSON)
    # The currency the model's training values were in (KCS: KRW); declared values are converted to it.
    value_currency: Mapped[str] = mapped_column(String(3))
    state: Mapped[str] = mapped_column(String(12), default="stored")  # stored | shadow | active | retired
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    state_changed_by: Mapped[str | None] = mapped_column(String(64))
    state_changed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    previous_version: Mapped[str | None] = mapped_column(String(32))
    dry_run: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class RiskModelScore(Base):
    """A model's score of one assessment of a declaration (active or shadow), with what selectivity did: the
    record drift and precision are measured from. Confidential like the assessment (never served to traders)."""

    __tablename__ = "risk_model_scores"
    __table_args__ = (Index("ix_risk_model_scores_model_at", "model_version", "scored_at"),)

    id: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    declaration_id: Mapped[str] = mapped_column(ForeignKey("declarations.id"), index=True)
    declaration_version: Mapped[int] = mapped_column(Integer)
    model_version: Mapped[str] = mapped_column(String(32))
    mode: Mapped[str] = mapped_column(String(8))  # active | shadow
    probability: Mapped[float] = mapped_column(Float)
    # The model's threshold was reached (active: it selected; shadow: it would have).
    selected: Mapped[bool] = mapped_column(Boolean)
    explored: Mapped[bool] = mapped_column(Boolean, default=False)
    rules_channel: Mapped[str] = mapped_column(String(8))  # what the rules alone decided
    channel: Mapped[str] = mapped_column(String(8))  # what selectivity decided
    scored_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class RiskOutcome(Base):
    """An officer's final decision on a reviewed declaration and whether a violation was found: the labels the
    model's precision (and a model trained on our own history) rest on."""

    __tablename__ = "risk_outcomes"

    declaration_id: Mapped[str] = mapped_column(ForeignKey("declarations.id"), primary_key=True)
    outcome: Mapped[str] = mapped_column(String(12))  # clear | reject
    violation: Mapped[bool] = mapped_column(Boolean)
    after_inspection: Mapped[bool] = mapped_column(Boolean)
    decided_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class PartnerConsignment(Base):
    """The partner administration's view of a consignment (its pre-arrival notice), keyed by the correlation id:
    the exporting side's declaration number. Kept as received; the newest notice replaces an older one."""

    __tablename__ = "partner_consignments"

    correlation_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    sender: Mapped[str] = mapped_column(String(32))
    message_id: Mapped[str] = mapped_column(String(36))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    sent_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class PartnerCertificate(Base):
    """An ACFTA Form E the exporting administration issued and sent: what import claims are verified against."""

    __tablename__ = "partner_origin_certificates"

    number: Mapped[str] = mapped_column(String(32), primary_key=True)
    sender: Mapped[str] = mapped_column(String(32))
    message_id: Mapped[str] = mapped_column(String(36))
    certificate: Mapped[dict[str, Any]] = mapped_column(JSON)
    issued_on: Mapped[dt.date] = mapped_column(Date)
    valid_until: Mapped[dt.date] = mapped_column(Date)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class OriginClaim(Base):
    """Quantity of a Form E line that a declaration's verified claim uses (what remains for the next claims)."""

    __tablename__ = "origin_claims"

    declaration_id: Mapped[str] = mapped_column(ForeignKey("declarations.id"), primary_key=True)
    hs6: Mapped[str] = mapped_column(String(6), primary_key=True)
    certificate_number: Mapped[str] = mapped_column(String(32), index=True)
    quantity: Mapped[Decimal] = mapped_column(Numeric(19, 3))
    unit: Mapped[str] = mapped_column(String(3))


class ConsignmentCrossing(Base):
    """One side's crossing of a consignment: our gate's exit or entry, or the partner's as it reported it. An exit
    on one side and the entry on the other close the journey (cross-border time, WCO Time Release Study)."""

    __tablename__ = "consignment_crossings"

    correlation_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    side: Mapped[str] = mapped_column(String(8), primary_key=True)  # ours | partner
    direction: Mapped[str] = mapped_column(String(5))  # exit | entry
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    gate: Mapped[str | None] = mapped_column(String(32))
    truck_plate: Mapped[str | None] = mapped_column(String(16))
    declaration_id: Mapped[str | None] = mapped_column(String(36))
    message_id: Mapped[str | None] = mapped_column(String(36))


class PartnerControl(Base):
    """A control result the partner administration shared (inspection outcome, mirror findings)."""

    __tablename__ = "partner_control_results"

    message_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    correlation_id: Mapped[str] = mapped_column(String(64), index=True)
    sender: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
