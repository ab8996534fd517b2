"""Assessment at registration: the duty bill and the risk channel, from stored tariff, rates, history and profile."""

from __future__ import annotations

import datetime as dt
import functools
import secrets
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import Integer, bindparam, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from services.declarations import crossborder, duties, modelserving, risk, selectivity
from services.declarations.exceptions import CustomsValueTooLarge
from services.declarations.models import (
    Declaration,
    ExchangeRate,
    RiskAssessment,
    RiskModelScore,
    RuleSet,
    TariffLine,
    TraderProfile,
    UnitValueObservation,
)
from services.kernel.administration import administration
from services.kernel.database import UTCDateTime, table_of, utcnow
from services.kernel.outbox import canonical_sha256

VN_TZ = dt.timezone(dt.timedelta(hours=7), "ICT")  # Vietnam keeps UTC+7 all year
BAND_HISTORY = 500  # how many recent lines of an HS code the unit-value band rests on

_spec_cache: dict[str, risk.RuleSetSpec] = {}
_spec_lock = threading.Lock()


TRACE_PENDING_REASON = "goods lines name pallets or lots: not cleared before the trace check has answered"


def trace_pending(decl: Declaration) -> bool:
    """Whether the declaration names pallets or lots and the trace check of its current version has not answered."""
    if not any(item.get("trace") for item in decl.body.get("items", [])):
        return False
    trace = (decl.risk or {}).get("trace") or {}
    return bool(trace.get("version") != decl.version)


def trace_failures(decl: Declaration) -> list[dict[str, Any]]:
    """The failed trace rules of the declaration's current version (none before the check has answered)."""
    trace = (decl.risk or {}).get("trace") or {}
    return list(trace.get("failures") or []) if trace.get("version") == decl.version else []


def registration_date(decl: Declaration) -> dt.date:
    """The Hanoi calendar day the declaration was registered (the exchange rate of that day applies)."""
    return (decl.submitted_at or utcnow()).astimezone(VN_TZ).date()


class _Cache:
    """A small per-process cache of slowly changing reference data (tariff, rates, the active rule set).

    Keyed by database, so tests and tools that open several databases never mix them; entries live
    `ttl` seconds, and writers in this process clear it at once (other processes see a change within `ttl`).
    """

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._data: dict[Any, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: Any) -> Any:
        with self._lock:
            hit = self._data.get(key)
        if hit is not None and time.monotonic() - hit[0] <= self.ttl:
            return hit[1]
        return _MISS

    def put(self, key: Any, value: Any) -> Any:
        with self._lock:
            self._data[key] = (time.monotonic(), value)
        return value

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


_MISS = object()
REFERENCE_CACHE = _Cache(ttl=30.0)


def _db(session: Session) -> str:
    return _url_of(session.get_bind().engine)


@functools.lru_cache(maxsize=64)
def _url_of(engine: Any) -> str:
    """An engine's URL as the caches' key (rendering it costs more than a cached look-up)."""
    return str(engine.url)


def tariff_rates(session: Session, hs_codes: set[str]) -> dict[str, duties.Rates]:
    """Tariff rates of these HS codes (codes not in the tariff are absent)."""
    out: dict[str, duties.Rates] = {}
    missing = []
    for hs in hs_codes:
        hit = REFERENCE_CACHE.get((_db(session), "tariff", hs))
        if hit is _MISS:
            missing.append(hs)
        elif hit is not None:
            out[hs] = hit
    if missing:
        rows = {
            r.hs_code: r for r in session.scalars(select(TariffLine).where(TariffLine.hs_code.in_(sorted(missing))))
        }
        for hs in missing:
            r = rows.get(hs)
            rates = (
                duties.Rates(
                    hs_code=r.hs_code, mfn=r.mfn_rate, acfta=r.acfta_rate, vat=r.vat_rate, export=r.export_rate,
                    status=r.status,
                )
                if r is not None
                else None
            )  # fmt: skip
            REFERENCE_CACHE.put((_db(session), "tariff", hs), rates)
            if rates is not None:
                out[hs] = rates
    return out


