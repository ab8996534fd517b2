"""The roster that meets a wait target at least cost: offered-load staffing, an integer programme, then simulation.

`smartgate sim staff SCENARIO --target "wait_min.document_check.p95<=30" --hours-budget N` (docs/simulator.md):

1. **Offered load by hour** (the M_t/G/s_t method of the time-varying staffing literature): the trucks reaching the
   stage minute by minute are the scenario's arrival profile passed through a fluid model of the entry booths (the
   backlog of trucks that came before opening) and delayed by the mean service of the stages before it; the
   offered load m(t) = ∫ λ(t − u) P(S > u) du is what an infinite-server stage would have busy (Eick, Massey and
   Whitt's M_t/G/∞ formula), so it lags the arrivals by the service time and carries long services across hours.
2. **Per-hour model**: in hour h the stage is an M/M/s with offered load m_h (the "lagged PSA"/"modified offered
   load" approximation), with the Allen–Cunneen factor (1 + c_s²)/2 for non-exponential service: the delay
   probability is Erlang C, P(W > T) = C(s, m_h) · exp(−(s − m_h) T / (E[S] κ)), E[W] = C κ E[S] / (s − m_h).
3. **Integer programme** (`scipy.optimize.milp`): one binary per (hour, servers); minimise officer-hours subject to
   the day's aggregate target, which is linear in those binaries: the share of trucks waiting more than T
   (Σ_h n_h P_h(W > T) ≤ (1 − p) Σ_h n_h for a p-quantile target) or the mean wait (Σ_h n_h E_h[W] ≤ T Σ_h n_h).
4. **Simulation** decides: the roster is run with common random numbers; while the upper end of the KPI's 95 %
   interval is above the target, one officer is added in the hour with the longest simulated queue; then officers
   are taken away, least busy hour first, as long as the upper end stays at or below the target.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from simulator.gate import CHANNELS, CompiledGate, GateSource, compile_gate
from simulator.scenario import Scenario, parse_scenario, set_path

# Stages whose servers are officers or equipment on an hourly roster, in the order a truck meets them.
STAFFABLE = ("document_check", "weighbridge", "xray", "inspection", "phyto")
# Stages whose servers are installed equipment: a roster cannot staff more units than there are (`servers`).
EQUIPMENT = ("weighbridge", "xray")
_QUANTILES = {"p50": 0.50, "p90": 0.90, "p95": 0.95}
_TARGET = re.compile(r"^\s*([A-Za-z0-9_.]+)\s*(<=|<)\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*(?:min)?\s*$")
_OVERNIGHT_MIN = 720.0  # the wait the model gives a truck that reaches an unstaffed or overloaded hour
_DAY = 1440


class StaffError(ValueError):
    """Input the staffing search cannot work with (one line, for the CLI)."""


@dataclass(frozen=True, slots=True)
class Target:
    """`wait_min.STAGE[.pNN] <= value`."""

    kpi: str
    stage: str
    quantile: float | None  # None: the mean wait
    value: float

    def met(self, ci_high: float) -> bool:
        """Met with confidence: the upper end of the 95 % interval is at or below the target."""
        return not math.isnan(ci_high) and ci_high <= self.value


def parse_target(text: str, kpis: list[str]) -> Target:
    """Parse `wait_min.document_check.p95<=30`; unknown or unsupported KPIs and malformed text are StaffError."""
    m = _TARGET.match(text)
    if not m:
        raise StaffError(f"--target {text!r}: expected KPI<=MINUTES, e.g. wait_min.document_check.p95<=30")
    kpi, value = m.group(1), float(m.group(3))
    if kpi not in kpis:
        import difflib

        near = difflib.get_close_matches(kpi, kpis, n=2, cutoff=0.6)
        hint = f"; did you mean {' or '.join(near)}?" if near else ""
        raise StaffError(f"--target: unknown KPI {kpi}{hint}")
    parts = kpi.split(".")
    stage, quantile = (parts[1] if len(parts) > 1 else ""), None
    if len(parts) == 3 and parts[2] in _QUANTILES:
        quantile = _QUANTILES[parts[2]]
    if (
        parts[0] != "wait_min"
        or stage not in STAFFABLE
        or len(parts) not in (2, 3)
        or (len(parts) == 3 and not quantile)
    ):
        raise StaffError(
            f"--target: cannot staff for {kpi}: a target is the wait at a rostered stage, wait_min.STAGE (mean) or "
            f"wait_min.STAGE.p50|p90|p95, STAGE one of {', '.join(STAFFABLE)}"
        )
    if value <= 0:
        raise StaffError(f"--target {text!r}: the target must be a positive number of minutes")
    return Target(kpi, stage, quantile, value)


# ---------------------------------------------------------------------------------------------------------- model


@dataclass(frozen=True, slots=True)
class _Component:
    weight: float
    mean: float
    distribution: str
    cv: float

    def survival(self, u: np.ndarray) -> np.ndarray:
        if self.mean <= 0:
            return np.zeros_like(u)
        if self.distribution == "fixed":
            return (u < self.mean).astype(float)
        if self.distribution == "lognormal":
            from scipy.stats import lognorm

            sigma = math.sqrt(math.log1p(self.cv * self.cv))
            return np.asarray(lognorm.sf(u, sigma, scale=self.mean * math.exp(-sigma * sigma / 2.0)), dtype=float)
        return np.exp(-u / self.mean)

    def second_moment(self) -> float:
        if self.distribution == "fixed":
            return self.mean**2
        if self.distribution == "lognormal":
            return self.mean**2 * (1.0 + self.cv**2)
        return 2.0 * self.mean**2


def _precheck_share(s: Scenario, cls: str) -> float:
    """The share of a class's trucks whose declaration was filed early enough for the faster document check."""
    dc, c = s.stages.document_check, s.classes[cls]
    if dc.precheck_lead_min is None:
        return 0.0
    if c.declaration_lead_min > 0:
        return math.exp(-dc.precheck_lead_min / c.declaration_lead_min)
    return 1.0 if dc.precheck_lead_min <= 0 else 0.0


