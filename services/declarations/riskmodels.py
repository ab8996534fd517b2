"""Learned risk models as versioned artefacts: store, dry run on the history, shadow, activate, roll back, and the
weekly drift report. An admin changes states (each change an audited event); officers and supervisors read."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import math
from collections import Counter, defaultdict
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.declarations import assessment, modelserving
from services.declarations.events import MODEL_EVENTS
from services.declarations.models import Declaration, RiskModel, RiskModelScore, RiskOutcome
from services.kernel.auth import Principal, Role
from services.kernel.database import utcnow
from services.kernel.errors import Conflict, NotFound, ServiceUnavailable, Unprocessable
from services.kernel.outbox import record_event

MAX_MODEL_BYTES = 20 * 1024 * 1024
BINS = 10
MIN_SUPPORT = 5  # inspected declarations a weekly precision needs before an alarm rests on it
PSI_WARN = 0.25  # population stability index above which the score distribution has shifted (usual rule of thumb)


def _event(session: Session, kind: str, row: RiskModel | None, actor: str, **extra: Any) -> None:
    payload = {"version": row.version if row else None, "sha256": row.sha256 if row else None, "actor": actor,
               "previous": None}  # fmt: skip
    record_event(session, type=MODEL_EVENTS[kind], subject=f"risk-model:{row.version if row else '-'}",
                 payload=payload | extra)  # fmt: skip


def upload(session: Session, *, principal: Principal, version: str, data: bytes, value_currency: str) -> RiskModel:
    """Store a model file as a new, inactive version (validated by loading it as the scorer would)."""
    principal.require(Role.admin)
    if not data:
        raise Unprocessable("the model file is empty", code="risk_model.invalid")
    if len(data) > MAX_MODEL_BYTES:
        raise Unprocessable(f"a model file is at most {MAX_MODEL_BYTES} bytes", code="risk_model.too_large")
    from services.declarations.codes import currencies

    currency = value_currency
    if currency != "VND" and currency not in currencies():
        raise Unprocessable(f"'{currency}' is not an ISO 4217 currency", code="iso4217.code")
    try:
        from riskmodel.scoring import ModelError, Scorer
    except ImportError as exc:  # pragma: no cover - a deployment without onnxruntime
        raise ServiceUnavailable(f"risk models need onnxruntime and numpy on this server: {exc}") from exc
    try:
        scorer = Scorer(data)
    except ModelError as exc:
        raise Unprocessable(f"not a risk model: {exc}", code="risk_model.invalid") from exc
    if session.get(RiskModel, version) is not None:
        raise Conflict(f"risk model version {version} exists; versions are immutable, use a new one")
    info = {**scorer.info, "features": len(scorer.profiles.names), "explainable": scorer.explainer is not None,
            "unmapped_fields": list(modelserving.UNMAPPED)}  # fmt: skip
    row = RiskModel(version=version, sha256=hashlib.sha256(data).hexdigest(), size_bytes=len(data), data=data,
                    info=info, value_currency=value_currency, state="stored", created_by=principal.actor,
                    created_at=utcnow())  # fmt: skip
    session.add(row)
    session.flush()
    _event(session, "stored", row, principal.actor)
    return row


def get(session: Session, version: str) -> RiskModel:
    """A stored model, or 404."""
    row = session.get(RiskModel, version)
    if row is None:
        raise NotFound(f"risk model {version} not found")
    return row


def listing(session: Session) -> list[RiskModel]:
    """Every stored model, newest first."""
    return list(session.scalars(select(RiskModel).order_by(RiskModel.created_at.desc(), RiskModel.version)))


def _active(session: Session) -> RiskModel | None:
    return session.scalar(select(RiskModel).where(RiskModel.state == "active"))


def shadow(session: Session, *, principal: Principal, version: str) -> RiskModel:
    """Score every new registration with this model and record it, with no effect on the channel (it replaces
    the model in shadow, if any)."""
    principal.require(Role.admin)
    row = get(session, version)
    if row.state == "active":
        raise Conflict("this model is active; roll back or activate another before shadowing it",
                       code="risk_model.active")  # fmt: skip
    if row.state != "shadow":
        for other in session.scalars(select(RiskModel).where(RiskModel.state == "shadow")):
            other.state = "stored"
        session.flush()
        row.state, row.state_changed_by, row.state_changed_at = "shadow", principal.actor, utcnow()
        session.flush()
        _event(session, "shadowed", row, principal.actor)
    _warm(row)
    modelserving.forget()
    return row


def activate(session: Session, *, principal: Principal, version: str) -> RiskModel:
    """Combine this model with the rules (as the active rule set's `model:` says) from now on. It needs a dry run
    first; the model active until now is kept as `previous_version`, what a rollback returns to."""
    principal.require(Role.admin)
    row = get(session, version)
    if row.state == "active":
        return row
    if not row.dry_run:
        raise Conflict("dry run the model on the history before activating it (POST .../dry-run)",
                       code="risk_model.no_dry_run")  # fmt: skip
    current = _active(session)
    if current is not None:
        current.state, current.state_changed_by, current.state_changed_at = "retired", principal.actor, utcnow()
        session.flush()
    row.previous_version = current.version if current else None
    row.state, row.state_changed_by, row.state_changed_at = "active", principal.actor, utcnow()
    session.flush()
    _event(session, "activated", row, principal.actor, previous=row.previous_version)
    _warm(row)
    modelserving.forget()
    return row


def _warm(row: RiskModel) -> None:
    """Load the scorer now (about 0.75 s for the 600-tree KCS model), not in the first filing after the change;
    other processes load it on their first filing."""
    modelserving.scorer_of(row.sha256, lambda: bytes(row.data))


def rollback(session: Session, *, principal: Principal) -> RiskModel | None:
    """Retire the active model and reactivate the one it replaced (none: the rules alone select again)."""
    principal.require(Role.admin)
    current = _active(session)
    if current is None:
        raise Conflict("no model is active: nothing to roll back", code="risk_model.none_active")
    current.state, current.state_changed_by, current.state_changed_at = "retired", principal.actor, utcnow()
    session.flush()
    back = session.get(RiskModel, current.previous_version) if current.previous_version else None
    if back is not None:
        back.state, back.state_changed_by, back.state_changed_at = "active", principal.actor, utcnow()
        session.flush()
    _event(session, "rolled_back", back, principal.actor, previous=current.version)
    modelserving.forget()
    return back


def _threshold(session: Session, given: float | None) -> float:
    if given is not None:
        return given
    spec = assessment.spec_of(assessment.active_rule_set(session))
    return spec.model.threshold if spec.model else 0.5


def dry_run(
    session: Session, *, principal: Principal, version: str, limit: int, threshold: float | None = None
) -> dict[str, Any]:
    """Score the most recent registered declarations with the model: which it would have selected, and the
    precision of the past inspections among them (beside that of all past inspections and of the rules)."""
    principal.require(Role.officer, Role.supervisor, Role.admin)
    row = get(session, version)
    cut = _threshold(session, threshold)
    model = modelserving.Deployed(row.version, "dry-run", row.sha256, row.value_currency,
                                  modelserving.scorer_of(row.sha256, lambda: bytes(row.data)))  # fmt: skip
    decls = list(
        session.scalars(
            select(Declaration)
            .where(Declaration.submitted_at.is_not(None), Declaration.duties.is_not(None))
            .order_by(Declaration.submitted_at.desc())
            .limit(limit)
        )
    )
    outcomes = _outcomes(session, [d.id for d in decls])
    rates: dict[dt.date, Decimal | None] = {}

    def fx_for(day: dt.date):
        def fx(currency: str) -> Decimal | None:
            if day not in rates:
                rates[day] = assessment.exchange_rates(session, {currency}, day).get(currency)
            return rates[day]

        return fx

    unscored: Counter[str] = Counter()
    scored: list[tuple[Declaration, float]] = []
    for decl in decls:
        (s,) = modelserving.score([model], decl, decl.duties or {}, assessment.registration_date(decl),
                                  fx_for(assessment.registration_date(decl)))  # fmt: skip
        if s.probability is None:
            unscored[s.why] += 1
        else:
            scored.append((decl, s.probability))
    selected = [(d, p) for d, p in scored if p >= cut]

    def precision(rows: list[Declaration]) -> dict[str, Any]:
        judged = [outcomes[d.id] for d in rows if d.id in outcomes]
        hits = sum(judged)
        return {"inspected": len(judged), "violations": hits,
                "precision": round(hits / len(judged), 4) if judged else None}  # fmt: skip

    scores = sorted(p for _, p in scored)
    summary = {
        "version": row.version,
        "threshold": cut,
        "declarations": len(decls),
        "scored": len(scored),
        "unscored": dict(unscored),
        "selected": len(selected),
        "selected_percent": round(100 * len(selected) / len(scored), 2) if scored else 0.0,
        "past_inspections": {
            "all": precision([d for d, _ in scored]),
            "model_selected": precision([d for d, _ in selected]),
            "rules_selected": precision([d for d, _ in scored if d.channel in ("yellow", "red")]),
            "model_not_selected": precision([d for d, p in scored if p < cut]),
        },
        "reference_edges": _edges(scores),
        "reference_count": len(scores),
        "at": utcnow().isoformat(),
        "by": principal.actor,
    }
    row.dry_run = summary
    session.flush()
    top = sorted(selected, key=lambda t: -t[1])[:100]
    return summary | {
        "would_select": [
            {
                "declaration_id": d.id,
                "number": d.number,
                "probability": round(p, 4),
                "channel": d.channel,
                "violation": outcomes.get(d.id),
            }
            for d, p in top
        ],
        "note": "past inspections were chosen by the rules (and the random selection), so their precision among "
        "the model's picks is measured only where the two overlap; exploration gives unbiased outcomes.",
    }


def _outcomes(session: Session, ids: list[str]) -> dict[str, bool]:
    out: dict[str, bool] = {}
    for chunk in range(0, len(ids), 500):
        part = ids[chunk : chunk + 500]
        out.update(session.execute(select(RiskOutcome.declaration_id, RiskOutcome.violation)
                                   .where(RiskOutcome.declaration_id.in_(part))).tuples().all())  # fmt: skip
    return out


def _edges(scores: list[float]) -> list[float]:
    """Inner edges of BINS equal-count bins of sorted scores (the PSI reference)."""
    if not scores:
        return []
    return [scores[min(len(scores) - 1, math.floor(len(scores) * k / BINS))] for k in range(1, BINS)]


def psi(edges: list[float], reference: list[float] | None, scores: list[float]) -> float | None:
    """Population stability index of `scores` against the reference bins (equal-count bins of the reference:
    each expected to hold 1/BINS unless `reference` counts are given)."""
    if not edges or not scores:
        return None
    import bisect

    actual = [0] * (len(edges) + 1)
    for s in scores:
        actual[bisect.bisect_right(edges, s)] += 1
    if reference:
        ref = [0] * (len(edges) + 1)
        for s in reference:
            ref[bisect.bisect_right(edges, s)] += 1
        expected = [c / len(reference) for c in ref]
    else:
        expected = [1 / (len(edges) + 1)] * (len(edges) + 1)
    eps = 1e-4
    total = 0.0
    for e, a in zip(expected, actual, strict=True):
        a_share = max(a / len(scores), eps)
        e_share = max(e, eps)
        total += (a_share - e_share) * math.log(a_share / e_share)
    return round(total, 4)


def _week(at: dt.datetime) -> str:
    iso = at.isocalendar()
    return f"{iso.year}-W{iso.week:02d}"


def drift(session: Session, *, principal: Principal, weeks: int, version: str | None = None) -> dict[str, Any]:
    """Per model and ISO week: precision of the inspections the model selected, of those the rules selected, the
    exploration hit rate, and the PSI of the scores against the dry run's (else the first week's); an alarm when
    the model's precision falls below the rules' on enough inspections."""
    principal.require(Role.supervisor, Role.admin)
    since = utcnow() - dt.timedelta(days=7 * weeks)
    stmt = select(RiskModelScore).where(RiskModelScore.scored_at >= since)
    if version is not None:
        stmt = stmt.where(RiskModelScore.model_version == version)
    latest: dict[tuple[str, str], RiskModelScore] = {}
    for r in session.scalars(stmt.order_by(RiskModelScore.id)):
        latest[(r.model_version, r.declaration_id)] = r  # the last assessment of each declaration counts
    outcomes = _outcomes(session, sorted({d for _, d in latest}))
    by_model: dict[str, dict[str, list[RiskModelScore]]] = defaultdict(lambda: defaultdict(list))
    for (model_version, _), r in latest.items():
        by_model[model_version][_week(r.scored_at)].append(r)
    report: dict[str, Any] = {"weeks": weeks, "models": [], "alarms": []}
    for model_version, per_week in sorted(by_model.items()):
        row = session.get(RiskModel, model_version)
        reference = (row.dry_run or {}) if row else {}
        edges: list[float] = reference.get("reference_edges") or []
        first: list[float] | None = None
        if not edges:
            first_week = per_week[min(per_week)]
            first = sorted(r.probability for r in first_week)
            edges = _edges(first)
        out_weeks = []
        for week in sorted(per_week):
            rs = per_week[week]

            def rate(group: list[RiskModelScore]) -> dict[str, Any]:
                judged = [outcomes[r.declaration_id] for r in group if r.declaration_id in outcomes]
                return {"inspected": len(judged), "violations": sum(judged),
                        "precision": round(sum(judged) / len(judged), 4) if judged else None}  # fmt: skip

            model_sel = rate([r for r in rs if r.selected])
            rules_sel = rate([r for r in rs if r.rules_channel in ("yellow", "red") and not r.explored])
            explored = rate([r for r in rs if r.explored])
            entry: dict[str, Any] = {
                "week": week,
                "mode": rs[-1].mode,
                "scored": len(rs),
                "model_selected": model_sel,
                "rules_selected": rules_sel,
                "exploration": explored,
            }
            m_precision, r_precision = model_sel["precision"], rules_sel["precision"]
            alarm = (
                isinstance(m_precision, float)
                and isinstance(r_precision, float)
                and model_sel["inspected"] >= MIN_SUPPORT
                and rules_sel["inspected"] >= MIN_SUPPORT
                and m_precision < r_precision
            )
            entry["alarm"] = alarm
            shift = psi(edges, first, [r.probability for r in rs])
            entry["psi"] = shift
            if alarm:
                report["alarms"].append({"model": model_version, "week": week,
                                         "message": f"precision of model-selected inspections "
                                                    f"{model_sel['precision']:.2f} below the rules' "
                                                    f"{rules_sel['precision']:.2f}"})  # fmt: skip
            if shift is not None and shift > PSI_WARN:
                report["alarms"].append({"model": model_version, "week": week,
                                         "message": f"score distribution shifted (PSI {shift:.2f} > "
                                                    f"{PSI_WARN})"})  # fmt: skip
            out_weeks.append(entry)
        report["models"].append({"version": model_version, "state": row.state if row else None,
                                 "psi_reference": "dry run" if not first else "first week",
                                 "weeks": out_weeks})  # fmt: skip
    return report


def explained(session: Session, decl: Declaration, risk: dict[str, Any] | None) -> dict[str, Any] | None:
    """The officer's view of an assessment record: each model score with the features that raised it most, in
    words. Computed when read, from the declaration's stored body and duty bill (those the score was computed on:
    the record is the last assessment's) and the model, which is never deleted — not at filing, where most
    declarations are never read by an officer. The stored record (and its commitment) is left as it was."""
    entries = (risk or {}).get("models") or {}
    wanted = {mode: e for mode, e in entries.items() if e.get("probability") is not None and "reasons" not in e}
    if not wanted or risk is None:
        return risk
    out = {**risk, "models": dict(entries)}
    bill = decl.duties or {}
    day = assessment.registration_date(decl)
    body = {**decl.body, "_organisation": decl.organisation_id}
    for mode, entry in wanted.items():
        row = session.execute(
            select(RiskModel.sha256, RiskModel.value_currency).where(RiskModel.version == entry.get("version"))
        ).first()
        if row is None:
            continue
        sha, currency = row
        per_unit = (
            Decimal(1) if currency == "VND" else assessment.exchange_rates(session, {currency}, day).get(currency)
        )
        if per_unit is None or per_unit <= 0:
            continue
        try:
            scorer = modelserving.scorer_of(sha, functools.partial(modelserving._data, session, entry["version"]))
        except Exception:  # noqa: BLE001 - a model that no longer loads leaves the score without reasons
            continue
        items = modelserving.items_of(decl.id, body, bill, day, per_unit)
        line = int(entry.get("line") or 1) - 1
        if not 0 <= line < len(items):
            continue
        deployed = modelserving.Deployed(entry["version"], mode, sha, currency, scorer)
        scored = modelserving.Scored(deployed, float(entry["probability"]), line=line, items=items)
        out["models"][mode] = {**entry, "reasons": scored.reasons()}
    return out


def decided_history(session: Session) -> list[Any]:
    """The platform's own labelled history, one case per import declaration an officer decided (clear or reject),
    in order of registration: its goods lines as the model's items (values in VND), the decision's violation flag
    (officers record violations per declaration) and the additional duties the inspection found.

    The additional duties are what the declaration's bill gained between its first assessed version and the version
    the officer decided (an undervaluation found at inspection is corrected by an amendment, then cleared); both
    bills are computed the same way, on the registration day, so only the declared goods differ. A violation that
    changed no amount (or a rejection: nothing is collected) recovers 0; a compliant declaration recovers 0."""
    from riskmodel.records import Case
    from services.declarations import duties
    from services.declarations.models import DeclarationVersion, RiskAssessment

    rows = session.execute(
        select(Declaration, RiskOutcome.violation, RiskOutcome.outcome)
        .join(RiskOutcome, RiskOutcome.declaration_id == Declaration.id)
        .where(Declaration.kind == "import", Declaration.duties.is_not(None), Declaration.submitted_at.is_not(None))
        .order_by(Declaration.submitted_at, Declaration.id)
    ).all()
    ids = [decl.id for decl, _, _ in rows if decl.version > 1]
    first: dict[str, int] = {}
    bodies: dict[tuple[str, int], dict[str, Any]] = {}
    if ids:
        for decl_id, version in session.execute(
            select(RiskAssessment.declaration_id, RiskAssessment.version).where(RiskAssessment.declaration_id.in_(ids))
        ):
            first[decl_id] = min(first.get(decl_id, version), version)
        for decl_id, version, body in session.execute(
            select(DeclarationVersion.declaration_id, DeclarationVersion.version, DeclarationVersion.body).where(
                DeclarationVersion.declaration_id.in_(ids)
            )
        ):
            bodies[(decl_id, version)] = body

    def total(body: dict[str, Any], day: dt.date) -> int:
        items = body["items"]
        bill = duties.assess(body, registration_date=day,
                             tariff=assessment.tariff_rates(session, {i["hs_code"] for i in items}),
                             fx=assessment.exchange_rates(session, {i["currency"] for i in items}, day))  # fmt: skip
        return bill.total_vnd

    cases: list[Any] = []
    for decl, violation, outcome in rows:
        bill = decl.duties or {}
        if not bill.get("assessed"):
            continue
        day = assessment.registration_date(decl)
        body = {**decl.body, "_organisation": decl.organisation_id}
        items = modelserving.items_of(decl.id, body, bill, day, Decimal(1))
        recovered = 0
        earlier = bodies.get((decl.id, first.get(decl.id, decl.version)))
        if violation and outcome == "clear" and earlier is not None and first.get(decl.id, decl.version) < decl.version:
            recovered = max(0, total(decl.body, day) - total(earlier, day))
        cases.append(Case(id=decl.id, date=day, items=tuple(items), label=int(bool(violation)), revenue=recovered))
    return cases


def labelled_history(session: Session) -> tuple[list[Any], list[int]]:
    """The platform's own labelled history, as the model's items: every goods line of the import declarations an
    officer decided (clear or reject), labelled with the decision's violation flag (a declaration's flag applies to
    each of its lines: officers record violations per declaration), values in VND, in order of registration."""
    items: list[Any] = []
    labels: list[int] = []
    for case in decided_history(session):
        items += case.items
        labels += [case.label] * len(case.items)
    return items, labels