def exchange_rates(session: Session, currencies: set[str], day: dt.date) -> dict[str, Decimal]:
    """For each currency, the newest rate posted for `day` or before it."""
    out: dict[str, Decimal] = {}
    for currency in sorted(currencies - {"VND"}):
        key = (_db(session), "fx", currency, day)
        rate = REFERENCE_CACHE.get(key)
        if rate is _MISS:
            rate = REFERENCE_CACHE.put(
                key,
                session.scalar(
                    select(ExchangeRate.vnd_per_unit)
                    .where(ExchangeRate.currency == currency, ExchangeRate.day <= day)
                    .order_by(ExchangeRate.day.desc())
                    .limit(1)
                ),
            )
        if rate is not None:
            out[currency] = Decimal(rate)
    return out


def active_rule_set(session: Session) -> RuleSet:
    """The active rule set (a plain read: filings never write the rule-set table, so they never queue on it)."""
    key = (_db(session), "rule_set")
    cached = REFERENCE_CACHE.get(key)
    if cached is not _MISS and cached is not None:
        return cached
    active = session.scalar(select(RuleSet).where(RuleSet.active.is_(True)))
    if active is not None:
        session.expunge(active)
        return REFERENCE_CACHE.put(key, active)
    # Not installed yet (the app installs it at start-up): assess with the shipped default, unsaved.
    return _shipped_default()


@functools.lru_cache(maxsize=1)
def _shipped_default() -> RuleSet:
    text = risk.default_rule_set_text()
    spec = risk.parse_rule_set(text)
    return RuleSet(version=spec.version, source_yaml=text, sha256=canonical_sha256(text), active=True)


def install_default_rule_set(sessions: Any) -> None:
    """At start-up: store and activate the shipped default if no rule set is active (safe with several processes)."""
    from sqlalchemy.exc import IntegrityError

    from services.kernel.database import unit_of_work

    try:
        with unit_of_work(sessions) as session:
            ensure_default_rule_set(session)
    except IntegrityError:
        pass  # another process installed it first


def ensure_default_rule_set(session: Session) -> RuleSet:
    """The active rule set; on a fresh database, the shipped default is stored and activated."""
    active = session.scalar(select(RuleSet).where(RuleSet.active.is_(True)))
    if active is not None:
        return active
    text = risk.default_rule_set_text()
    spec = risk.parse_rule_set(text)
    existing = session.get(RuleSet, spec.version)
    if existing is None:
        existing = RuleSet(
            version=spec.version,
            source_yaml=text,
            sha256=canonical_sha256(text),
            active=True,
            created_by="system:default",
            activated_at=utcnow(),
        )
        session.add(existing)
    else:
        existing.active = True
        existing.activated_at = utcnow()
    session.flush()
    return existing


def spec_of(row: RuleSet) -> risk.RuleSetSpec:
    """The parsed rule set (parsed once per content hash)."""
    with _spec_lock:
        spec = _spec_cache.get(row.sha256)
        if spec is None:
            spec = _spec_cache[row.sha256] = risk.parse_rule_set(row.source_yaml)
        return spec


def trader_profile(session: Session, organisation_id: str) -> TraderProfile:
    """The organisation's compliance profile (class B until it earns another)."""
    profile = session.get(TraderProfile, organisation_id)
    if profile is None:
        # Two first filings of a new trader may race here: insert-if-absent, then read whichever row won.
        ensure_profile(session, organisation_id)
        profile = session.get(TraderProfile, organisation_id)
        assert profile is not None
    return profile


def prior_declarations(session: Session, decl: Declaration, *, cap: int | None = None) -> int:
    """How many declarations the organisation registered before this one (counting stops at `cap`)."""
    registered = decl.submitted_at or utcnow()
    earlier = (
        select(Declaration.id)
        .where(
            Declaration.organisation_id == decl.organisation_id,
            Declaration.submitted_at < registered,
            Declaration.id != decl.id,
        )
        .limit(cap)
    )
    # Rules only ask "at most N?": a bounded count keeps this O(N), not O(history), for busy traders.
    return int(session.scalar(select(func.count()).select_from(earlier.subquery())) or 0)