def _class_terms(s: Scenario, stage: str) -> dict[str, tuple[float, list[_Component], float]]:
    """Per class: P(visit the stage), its service components, and the mean minutes spent at stages before it."""
    st = s.stages
    dc = st.document_check
    out = {}
    for name, c in s.classes.items():
        split = c.channels or s.channels
        p_pre = _precheck_share(s, name)
        phyto_ok = st.phyto is not None and c.commodity in st.phyto.commodities and c.direction in st.phyto.directions
        visit = dict.fromkeys(STAFFABLE, 0.0)
        comps: dict[str, list[_Component]] = {k: [] for k in STAFFABLE}
        for i, (ch, p_ch) in enumerate(zip(CHANNELS, (split.green, split.yellow, split.red), strict=True)):
            if p_ch <= 0:
                continue
            if not (dc.auto_green and ch == "green"):
                base = getattr(dc.service_min_by_channel, ch)
                visit["document_check"] += p_ch
                for w, m in ((1 - p_pre, base), (p_pre, base * dc.precheck_factor)):
                    if w > 0:
                        comps["document_check"].append(_Component(p_ch * w, m, dc.distribution, dc.cv))
            for k in ("weighbridge", "xray", "inspection", "phyto"):
                stg = getattr(st, k)
                if stg is None or (k == "phyto" and not phyto_ok):
                    continue
                if k == "weighbridge" and not (c.loaded or not st.weighbridge.loaded_only):
                    continue
                p = p_ch * stg.fractions()[i]
                if p > 0:
                    visit[k] += p
                    comps[k].append(_Component(p, stg.service_min, stg.distribution, stg.cv))
        before = 0.0
        for k in STAFFABLE:
            if k == stage:
                break
            before += sum(x.weight * x.mean for x in comps[k])
        if visit[stage] > 0:
            total = sum(x.weight for x in comps[stage])
            norm = [_Component(x.weight / total, x.mean, x.distribution, x.cv) for x in comps[stage]]
            out[name] = (visit[stage], norm, before)
    return out


