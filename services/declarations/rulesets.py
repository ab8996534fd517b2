"""Risk rule sets: store a new version, replay it over stored declarations (dry run), activate it."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from services.declarations import assessment, risk, selectivity
from services.declarations.models import Declaration, RuleSet
from services.kernel.auth import Principal, Role
from services.kernel.database import utcnow
from services.kernel.errors import Conflict, NotFound, Unprocessable
from services.kernel.outbox import canonical_sha256, record_event


def create(session: Session, *, principal: Principal, source_yaml: str) -> RuleSet:
    """Store a new rule set version (inactive until activated)."""
    principal.require(Role.admin)
    try:
        spec = risk.parse_rule_set(source_yaml)
    except risk.RuleSetError as exc:
        raise Unprocessable(str(exc), code="rule_set.invalid") from exc
    if session.get(RuleSet, spec.version) is not None:
        raise Conflict(f"rule set version {spec.version} exists; versions are immutable, use a new one")
    row = RuleSet(
        version=spec.version,
        source_yaml=source_yaml,
        sha256=canonical_sha256(source_yaml),
        active=False,
        created_by=principal.actor,
    )
    session.add(row)
    session.flush()
    return row


def get(session: Session, version: str) -> RuleSet:
    """A stored rule set, or 404."""
    row = session.get(RuleSet, version)
    if row is None:
        raise NotFound(f"rule set {version} not found")
    return row


def listing(session: Session) -> list[RuleSet]:
    """All versions, newest first (the shipped default is stored on first use)."""
    assessment.ensure_default_rule_set(session)
    return list(session.scalars(select(RuleSet).order_by(RuleSet.created_at.desc())))


def activate(session: Session, *, principal: Principal, version: str) -> RuleSet:
    """Make `version` the rule set new registrations are assessed with."""
    principal.require(Role.admin)
    row = get(session, version)
    session.execute(update(RuleSet).where(RuleSet.active.is_(True)).values(active=False))
    row.active = True
    row.activated_at = utcnow()
    assessment.REFERENCE_CACHE.clear()
    record_event(
        session,
        type="risk.rule_set_activated",
        subject=f"rule-set:{version}",
        payload={"version": version, "sha256": row.sha256, "actor": principal.actor},
    )
    session.flush()
    return row


def dry_run(session: Session, *, principal: Principal, version: str, limit: int) -> dict[str, Any]:
    """Replay a rule set over the most recent registered declarations: the channel split and which rules fired."""
    principal.require(Role.officer, Role.supervisor, Role.admin)
    spec = assessment.spec_of(get(session, version))
    decls = list(
        session.scalars(
            select(Declaration)
            .where(Declaration.submitted_at.is_not(None), Declaration.duties.is_not(None))
            .order_by(Declaration.submitted_at.desc())
            .limit(limit)
        )
    )
    channels: Counter[str] = Counter()
    fired: Counter[str] = Counter()
    changed = 0
    band_rule = next((r for r in spec.rules if isinstance(r, risk.UnitValueAnomaly)), None)
    band_cache: dict[str, risk.UnitValueBand | None] = {}
    key = selectivity.draw_key(session)
    for decl in decls:
        bill = decl.duties or {}
        per_kg: list[Decimal | None] = []
        for item, line in zip(decl.body["items"], bill.get("lines", []), strict=False):
            net = Decimal(item["net_mass_kg"])
            per_kg.append(Decimal(line["value_vnd"]) / net if line.get("value_vnd") and net > 0 else None)
        bands: dict[str, risk.UnitValueBand] = {}
        if band_rule is not None:
            for hs in {i["hs_code"] for i in decl.body["items"]} - band_cache.keys():
                band_cache[hs] = assessment.unit_value_bands(
                    session, {hs}, band_rule.low_percentile, band_rule.high_percentile
                ).get(hs)
            bands = {hs: b for hs in {i["hs_code"] for i in decl.body["items"]} if (b := band_cache.get(hs))}
        data = risk.RiskInput(
            declaration_id=decl.id,
            body_sha256=decl.body_sha256,
            body=decl.body,
            prior_declarations=assessment.prior_declarations(session, decl),
            compliance_class=assessment.trader_profile(session, decl.organisation_id).compliance_class,
            gate_mismatches=int((decl.risk or {}).get("gate_mismatches", 0)),
            trace_failures=assessment.trace_failures(decl),
            duties_assessed=bool(bill.get("assessed", True)),
            line_vnd_per_kg=per_kg,
            bands=bands,
        )
        result = risk.evaluate(spec, data, draw_key=key)
        channels[result.channel] += 1
        fired.update(h["rule"] for h in result.reasons)
        changed += result.channel != decl.channel
    total = len(decls)
    session.rollback()  # a dry run changes nothing (profiles created on the way are not kept)
    return {
        "version": spec.version,
        "declarations": total,
        "split_percent": {c: round(100 * channels[c] / total, 2) if total else 0.0 for c in risk.CHANNELS},
        "target_percent": spec.target,
        "counts": {c: channels[c] for c in risk.CHANNELS},
        "rules_fired": dict(fired.most_common()),
        "channel_changes": changed,
        "note": "unit-value bands use today's history, which includes the replayed declarations themselves",
    }