def unit_value_bands(
    session: Session, hs_codes: set[str], low: float, high: float, *, max_age_seconds: float = 0.0
) -> dict[str, risk.UnitValueBand]:
    """Percentile bands of value per kg over the recent history of each HS code.

    With `max_age_seconds`, a band computed that recently in this process is reused: a band rests on
    hundreds of lines and moves slowly, and recomputing it on every filing was half the cost of assessment.
    """
    bands: dict[str, risk.UnitValueBand] = {}
    database = str(session.get_bind().engine.url)
    now = time.monotonic()
    for hs in sorted(hs_codes):
        key = (database, hs, low, high)
        cached = _band_cache.get(key)
        if cached is not None and now - cached[0] <= max_age_seconds:
            band = cached[1]
        else:
            values = sorted(
                Decimal(v)
                for v in session.scalars(
                    select(UnitValueObservation.vnd_per_kg)
                    .where(UnitValueObservation.hs_code == hs)
                    .order_by(UnitValueObservation.id.desc())
                    .limit(BAND_HISTORY)
                )
            )
            band = (
                risk.UnitValueBand(
                    low=risk.percentile(values, low), high=risk.percentile(values, high), count=len(values)
                )
                if values
                else None
            )
            _band_cache[key] = (now, band)
        if band is not None:
            bands[hs] = band
    return bands


_band_cache: dict[tuple[str, str, float, float], tuple[float, risk.UnitValueBand | None]] = {}
BAND_MAX_AGE_SECONDS = 60.0


def _history_statement():
    earlier = (
        select(Declaration.id)
        .where(
            Declaration.organisation_id == bindparam("organisation_id"),
            Declaration.submitted_at < bindparam("registered", type_=UTCDateTime()),
            Declaration.id != bindparam("declaration_id"),
        )
        .limit(bindparam("cap", type_=Integer()))
        .subquery()
    )
    prior = select(func.count()).select_from(earlier).scalar_subquery()
    klass = (
        select(TraderProfile.compliance_class)
        .where(TraderProfile.organisation_id == bindparam("organisation_id"))
        .scalar_subquery()
    )
    return select(prior, klass)


_HISTORY = _history_statement()


def history(session: Session, decl: Declaration, spec: risk.RuleSetSpec) -> tuple[int, str | None]:
    """What the rules need to know of the organisation, in one statement: how many declarations it registered
    before this one (counting stops where no rule looks further) and its compliance class (None: no profile
    yet, class B)."""
    caps = [r.max_prior_declarations + 1 for r in spec.rules if isinstance(r, risk.NewTrader)]
    row = (
        session.connection()
        .execute(
            _HISTORY,
            {
                "organisation_id": decl.organisation_id,
                "registered": decl.submitted_at or utcnow(),
                "declaration_id": decl.id,
                "cap": max(caps) if caps else 1,
            },
        )
        .one()
    )
    return int(row[0] or 0), row[1]


def ensure_profile(session: Session, organisation_id: str) -> None:
    """Create the organisation's profile (class B) unless it exists; safe against a concurrent first filing."""
    dialect = session.get_bind().dialect.name
    insert_stmt = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(
        insert_stmt(table_of(TraderProfile))
        .values(organisation_id=organisation_id, compliance_class="B", violations=0, clean_since_change=0,
                updated_at=utcnow())
        .on_conflict_do_nothing(index_elements=["organisation_id"])
    )  # fmt: skip


UNASSESSED_REASON = "duties could not be assessed automatically: an officer reviews them"


@dataclass(slots=True)
class Assessment:
    """The duty bill, the channel, the confidential record behind it with the salt of its commitment, and the
    unit-value observations the declaration adds once stored."""

    bill: duties.DutyBill
    result: risk.RiskResult
    gate_mismatches: int
    observations: list[dict[str, Any]]
    new_profile: bool
    record: dict[str, Any]
    salt: str
    commitment: str
    model_scores: list[dict[str, Any]] = field(default_factory=list)
    origin_check: dict[str, Any] | None = None

    def apply(self, decl: Declaration) -> None:
        """Set the assessment columns of the declaration."""
        decl.duties = self.bill.to_json()
        decl.duties_due_vnd = self.bill.total_vnd
        decl.channel = self.result.channel
        decl.risk = {**self.record, "commitment": self.commitment}


