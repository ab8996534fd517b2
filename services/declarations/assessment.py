"""Assessment at registration: the duty bill and the risk channel, from stored tariff, rates, history and profile."""

from __future__ import annotations

import datetime as dt
import threading
import time
from decimal import Decimal
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from services.declarations import duties, risk
from services.declarations.models import (
    Declaration,
    ExchangeRate,
    RuleSet,
    TariffLine,
    TraderProfile,
    UnitValueObservation,
)
from services.kernel.database import utcnow
from services.kernel.outbox import canonical_sha256

VN_TZ = dt.timezone(dt.timedelta(hours=7), "ICT")  # Vietnam keeps UTC+7 all year
BAND_HISTORY = 500  # how many recent lines of an HS code the unit-value band rests on

_spec_cache: dict[str, risk.RuleSetSpec] = {}
_spec_lock = threading.Lock()


def registration_date(decl: Declaration) -> dt.date:
    """The Hanoi calendar day the declaration was registered (the exchange rate of that day applies)."""
    return (decl.submitted_at or utcnow()).astimezone(VN_TZ).date()


def tariff_rates(session: Session, hs_codes: set[str]) -> dict[str, duties.Rates]:
    """Tariff rates of these HS codes (codes not in the tariff are absent)."""
    rows = session.scalars(select(TariffLine).where(TariffLine.hs_code.in_(sorted(hs_codes))))
    return {
        r.hs_code: duties.Rates(
            hs_code=r.hs_code, mfn=r.mfn_rate, acfta=r.acfta_rate, vat=r.vat_rate, export=r.export_rate, status=r.status
        )
        for r in rows
    }


def exchange_rates(session: Session, currencies: set[str], day: dt.date) -> dict[str, Decimal]:
    """For each currency, the newest rate posted for `day` or before it."""
    out: dict[str, Decimal] = {}
    for currency in sorted(currencies - {"VND"}):
        rate = session.scalar(
            select(ExchangeRate.vnd_per_unit)
            .where(ExchangeRate.currency == currency, ExchangeRate.day <= day)
            .order_by(ExchangeRate.day.desc())
            .limit(1)
        )
        if rate is not None:
            out[currency] = Decimal(rate)
    return out


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
        profile = TraderProfile(
            organisation_id=organisation_id, compliance_class="B", violations=0, clean_since_change=0
        )
        session.add(profile)
        session.flush()
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
    database = str(session.get_bind().url)
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


def risk_input(
    session: Session, decl: Declaration, bill: duties.DutyBill, spec: risk.RuleSetSpec, *, gate_mismatches: int
) -> risk.RiskInput:
    """Gather what the rules look at."""
    items = decl.body["items"]
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
    caps = [r.max_prior_declarations + 1 for r in spec.rules if isinstance(r, risk.NewTrader)]
    return risk.RiskInput(
        declaration_id=decl.id,
        body_sha256=decl.body_sha256,
        body=decl.body,
        prior_declarations=prior_declarations(session, decl, cap=max(caps) if caps else 1),
        compliance_class=trader_profile(session, decl.organisation_id).compliance_class,
        gate_mismatches=gate_mismatches,
        duties_assessed=bill.assessed,
        line_vnd_per_kg=per_kg,
        bands=bands,
    )


def assess(session: Session, decl: Declaration) -> tuple[duties.DutyBill, risk.RiskResult]:
    """Compute and store the duty bill and the channel of a registered declaration."""
    day = registration_date(decl)
    items = decl.body["items"]
    bill = duties.assess(
        decl.body,
        registration_date=day,
        tariff=tariff_rates(session, {i["hs_code"] for i in items}),
        fx=exchange_rates(session, {i["currency"] for i in items}, day),
    )
    spec = spec_of(ensure_default_rule_set(session))
    mismatches = int((decl.risk or {}).get("gate_mismatches", 0))
    data = risk_input(session, decl, bill, spec, gate_mismatches=mismatches)
    result = risk.evaluate(spec, data)
    decl.duties = bill.to_json()
    decl.duties_due_vnd = bill.total_vnd
    decl.channel = result.channel
    decl.risk = {**result.to_json(), "gate_mismatches": mismatches}
    # Observations go in after the evaluation, so a line is never compared with itself.
    observations: list[dict[str, Any]] = [
        {"hs_code": item["hs_code"], "vnd_per_kg": value, "declaration_id": decl.id, "observed_at": utcnow()}
        for item, value in zip(items, data.line_vnd_per_kg, strict=True)
        if value is not None
    ]
    if observations:
        session.execute(insert(UnitValueObservation.__table__), observations)
    return bill, result
