"""Risk selectivity: a versioned YAML rule set turns a declaration into green, yellow or red, with its reasons."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from services.declarations import mirror
from services.kernel.nesting import MAX_DEPTH, yaml_depth_exceeds

DEFAULT_RULE_SET = Path(__file__).resolve().parent / "rules" / "default.yaml"
CHANNELS = ("green", "yellow", "red")


def higher(a: str | None, b: str | None) -> str | None:
    """The more severe of two channels (None: not assessed)."""
    if a is None or b is None:
        return a or b
    return max(a, b, key=CHANNELS.index)


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{1,48}$")]
    reason: str = ""
    weight: int = 0


class HsWatchlist(_Rule):
    """Fires when any goods line's HS code starts with one of `prefixes`."""

    type: Literal["hs_watchlist"]
    prefixes: list[Annotated[str, Field(pattern=r"^\d{2,8}$")]] = Field(min_length=1)


class UnitValueAnomaly(_Rule):
    """Fires when a line's value per kg is outside the [low, high] percentile band of past lines of its HS code."""

    type: Literal["unit_value_anomaly"]
    low_percentile: float = Field(5, ge=0, le=50)
    high_percentile: float = Field(95, ge=50, le=100)
    min_history: int = Field(20, ge=3)


class FormENonChineseOrigin(_Rule):
    """Fires when a Form E (ACFTA, China origin) is claimed but some line's origin is not CN."""

    type: Literal["form_e_non_chinese_origin"]


class NewTrader(_Rule):
    """Fires when the organisation has filed at most `max_prior_declarations` before this one."""

    type: Literal["new_trader"]
    max_prior_declarations: int = Field(3, ge=0)


class ComplianceClass(_Rule):
    """Adds the weight of the trader's compliance class (A, B or C)."""

    type: Literal["compliance_class"]
    weights: dict[Literal["A", "B", "C"], int]


class GateMismatch(_Rule):
    """Fires when the gate reported a mismatch for this declaration (raised by the inspection service)."""

    type: Literal["gate_mismatch"]


class TraceCheck(_Rule):
    """Fires once per failed trace-check rule (`trace_quantity`, `trace_mass_balance`, `trace_pre_harvest`,
    `trace_registration`, `trace_unknown`) that the traceability service reported for the declaration's current
    version; each hit is named after the failed rule and carries its evidence. `weights` overrides `weight` per
    failed rule."""

    type: Literal["trace_check"]
    weights: dict[Annotated[str, Field(pattern=r"^trace_[a-z_]{1,40}$")], int] = Field(default_factory=dict)


class UnassessedDuties(_Rule):
    """Fires when duties could not be assessed (HS code not in the tariff, no exchange rate)."""

    type: Literal["unassessed_duties"]


class MirrorDiscrepancy(_Rule):
    """Fires when our declaration and the partner administration's data on the same consignment differ beyond the
    tolerances (percent of the larger figure, per HS6 subheading): HS6 (when `same_hs6`), quantity, gross mass,
    value (in VND at our rates) and origin; or when the partner reported such a discrepancy to us."""

    type: Literal["mirror_discrepancy"]
    mass_tolerance_percent: Decimal = Field(Decimal(2), ge=0, le=100)
    value_tolerance_percent: Decimal = Field(Decimal(5), ge=0, le=100)
    quantity_tolerance_percent: Decimal = Field(Decimal(0), ge=0, le=100)
    same_hs6: bool = True


class OriginUnverified(_Rule):
    """Fires when a Form E claim is not verified against the certificates the exporting administration sent
    (not found, or goods, quantity or validity mismatch), or when the partner reported so for our export."""

    type: Literal["origin_unverified"]


Rule = Annotated[
    HsWatchlist
    | UnitValueAnomaly
    | FormENonChineseOrigin
    | NewTrader
    | ComplianceClass
    | GateMismatch
    | TraceCheck
    | UnassessedDuties
    | MirrorDiscrepancy
    | OriginUnverified,
    Field(discriminator="type"),
]