def evaluate(session: Session, decl: Declaration) -> Assessment:
    """Compute the duty bill and the channel of a registered declaration. Reads only (reference data mostly
    from the per-process cache, and one statement of trader history): it never takes a write lock.

    Raises CustomsValueTooLarge (422) when the customs value reaches duties.MAX_CUSTOMS_VALUE_VND."""
    day = registration_date(decl)
    items = decl.body["items"]
    spec = spec_of(active_rule_set(session))
    partner = crossborder.partner_data(session, decl, day, verify_form_e=spec.form_e == "verify")
    bill = duties.assess(
        decl.body,
        registration_date=day,
        tariff=tariff_rates(session, {i["hs_code"] for i in items}),
        fx=exchange_rates(session, {i["currency"] for i in items}, day),
        origin_check=partner.origin_check,
        form_e_origin=_form_e_origin(),
    )
    lines = duties.too_large_lines(bill)
    if lines is not None:
        # Refused before anything is written: the amounts would leave RFC 8785's exact range in the ledger.
        raise CustomsValueTooLarge(total_vnd=sum(x.value_vnd for x in bill.lines),
                                   limit_vnd=duties.MAX_CUSTOMS_VALUE_VND, lines=lines)  # fmt: skip
    mismatches = int((decl.risk or {}).get("gate_mismatches", 0))
    trace = (decl.risk or {}).get("trace")
    per_kg: list[Decimal | None] = []
    for item, line in zip(items, bill.lines, strict=True):
        net = Decimal(item["net_mass_kg"])
        per_kg.append(Decimal(line.value_vnd) / net if line.value_vnd and net > 0 else None)
    band_rules = [r for r in spec.rules if isinstance(r, risk.UnitValueAnomaly)]
    bands = (
        unit_value_bands(
            session,
            {i["hs_code"] for i in items},
            band_rules[0].low_percentile,
            band_rules[0].high_percentile,
            max_age_seconds=BAND_MAX_AGE_SECONDS,
        )
        if band_rules
        else {}
    )
    prior, compliance_class = history(session, decl, spec)
    models = modelserving.deployed(session)
    scored = (
        modelserving.score(models, decl, {"assessed": bill.assessed, "form_e_applied": bill.form_e_applied,
                                          "lines": [{"value_vnd": x.value_vnd, "import_rate": x.import_rate}
                                                    for x in bill.lines]}, day,
                           lambda currency: exchange_rates(session, {currency}, day).get(currency))
        if models
        else []
    )  # fmt: skip
    active = next((s for s in scored if s.model.mode == "active"), None)
    data = risk.RiskInput(
        declaration_id=decl.id,
        body_sha256=decl.body_sha256,
        body=decl.body,
        prior_declarations=prior,
        compliance_class=compliance_class or "B",
        gate_mismatches=mismatches,
        trace_failures=trace_failures(decl),
        duties_assessed=bill.assessed,
        line_vnd_per_kg=per_kg,
        bands=bands,
        model_probability=active.probability if active else None,
        model_version=active.model.version if active else None,
        partner_view=partner.view,
        fx=exchange_rates(session, partner.currencies | {i["currency"] for i in items}, day) if partner.view else {},
        origin_check=partner.origin_check,
        partner_findings=partner.findings,
        form_e_origin=_form_e_origin(),
    )
    result = risk.evaluate(spec, data, draw_key=selectivity.draw_key(session))
    kept = decl.channel
    if risk.higher(result.channel, kept) != result.channel:
        # Re-assessed after an amendment (or a gate report): new goods may raise the channel, never lower it.
        result.reasons.append({"rule": "channel_kept", "weight": 0, "detail": f"was {kept} before this assessment",
                               "reason": selectivity.KEPT_REASON})  # fmt: skip
        result.channel = str(kept)
    if not bill.assessed and result.channel == "green":
        # Whatever the rule set weighs: duties nobody could compute are never cleared (nor released) by the
        # machine. An officer looks at them (audit, issue 12).
        result.reasons.append({"rule": "duties_unassessed_floor", "weight": 0,
                               "detail": "; ".join(p for line in bill.lines for p in line.problems),
                               "reason": UNASSESSED_REASON})  # fmt: skip
        result.channel = "yellow"
    if result.channel == "green" and trace_pending(decl):
        # Green waits for the trace check: `trace.checked` re-assesses it (service.assess_and_route keeps it).
        result.reasons.append({"rule": "trace_pending", "weight": 0,
                               "detail": f"waiting for the trace check of version {decl.version}",
                               "reason": TRACE_PENDING_REASON})  # fmt: skip
    now = utcnow()
    score_rows = _model_scores(spec, decl, result, scored, now)
    observations: list[dict[str, Any]] = [
        {"hs_code": item["hs_code"], "vnd_per_kg": value, "declaration_id": decl.id, "observed_at": now}
        for item, value in zip(items, per_kg, strict=True)
        if value is not None
    ]
    record = selectivity.confidential_record(decl, result, mismatches)
    if trace:
        record["trace"] = trace  # the latest trace check (of this version or an earlier one), kept for officers
    salt = secrets.token_hex(16)
    return Assessment(bill, result, mismatches, observations, new_profile=compliance_class is None, record=record,
                      salt=salt, commitment=selectivity.commitment_of(record, salt),
                      model_scores=score_rows, origin_check=partner.origin_check)  # fmt: skip