def _arrivals_per_minute(gate: CompiledGate, seed: int, days: int = 40) -> dict[str, np.ndarray]:
    """Expected arrivals per minute of the day, per class: from the profiles, or (with booking) from the draws."""
    s = gate.scenario
    out = {}
    if s.booking is None:
        for name, c in s.classes.items():
            w = np.asarray(s.profiles[c.profile], dtype=float)
            per_hour = c.trucks_per_day * s.demand_multiplier * w / w.sum()
            out[name] = np.repeat(per_hour / 60.0, 60)
        return out
    src = GateSource(gate, seed, 0)
    counts = np.zeros((len(gate.classes), _DAY))
    for d in range(days):
        b = src(d)
        minute = (np.asarray(b.arrival_min) - d * _DAY).astype(int) % _DAY
        np.add.at(counts, (np.asarray(b.cls), minute), 1)
    for ci, name in enumerate(gate.classes):
        out[name] = counts[ci] / days
    return out


def _entry_outflow(gate: CompiledGate, arrivals: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Trucks leaving the entry booths per minute over three identical days (fluid FIFO queue per direction)."""
    s = gate.scenario
    eg = s.stages.entry_gate
    mean = eg.ocr_service_min if eg.mode == "ocr" else eg.manual_service_min
    hours = np.arange(3 * _DAY) // 60 % 24
    is_open = (hours >= s.hours.open_hour) & (hours < s.hours.close_hour)
    out: dict[str, np.ndarray] = {}
    for lanes, direction in ((s.lanes.inbound, "import"), (s.lanes.outbound, "export")):
        names = [n for n, c in s.classes.items() if c.direction == direction]
        if not names:
            continue
        lam = {n: np.tile(arrivals[n], 3) for n in names}
        total = np.sum(list(lam.values()), axis=0)
        cap = np.where(is_open, lanes / mean, 0.0)
        q, dep = 0.0, np.zeros_like(total)
        for t in range(total.size):
            q += total[t]
            d = min(q, cap[t])
            dep[t] = d
            q -= d
        cum_a = np.concatenate([[0.0], np.cumsum(total)])
        cum_d = np.cumsum(dep)
        # FIFO: what leaves by minute t arrived by τ with A(τ) = D(t); each class leaves as it arrived.
        tau = np.interp(cum_d, cum_a, np.arange(cum_a.size))
        for n in names:
            cum_c = np.concatenate([[0.0], np.cumsum(lam[n])])
            out[n] = np.diff(np.concatenate([[0.0], np.interp(tau, np.arange(cum_c.size), cum_c)]))
    return out


@dataclass(slots=True)
class StageModel:
    """The per-hour queueing model of one stage: trucks reaching it, offered load, service moments."""

    stage: str
    arrivals_per_hour: np.ndarray  # [24] trucks reaching the stage in each hour
    offered_load: np.ndarray  # [24] mean busy servers an infinite-server stage would have (Erlangs)
    mean_service: float
    scv: float  # squared coefficient of variation of the service time
    work_min_per_day: float

    def delay(self, s: int, h: int, target: Target) -> float:
        """Model value of hour h with s servers: P(W > T) for a quantile target, E[W] for a mean target."""
        a = float(self.offered_load[h])
        if a <= 1e-12:
            return 0.0
        if s <= a:
            return 1.0 if target.quantile is not None else _OVERNIGHT_MIN
        c = erlang_c(s, a)
        kappa = (1.0 + self.scv) / 2.0
        if target.quantile is not None:
            return c * math.exp(-(s - a) * target.value / (self.mean_service * kappa))
        return c * kappa * self.mean_service / (s - a)

    def left_queued(self, s: int, h: int, target: Target, gap_min: float | None) -> float:
        """Trucks queued when the stage closes after hour h (× the night's wait for a mean target); 0 if open on."""
        a = float(self.offered_load[h])
        if gap_min is None or a <= 1e-12:
            return 0.0
        lq = self.arrivals_per_hour[h] if s <= a else erlang_c(s, a) * a / (s - a)
        if target.quantile is not None:
            return lq if gap_min > target.value else 0.0
        return lq * gap_min


def _gap_min(hi: list[int], h: int) -> float:
    """Minutes from the end of hour h to the next hour the stage can be staffed."""
    for k in range(1, 25):
        if hi[(h + k) % 24] > 0:
            return 60.0 * (k - 1)
    return 1440.0


def erlang_c(s: int, a: float) -> float:
    """Erlang C: the probability that an arrival waits in an M/M/s queue with offered load a < s."""
    b = 1.0
    for k in range(1, s + 1):
        b = a * b / (k + a * b)
    return s * b / (s - a * (1.0 - b))


def stage_model(gate: CompiledGate, stage: str, seed: int) -> StageModel:
    """Arrivals and offered load of a stage by hour of day (lagged, infinite-server offered load)."""
    terms = _class_terms(gate.scenario, stage)
    if not terms:
        raise StaffError(f"--target: no truck class of {gate.scenario.name} visits {stage}")
    arrivals = _arrivals_per_minute(gate, seed)
    eg = gate.scenario.stages.entry_gate
    entry_mean = eg.ocr_service_min if eg.mode == "ocr" else eg.manual_service_min
    flow = _entry_outflow(gate, arrivals)
    lam = np.zeros(3 * _DAY)
    comps: list[_Component] = []
    for name, (p_visit, parts, before) in terms.items():
        lag = int(round(entry_mean + before))
        f = np.roll(flow[name], lag) * p_visit
        f[:lag] = 0.0
        lam += f
        daily = float(f[2 * _DAY :].sum())
        comps += [_Component(x.weight * daily, x.mean, x.distribution, x.cv) for x in parts]
    total = sum(x.weight for x in comps)
    mean = sum(x.weight * x.mean for x in comps) / total
    m2 = sum(x.weight * x.second_moment() for x in comps) / total
    u = np.arange(3 * _DAY) + 0.5
    surv = np.zeros_like(u)
    for x in comps:
        surv += x.weight / total * x.survival(u)
    m = np.convolve(lam, surv)[: 3 * _DAY]
    last = slice(2 * _DAY, 3 * _DAY)
    return StageModel(
        stage=stage,
        arrivals_per_hour=lam[last].reshape(24, 60).sum(axis=1),
        offered_load=m[last].reshape(24, 60).mean(axis=1),
        mean_service=mean,
        scv=max(0.0, m2 / mean**2 - 1.0),
        work_min_per_day=float(lam[last].sum() * mean),
    )


def solve_roster(
    model: StageModel, target: Target, lo: list[int], hi: list[int], budget: int | None, tighten: float = 1.0
) -> list[int] | None:
    """The fewest officer-hours meeting the model's target (× `tighten`), by MILP; None if none within budget."""
    from scipy.optimize import Bounds, LinearConstraint, milp

    options = [(h, s) for h in range(24) for s in range(lo[h], hi[h] + 1)]
    n = len(options)
    cost = np.array([s for _, s in options], dtype=float)
    one = np.zeros((24, n))
    for j, (h, _) in enumerate(options):
        one[h, j] = 1.0
    weights = model.arrivals_per_hour
    limit = (1.0 - target.quantile if target.quantile is not None else target.value) * tighten * weights.sum()
    # The hour before the stage must close: the trucks still queued then (Lq of an M/M/s) wait for the morning.
    closing = {h: _gap_min(hi, h) for h in range(24) if hi[h] > 0 and hi[(h + 1) % 24] == 0}
    row = np.array(
        [weights[h] * model.delay(s, h, target) + model.left_queued(s, h, target, closing.get(h)) for h, s in options]
    )
    cons = [LinearConstraint(one, 1, 1), LinearConstraint(row[None, :], -np.inf, limit)]
    if budget is not None:
        cons.append(LinearConstraint(cost[None, :], -np.inf, budget))
    res = milp(cost, constraints=cons, integrality=np.ones(n), bounds=Bounds(0, 1))
    if res.status != 0 or res.x is None:
        return None
    roster = [0] * 24
    for j, (h, s) in enumerate(options):
        if res.x[j] > 0.5:
            roster[h] = s
    return roster


# ------------------------------------------------------------------------------------------------------ search


@dataclass(slots=True)
class Evaluation:
    """A roster run by simulation."""

    roster: tuple[int, ...]
    officer_hours: int
    kpi: dict[str, float]  # mean, ci_low, ci_high, half_width, n
    queue_by_hour: list[float]  # simulated mean queue at the stage by hour of day
    unstable: list[str]


@dataclass(slots=True)
class StaffResult:
    """What `sim staff` found."""

    scenario: str
    stage: str
    target: Target
    seed: int
    replications: int
    days: int
    budget: int
    minimum_hours: int
    model: StageModel
    start: list[int]
    current: Evaluation
    best: Evaluation | None  # the cheapest roster that met the target, or None
    closest: Evaluation  # the roster with the lowest upper bound tried (when none met it)
    met: bool
    reason: str
    evaluations: int
    trail: list[dict[str, Any]] = field(default_factory=list)


def current_roster(gate: CompiledGate, stage: str) -> list[int]:
    """The scenario's hourly staffing of a stage (its schedule, or `servers` in the goods hours)."""
    spec = gate.network.resources[gate.resource_index[stage]]
    return [spec.servers_at(h) for h in range(24)]


def bounds(gate: CompiledGate, model: StageModel) -> tuple[list[int], list[int]]:
    """Per hour: at least 1 where the stage is open today, 0 elsewhere; at most the equipment, or a generous cap."""
    cur = current_roster(gate, model.stage)
    s = gate.scenario
    lo = [1 if x > 0 else 0 for x in cur]
    units = getattr(s.stages, model.stage).servers
    hi = []
    for h in range(24):
        a = float(model.offered_load[h])
        rostered = cur[h] > 0 or model.arrivals_per_hour[h] > 0.05 or model.offered_load[h] > 0.05
        cap = math.ceil(a + 6.0 * math.sqrt(a) + 6.0) if rostered else 0
        if model.stage in EQUIPMENT:
            cap = min(cap, max(units, max(cur)))
        hi.append(max(cap, lo[h]))
    return lo, hi


def minimum_hours(model: StageModel, lo: list[int]) -> int:
    """Officer-hours below which no roster does the day's work (ρ < 1) and keeps the stage's open hours open."""
    return max(sum(lo), math.floor(model.work_min_per_day / 60.0) + 1)  # more than the work: ρ < 1 over the day


def _prune(
    roster: list[int],
    best: Evaluation,
    lo: list[int],
    target: Target,
    evaluate: Callable[[list[int], str], Evaluation],
    more: Callable[[], bool],
) -> Evaluation:
    """Take officers away, least busy hour first, while the target still holds (every trial simulated)."""
    tried: set[tuple[int, ...]] = set()
    improved = True
    while improved and more():
        improved = False
        cand = sorted((h for h in range(24) if roster[h] > lo[h]), key=lambda x: best.queue_by_hour[x] / roster[x])
        for h in cand:
            if not more():
                break
            trial = list(roster)
            trial[h] -= 1
            if tuple(trial) in tried:
                continue
            tried.add(tuple(trial))
            ev = evaluate(trial, f"remove at {h:02d}:00")
            if target.met(ev.kpi["ci_high"]):
                roster, best, improved = trial, ev, True
                break
    return best


def staff(
    raw: dict[str, Any],
    target: Target,
    *,
    budget: int,
    seed: int,
    replications: int,
    days: int,
    workers: int | None = None,
    interval: str = "t",
    max_evaluations: int = 60,
    progress: Callable[[str], None] | None = None,
) -> StaffResult:
    """Search the cheapest hourly roster of the target's stage whose KPI meets the target with 95 % confidence."""
    from simulator.runner import run_replications

    scenario = parse_scenario(raw)
    gate = compile_gate(scenario)
    stage = target.stage
    model = stage_model(gate, stage, seed)
    lo, hi = bounds(gate, model)
    minimum = minimum_hours(model, lo)
    if budget < minimum:
        raise StaffError(
            f"--hours-budget {budget}: below the minimum of {minimum} officer-hours a day for {stage} "
            f"({model.work_min_per_day:,.0f} min of work a day, open {sum(lo)} hours)"
        )
    ri = gate.resource_index[stage]
    cache: dict[tuple[int, ...], Evaluation] = {}
    trail: list[dict[str, Any]] = []

    def evaluate(roster: list[int], why: str) -> Evaluation:
        key = tuple(roster)
        if key in cache:
            return cache[key]
        variant = set_path(raw, f"stages.{stage}.servers_by_hour", list(roster))
        out = run_replications(
            variant, seed=seed, replications=replications, days=days, workers=workers, interval=interval
        )
        q = [row[ri] if row[ri] is not None else 0.0 for row in out.hourly["queue_length"]["mean"]]
        ev = Evaluation(
            key, sum(roster), out.summary[target.kpi], q, [x.stage for x in out.load.values() if x.unstable]
        )
        cache[key] = ev
        trail.append({"why": why, "officer_hours": ev.officer_hours, "kpi": ev.kpi, "roster": list(key)})
        if progress is not None:
            m, hi_ = ev.kpi["mean"], ev.kpi["ci_high"]
            progress(f"{why}: {ev.officer_hours} officer-hours, {target.kpi} {m:.2f} (upper {hi_:.2f})")
        return ev

    current = evaluate(current_roster(gate, stage), "current roster")
    start = solve_roster(model, target, lo, hi, budget)
    if start is None:
        # The model needs more than the budget. Only a current roster that meets the target within it is kept.
        free = solve_roster(model, target, lo, hi, None)
        need = f"the offered-load model needs {sum(free)}" if free is not None else "no roster meets it in the model"
        if free is None and stage in EQUIPMENT:
            need += (
                f" with at most {max(hi)} {stage} unit(s) staffed an hour (the units installed; more units: "
                f"stages.{stage}.servers)"
            )
        if not (target.met(current.kpi["ci_high"]) and current.officer_hours <= budget):
            return StaffResult(raw["name"], stage, target, seed, replications, days, budget, minimum, model,
                               free or [], current, None, current, False,
                               need if free is None else f"{need}, more than the budget of {budget} officer-hours",
                               len(cache),
                               trail)  # fmt: skip
        start = list(current.roster)
    ev = evaluate(start, "offered-load start (MILP)")
    closest = ev
    roster = list(start)
    # Not met: ask the model for more (a tighter model target, so officers go where the model says they help),
    # then, when the model has nothing more to give, add officers where the simulated queue is longest.
    tighten = 1.0
    while not target.met(ev.kpi["ci_high"]) and len(cache) < max_evaluations:
        tighten *= 0.7
        nxt = solve_roster(model, target, lo, hi, budget, tighten) if tighten > 1e-4 else None
        if nxt is not None and sum(nxt) > sum(roster):
            roster = nxt
            ev = evaluate(roster, f"offered-load model, target × {tighten:.2f} (MILP)")
        elif nxt is not None and sum(nxt) <= sum(roster):
            continue
        else:
            room = [h for h in range(24) if roster[h] < hi[h]]
            if not room or sum(roster) + 1 > budget:
                break
            h = max(room, key=lambda x: ev.queue_by_hour[x] / max(roster[x], 0.5))
            roster = list(roster)
            roster[h] += 1
            ev = evaluate(roster, f"add at {h:02d}:00")
        if ev.kpi["ci_high"] < closest.kpi["ci_high"]:
            closest = ev
    if not target.met(ev.kpi["ci_high"]):
        why = (
            f"the budget of {budget} officer-hours"
            if sum(roster) + 1 > budget
            else "the search limits (hours at their maximum or --max-evaluations)"
        )
        return StaffResult(raw["name"], stage, target, seed, replications, days, budget, minimum, model, start,
                           current, None, closest, False, f"not met within {why}", len(cache), trail)  # fmt: skip
    best = _prune(roster, ev, lo, target, evaluate, lambda: len(cache) < max_evaluations)
    return StaffResult(raw["name"], stage, target, seed, replications, days, budget, minimum, model, start,
                       current, best, best, True, "met", len(cache), trail)  # fmt: skip


# ------------------------------------------------------------------------------------------------------ output


def result_dict(r: StaffResult) -> dict[str, Any]:
    """The content of staff.json."""

    def ev(e: Evaluation | None) -> dict[str, Any] | None:
        if e is None:
            return None
        return {"officer_hours": e.officer_hours, "roster": list(e.roster), "kpi": e.kpi, "unstable_stages": e.unstable}

    return {
        "scenario": r.scenario,
        "stage": r.stage,
        "target": {"kpi": r.target.kpi, "max_minutes": r.target.value},
        "met": r.met,
        "reason": r.reason,
        "seed": r.seed,
        "replications": r.replications,
        "days": r.days,
        "hours_budget": r.budget,
        "minimum_hours": r.minimum_hours,
        "recommended": ev(r.best),
        "closest": ev(r.closest),
        "current": ev(r.current),
        "offered_load_start": {"officer_hours": sum(r.start), "roster": r.start},
        "model": {
            "arrivals_per_hour": r.model.arrivals_per_hour.tolist(),
            "offered_load_erlangs": r.model.offered_load.tolist(),
            "mean_service_min": r.model.mean_service,
            "service_scv": r.model.scv,
        },
        "evaluations": r.evaluations,
        "trail": r.trail,
    }


def write_report(r: StaffResult, rosters: dict[str, dict[str, list[int]]], out: Path) -> Path:
    """staff.json and report.html (a heat map of each roster, hour × stage) into `out`."""
    import base64
    import html
    import io
    import json

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from simulator.report import _clean, _fmt

    out.mkdir(parents=True, exist_ok=True)
    (out / "staff.json").write_text(json.dumps(_clean(result_dict(r)), indent=2, ensure_ascii=False), "utf-8")
    imgs = []
    peak = max(max(v) for ro in rosters.values() for v in ro.values()) or 1
    for title, ro in rosters.items():
        stages = list(ro)
        grid = np.asarray([ro[s] for s in stages], dtype=float)
        fig, ax = plt.subplots(figsize=(10, 0.5 + 0.45 * len(stages)))
        ax.imshow(np.where(grid > 0, grid, np.nan), aspect="auto", cmap="YlOrRd", vmin=0, vmax=peak)
        for (i, h), v in np.ndenumerate(grid):
            if v:
                ax.text(h, i, f"{int(v)}", ha="center", va="center", fontsize=8)
        ax.set_yticks(range(len(stages)), stages, fontsize=8)
        ax.set_xticks(range(24), [f"{h:02d}" for h in range(24)], fontsize=7)
        own = sum(ro.get(r.stage, []))
        ax.set(
            xlabel="hour of day (Hanoi)",
            title=f"{title}: {r.stage} {own} officer-hours a day, all stages {int(grid.sum())} (blank = closed)",
        )
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=90)
        plt.close(fig)
        imgs.append(f"<h2>{html.escape(title)}</h2><img src=\"data:image/png;base64,"
                    f"{base64.b64encode(buf.getvalue()).decode()}\">")  # fmt: skip
    rows = []
    for label, e in (
        ("current roster", r.current),
        ("recommended", r.best),
        ("closest tried", None if r.met else r.closest),
    ):
        if e is not None:
            k = e.kpi
            ok = "meets" if r.target.met(k["ci_high"]) else "does not meet"
            rows.append(f"<tr><td>{label}</td><td>{e.officer_hours}</td><td>{_fmt(k['mean'])}</td>"
                        f"<td>{_fmt(k['ci_low'])} – {_fmt(k['ci_high'])}</td><td>{ok}</td></tr>")  # fmt: skip
    verdict = (
        f"<p>Target met with 95 % confidence at {r.best.officer_hours} officer-hours a day.</p>"
        if r.met and r.best
        else f'<p class="bad">Target not met: {html.escape(r.reason)}.</p>'
    )
    name = html.escape(r.scenario)
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>{name}: staffing</title>
<style>body{{font-family:sans-serif;max-width:1000px;margin:auto}}td,th{{padding:2px 8px;text-align:right}}
td:first-child{{text-align:left}}img{{max-width:100%}}.bad{{color:#b00020}}</style></head><body>
<h1>Staffing {html.escape(r.stage)}: {name}</h1>
<p>Target {html.escape(r.target.kpi)} ≤ {r.target.value:g} min (upper end of the 95 % t interval); budget
{r.budget} officer-hours a day; seed {r.seed}, {r.replications} replications × {r.days} days per roster,
{r.evaluations} rosters simulated; offered-load start {sum(r.start)} officer-hours.</p>
{verdict}
<table><tr><th>roster</th><th>officer-hours/day</th><th>mean</th><th>95 % CI</th><th>target</th></tr>
{"".join(rows)}</table>
{"".join(imgs)}
</body></html>"""
    path = out / "report.html"
    path.write_text(page, encoding="utf-8")
    return path