class Thresholds(BaseModel):
    """Score at or above which a declaration goes yellow, and red."""

    model_config = ConfigDict(extra="forbid")

    yellow: int
    red: int

    @model_validator(mode="after")
    def _ordered(self) -> Thresholds:
        if self.red <= self.yellow:
            raise ValueError("thresholds.red must be greater than thresholds.yellow")
        return self


class RandomSelection(BaseModel):
    """Minimum random selection rate per channel (ASYCUDA's 'minimum random rate'), as fractions."""

    model_config = ConfigDict(extra="forbid")

    red: float = Field(default=0.0, ge=0, le=1)
    yellow: float = Field(default=0.0, ge=0, le=1)


class ModelCombination(BaseModel):
    """How the active learned model joins the rules: at probability >= `threshold` it adds `weight` to the score
    and, with `select`, puts the declaration in at least that channel; at >= `red_at`, red. `exploration` is the
    share of inspections chosen at random among declarations nothing selected (their outcomes keep the model's
    learning unbiased), sent to `exploration_channel`. Without an active model none of this applies."""

    model_config = ConfigDict(extra="forbid")

    # false: the active model is scored and recorded, and `threshold` marks what it would select (the drift report
    # measures it), but it changes no channel and explores nothing, as if it were in shadow.
    enabled: bool = True
    threshold: float = Field(gt=0, lt=1)
    weight: int = 0
    select: Literal["yellow", "red"] | None = None
    red_at: float | None = Field(default=None, gt=0, lt=1)
    exploration: float = Field(default=0.10, ge=0, le=0.5)
    exploration_channel: Literal["yellow", "red"] = "yellow"
    reason: str = "the learned fraud model scores this declaration as likely to hold a violation"

    @model_validator(mode="after")
    def _consistent(self) -> ModelCombination:
        if self.red_at is not None and self.red_at < self.threshold:
            raise ValueError("model.red_at must not be below model.threshold")
        if self.weight == 0 and self.select is None and self.red_at is None:
            raise ValueError("model: give a weight, select or red_at, or the model never changes a channel")
        return self


class RuleSetSpec(BaseModel):
    """A whole rule set as written in YAML."""

    model_config = ConfigDict(extra="forbid")

    version: Annotated[str, Field(pattern=r"^[0-9A-Za-z.\-_]{1,32}$")]
    description: str = ""
    seed: int
    target: dict[Literal["green", "yellow", "red"], float] = Field(default_factory=dict)
    thresholds: Thresholds
    random_selection: RandomSelection = RandomSelection()
    model: ModelCombination | None = None
    # ACFTA Form E: `verify` grants the preferential rate only to a claim verified against the certificates the
    # exporting administration sent (issue 14); `declared` trusts the declared certificate's dates (rule sets
    # written before the exchange, so their assessments do not change).
    form_e: Literal["verify", "declared"] = "declared"
    rules: list[Rule] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_ids(self) -> RuleSetSpec:
        ids = [r.id for r in self.rules]
        if len(ids) != len(set(ids)):
            raise ValueError("rule ids must be unique")
        if self.random_selection.red + self.random_selection.yellow > 1:
            raise ValueError("random_selection rates add up to more than 1")
        return self


class RuleSetError(ValueError):
    """A rule set that does not parse or validate; the message names the path."""


def parse_rule_set(text: str) -> RuleSetSpec:
    """Parse and validate YAML, with errors that name where the problem is."""
    if yaml_depth_exceeds(text):
        raise RuleSetError(f"collections are nested deeper than {MAX_DEPTH} levels")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RuleSetError(f"not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise RuleSetError("a rule set is a YAML mapping")
    try:
        return RuleSetSpec.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top)"
        raise RuleSetError(f"{where}: {first['msg']} ({len(exc.errors())} problem(s))") from exc