def _model_scores(
    spec: risk.RuleSetSpec,
    decl: Declaration,
    result: risk.RiskResult,
    scored: list[modelserving.Scored],
    now: dt.datetime,
) -> list[dict[str, Any]]:
    """Put each model's score in the confidential record, and give the rows of risk_model_scores. The reasons are
    not computed here but when an officer reads the declaration (riskmodels.explained): most filings are never
    read by one, and the reasons follow from the stored body and the model."""
    rows = []
    threshold = spec.model.threshold if spec.model else None
    for s in scored:
        entry = s.record()
        selected = s.probability is not None and threshold is not None and s.probability >= threshold
        result.models[s.model.mode] = entry
        if s.probability is not None:
            rows.append({"declaration_id": decl.id, "declaration_version": decl.version,
                         "model_version": s.model.version, "mode": s.model.mode, "probability": s.probability,
                         "selected": selected if s.model.mode == "shadow" else result.model_selected,
                         "explored": result.explored if s.model.mode == "active" else False,
                         "rules_channel": result.rules_channel, "channel": result.channel,
                         "scored_at": now})  # fmt: skip
    return rows


_INSERT_OBSERVATIONS = insert(table_of(UnitValueObservation))
_INSERT_ASSESSMENT = insert(table_of(RiskAssessment))
_INSERT_SCORES = insert(table_of(RiskModelScore))


def record(session: Session, decl: Declaration, assessment: Assessment) -> None:
    """Store what an assessment adds (the declaration's row must exist): the confidential record with its salt,
    the trader's first profile and the unit-value observations (after the evaluation, so a line is never
    compared with itself)."""
    conn = session.connection()
    conn.execute(
        _INSERT_ASSESSMENT,
        [{"declaration_id": decl.id, "version": decl.version, "record": assessment.record, "salt": assessment.salt,
          "commitment": assessment.commitment, "created_at": utcnow()}],
    )  # fmt: skip
    if assessment.new_profile:
        ensure_profile(session, decl.organisation_id)
    if assessment.observations:
        conn.execute(_INSERT_OBSERVATIONS, assessment.observations)
    if assessment.model_scores:
        conn.execute(_INSERT_SCORES, assessment.model_scores)
    crossborder.record_claims(session, decl, assessment.origin_check)


def _form_e_origin() -> str:
    """The origin a Form E received here certifies: the partner administration's country (the exporting side)."""
    return administration().partner.country


def assess(session: Session, decl: Declaration) -> Assessment:
    """Compute and store the duty bill and the channel of a registered declaration."""
    assessment = evaluate(session, decl)
    assessment.apply(decl)
    session.flush()
    record(session, decl, assessment)
    return assessment