@dataclass(frozen=True, slots=True)
class UnitValueBand:
    """Past value per kg of an HS code: percentiles and how many observations they rest on."""

    low: Decimal
    high: Decimal
    count: int


@dataclass(slots=True)
class RiskInput:
    """Everything a rule may look at, gathered by the service (the engine itself touches no database)."""

    declaration_id: str
    body_sha256: str
    body: dict[str, Any]
    prior_declarations: int
    compliance_class: str
    gate_mismatches: int = 0
    # Failed trace-check rules of the current version (`trace.checked`): {code, line, detail, evidence}.
    trace_failures: list[dict[str, Any]] = field(default_factory=list)
    duties_assessed: bool = True
    line_vnd_per_kg: list[Decimal | None] = field(default_factory=list)
    bands: dict[str, UnitValueBand] = field(default_factory=dict)
    # The active learned model's fraud probability of the declaration (its riskiest line), and the model's version;
    # None when no model is active or it could not score this declaration.
    model_probability: float | None = None
    model_version: str | None = None
    # Cross-border exchange (issue 14): the partner's pre-arrival notice of the consignment as our lines' mirror
    # (None: the partner sent none), the Form E verification (None: no claim, or not verified under this rule
    # set), and the findings the partner reported about our declaration (control results).
    partner_view: dict[str, Any] | None = None
    fx: dict[str, Decimal] = field(default_factory=dict)
    origin_check: dict[str, Any] | None = None
    partner_findings: list[dict[str, Any]] = field(default_factory=list)
    # The country whose goods a Form E received here certifies: the exporting partner's (CN at Kim Thành, VN at
    # Hekou), for `form_e_non_chinese_origin` (named from Kim Thành's side).
    form_e_origin: str = "CN"


@dataclass(slots=True)
class RiskResult:
    """The channel and why."""

    channel: str
    score: int
    rule_set_version: str
    reasons: list[dict[str, Any]]
    draw: float
    rules_channel: str = ""  # the channel of the rules alone (before the model and exploration)
    model_selected: bool = False  # the active model's threshold was reached
    explored: bool = False  # chosen at random among non-selected declarations (exploration)
    # The learned models' scores and reasons (active and shadow), added by the service: officers only.
    models: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """JSON form stored with the declaration."""
        out = {
            "channel": self.channel,
            "score": self.score,
            "rule_set_version": self.rule_set_version,
            "reasons": self.reasons,
            "random_draw": round(self.draw, 6),
        }
        if self.models:
            out["models"] = self.models
        return out


def draw(spec: RuleSetSpec, declaration_id: str, key: bytes = b"", purpose: str = "") -> float:
    """A uniform number in [0, 1) fixed by (rule set version, seed, declaration id) under the platform's secret
    draw key: HMAC-SHA256, so amending the body never re-draws and nobody without the key can predict it.
    `purpose` gives an independent draw for another use (exploration) under the same rules."""
    message = f"{spec.version}:{spec.seed}:{declaration_id}" + (f":{purpose}" if purpose else "")
    digest = hmac.new(key, message.encode(), hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def exploration_rate(spec: RuleSetSpec) -> float:
    """The chance that a declaration nothing selected is explored, so that `model.exploration` of all inspections
    are exploratory: share / (1 - share) x selected / not selected, with the rule set's target split (without a
    target, the share itself)."""
    if spec.model is None or not spec.model.enabled or spec.model.exploration <= 0:
        return 0.0
    share = spec.model.exploration
    green = spec.target.get("green")
    if green is None or not 0 < green < 100:
        return share
    selected = 1 - green / 100
    return min(1.0, share / (1 - share) * selected / (1 - selected))


def _hits(spec: RuleSetSpec, data: RiskInput) -> list[dict[str, Any]]:  # noqa: C901 - one branch per rule type, as the rule-set docs list them
    items = data.body.get("items", [])
    hs_codes = [i["hs_code"] for i in items]
    hits: list[dict[str, Any]] = []
    for rule in spec.rules:
        detail: str | None = None
        weight = rule.weight
        if isinstance(rule, HsWatchlist):
            matched = sorted({h for h in hs_codes if any(h.startswith(p) for p in rule.prefixes)})
            if matched:
                detail = f"HS {', '.join(matched)}"
        elif isinstance(rule, UnitValueAnomaly):
            odd = []
            for n, (item, per_kg) in enumerate(zip(items, data.line_vnd_per_kg, strict=False)):
                band = data.bands.get(item["hs_code"])
                if per_kg is None or band is None or band.count < rule.min_history:
                    continue
                if per_kg < band.low or per_kg > band.high:
                    odd.append(f"line {n + 1}: {per_kg:.0f} VND/kg outside [{band.low:.0f}, {band.high:.0f}]")
            if odd:
                detail = "; ".join(odd)
        elif isinstance(rule, FormENonChineseOrigin):
            # An import's claim (an export names the Form E it was issued; its origin is ours).
            if data.body.get("preferential_origin") and data.body.get("kind", "import") == "import":
                others = sorted({i["origin"] for i in items if i["origin"] != data.form_e_origin})
                if others:
                    detail = f"Form E claimed, origin {', '.join(others)}"
        elif isinstance(rule, NewTrader):
            if data.prior_declarations <= rule.max_prior_declarations:
                detail = f"{data.prior_declarations} prior declaration(s)"
        elif isinstance(rule, ComplianceClass):
            weight = rule.weights.get(data.compliance_class, 0)  # type: ignore[call-overload]
            if weight:
                detail = f"compliance class {data.compliance_class}"
        elif isinstance(rule, GateMismatch):
            if data.gate_mismatches:
                detail = f"{data.gate_mismatches} gate mismatch(es)"
        elif isinstance(rule, TraceCheck):
            hits.extend(_trace_hits(rule, data.trace_failures))
        elif isinstance(rule, UnassessedDuties):
            if not data.duties_assessed:
                detail = "duties could not be assessed"
        elif isinstance(rule, MirrorDiscrepancy):
            evidence = mirror_findings(rule, data)
            if evidence:
                detail = "; ".join(f"HS {f['hs6']} {f['code']}: ours {f['ours']}, partner {f['theirs']}"
                                   if f.get("hs6") else f["detail"] for f in evidence)  # fmt: skip
                hits.append({"rule": rule.id, "weight": weight, "detail": detail, "reason": rule.reason,
                             "evidence": evidence})  # fmt: skip
                continue
        elif isinstance(rule, OriginUnverified):
            check = data.origin_check
            reported = [f for f in data.partner_findings if f.get("code") == "origin_unverified"]
            if check is not None and check.get("status") != "verified":
                detail = f"Form E {check.get('certificate')} {check.get('status')}: " + "; ".join(check["reasons"])
                hits.append({"rule": rule.id, "weight": weight, "detail": detail, "reason": rule.reason,
                             "evidence": check})  # fmt: skip
                continue
            if reported:
                detail = "reported by the partner: " + "; ".join(f["detail"] for f in reported)
        if detail is not None:
            hits.append({"rule": rule.id, "weight": weight, "detail": detail, "reason": rule.reason})
    return hits


def mirror_findings(rule: MirrorDiscrepancy, data: RiskInput) -> list[dict[str, Any]]:
    """The discrepancies between our lines and the partner's view under the rule's tolerances, and those the
    partner reported about our declaration."""
    found: list[dict[str, Any]] = []
    if data.partner_view is not None:
        tol = mirror.Tolerances(
            mass_percent=rule.mass_tolerance_percent,
            value_percent=rule.value_tolerance_percent,
            quantity_percent=rule.quantity_tolerance_percent,
            same_hs6=rule.same_hs6,
        )
        ours = mirror.our_groups(data.body, data.fx)
        found += mirror.compare(ours, mirror.partner_groups(data.partner_view, data.fx), tol)
    found += [dict(f, reported_by="partner") for f in data.partner_findings if f.get("code") == "mirror_discrepancy"]
    return found


def _trace_hits(rule: TraceCheck, failures: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One hit per failed trace rule, named after it, with every line's detail and evidence."""
    by_code: dict[str, list[dict[str, Any]]] = {}
    for failure in failures:
        by_code.setdefault(str(failure.get("code", "trace_unknown")), []).append(failure)
    return [
        {
            "rule": code,
            "weight": rule.weights.get(code, rule.weight),
            "detail": "; ".join(
                (f"line {f['line']}: " if f.get("line") else "") + str(f.get("detail", "")) for f in found
            ),
            "reason": rule.reason,
            "evidence": [f.get("evidence") or {} for f in found],
        }
        for code, found in sorted(by_code.items())
    ]


def evaluate(spec: RuleSetSpec, data: RiskInput, *, draw_key: bytes = b"") -> RiskResult:
    """Score the rule hits, pick the channel, then apply the minimum random selection (drawn with `draw_key`,
    the platform's secret; tests of the rules alone may leave it empty)."""
    hits = _hits(spec, data)
    score = sum(h["weight"] for h in hits)
    rules_channel = _channel(spec, score)
    combination, p = spec.model, data.model_probability
    reached = combination is not None and p is not None and p >= combination.threshold
    selected = reached and combination is not None and combination.enabled
    if selected:
        assert combination is not None
        assert p is not None
        score += combination.weight
        hits.append({"rule": "model", "weight": combination.weight,
                     "detail": f"fraud model {data.model_version}: probability {p:.2f} (threshold "
                               f"{combination.threshold:.2f})", "reason": combination.reason})  # fmt: skip
    channel = _channel(spec, score)
    if selected:
        assert combination is not None
        assert p is not None
        if combination.select:
            channel = higher(channel, combination.select) or channel
        if combination.red_at is not None and p >= combination.red_at:
            channel = "red"
    u = draw(spec, data.declaration_id, draw_key)
    rnd = spec.random_selection
    if u < rnd.red:
        if channel != "red":
            hits.append({"rule": "random_red", "weight": 0, "detail": f"random selection ({rnd.red:.1%})",
                         "reason": "minimum random rate"})  # fmt: skip
        channel = "red"
    elif u < rnd.red + rnd.yellow and channel == "green":
        hits.append({"rule": "random_yellow", "weight": 0, "detail": f"random selection ({rnd.yellow:.1%})",
                     "reason": "minimum random rate"})  # fmt: skip
        channel = "yellow"
    explored = False
    if combination is not None and combination.enabled and p is not None and channel == "green":
        rate = exploration_rate(spec)
        if draw(spec, data.declaration_id, draw_key, "explore") < rate:
            explored = True
            channel = combination.exploration_channel
            hits.append({"rule": "exploration", "weight": 0,
                         "detail": f"chosen at random among non-selected declarations ({rate:.1%})",
                         "reason": "exploration: outcomes of unselected declarations keep the model "
                                   "honest"})  # fmt: skip
    return RiskResult(channel=channel, score=score, rule_set_version=spec.version, reasons=hits, draw=u,
                      rules_channel=rules_channel, model_selected=reached, explored=explored)  # fmt: skip


def _channel(spec: RuleSetSpec, score: int) -> str:
    return "red" if score >= spec.thresholds.red else "yellow" if score >= spec.thresholds.yellow else "green"


def percentile(sorted_values: list[Decimal], q: float) -> Decimal:
    """Linear-interpolated percentile (q in 0..100) of sorted values."""
    if not sorted_values:
        raise ValueError("no values")
    pos = (len(sorted_values) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    frac = Decimal(str(pos - lo))
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * frac


def default_rule_set_text() -> str:
    """The rule set shipped with the platform."""
    return DEFAULT_RULE_SET.read_text(encoding="utf-8")
