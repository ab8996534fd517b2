"""Offered load per stage, from the scenario alone: is there a steady state to estimate at all?

For each stage, the work offered per day (trucks that visit it × their mean service time) against the server-minutes
it has per day (its staffing schedule, less the expected breakdowns): ρ = arrival rate × mean service / capacity.
A daily cap is a stage of its own (trucks offered per day against trucks accepted per day). Days run back to back,
so with ρ ≥ 1 the trucks left at closing pile up from one day to the next: the queue grows by about
(ρ − 1) × capacity trucks a day, and a mean wait or time in system only measures how long the run was.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from scipy.stats import binom

from simulator.engine import ResourceSpec
from simulator.gate import CHANNELS, CompiledGate
from simulator.scenario import Scenario


@dataclass(frozen=True, slots=True)
class StageLoad:
    """The offered load of one stage (or daily cap)."""

    stage: str
    arrivals_per_day: float  # trucks that visit the stage, per day
    service_min: float  # their mean service time (a cap: nan)
    capacity_per_day: float  # server-minutes available per day (a cap: trucks accepted per day)
    rho: float
    classes: tuple[str, ...]  # classes that visit it

    @property
    def unstable(self) -> bool:
        """No steady state: more work arrives per day than the stage can do."""
        return self.rho >= 1.0

    @property
    def excess_per_day(self) -> float:
        """Trucks a day the stage cannot serve (0 when stable): the rate its queue grows."""
        if math.isnan(self.service_min):
            served = self.capacity_per_day
        else:
            served = self.capacity_per_day / self.service_min if self.service_min > 0 else math.inf
        return max(0.0, self.arrivals_per_day - served)

    def as_dict(self) -> dict[str, object]:
        """JSON-friendly, with the derived fields."""
        d = asdict(self)
        d["classes"] = list(self.classes)
        d["unstable"] = self.unstable
        d["excess_per_day"] = self.excess_per_day
        return d


def capacity_min_per_day(spec: ResourceSpec) -> float:
    """Expected server-minutes per day: min(scheduled, units up) each hour, units up ~ Binomial(units, A)."""
    hours = [spec.servers_at(h) for h in range(24)]
    if spec.mtbf_min is None or spec.mttr_min is None:
        return 60.0 * sum(min(s, spec.units) for s in hours)
    avail = spec.mtbf_min / (spec.mtbf_min + spec.mttr_min)
    n = spec.units
    p_up = binom.pmf(range(n + 1), n, avail)
    return 60.0 * sum(float(sum(p * min(s, k) for k, p in enumerate(p_up))) for s in hours)


def shows(s: Scenario) -> float:
    """The share of the demand that arrives: booked no-shows never do (slots that run out are ignored here)."""
    return 1.0 if s.booking is None else 1.0 - s.booking.share * s.booking.no_show


def _cap_pass(s: Scenario, cls: str) -> float:
    """The share of a class's trucks a daily cap lets through (1 when the class has no cap or the cap suffices)."""
    c = s.classes[cls]
    cap = s.acceptance_cap_per_day.get(c.commodity) if c.direction == "export" else None
    if cap is None:
        return 1.0
    group = sum(x.trucks_per_day for x in s.classes.values() if x.direction == "export" and x.commodity == c.commodity)
    offered = group * s.demand_multiplier * shows(s)
    return 1.0 if offered <= cap else cap / offered


def offered_load(gate: CompiledGate) -> dict[str, StageLoad]:
    """The offered load of every resource and daily cap of a compiled scenario, keyed by name."""
    s: Scenario = gate.scenario
    st = s.stages
    work: dict[str, float] = {}
    visits: dict[str, float] = {}
    who: dict[str, list[str]] = {}

    def add(stage: str, cls: str, rate: float, service: float) -> None:
        if rate <= 0:
            return
        visits[stage] = visits.get(stage, 0.0) + rate
        work[stage] = work.get(stage, 0.0) + rate * service
        who.setdefault(stage, [])
        if cls not in who[stage]:
            who[stage].append(cls)

    eg = st.entry_gate
    # Every service distribution (exponential, lognormal by mean and cv, fixed) is parametrised by its mean.
    entry_mean = eg.ocr_service_min if eg.mode == "ocr" else eg.manual_service_min
    dc = st.document_check
    for name, c in s.classes.items():
        lam = c.trucks_per_day * s.demand_multiplier * shows(s)
        split = c.channels or s.channels
        side = "inbound" if c.direction == "import" else "outbound"
        add(f"entry_gate.{side}", name, lam, entry_mean)
        # Stages after a daily cap see only the trucks it lets through.
        past_cap = lam * _cap_pass(s, name)
        add(f"exit_gate.{side}", name, past_cap, st.exit_gate.service_min)
        # The declaration lead time is exponential with the class's mean (0: filed at arrival).
        if dc.precheck_lead_min is None:
            p_pre = 0.0
        elif c.declaration_lead_min > 0:
            p_pre = math.exp(-dc.precheck_lead_min / c.declaration_lead_min)
        else:
            p_pre = 1.0 if dc.precheck_lead_min <= 0 else 0.0
        phyto_ok = st.phyto is not None and c.commodity in st.phyto.commodities and c.direction in st.phyto.directions
        for ch, p_ch in zip(CHANNELS, (split.green, split.yellow, split.red), strict=True):
            rate = lam * p_ch
            if not (dc.auto_green and ch == "green"):
                base = getattr(dc.service_min_by_channel, ch)
                add("document_check", name, rate, base * (1 - p_pre + p_pre * dc.precheck_factor))
            i = CHANNELS.index(ch)
            if c.loaded or not st.weighbridge.loaded_only:
                add("weighbridge", name, rate * st.weighbridge.fractions()[i], st.weighbridge.service_min)
            add("xray", name, rate * st.xray.fractions()[i], st.xray.service_min)
            add("inspection", name, rate * st.inspection.fractions()[i], st.inspection.service_min)
            if st.phyto is not None and phyto_ok:
                add("phyto", name, rate * st.phyto.fractions()[i], st.phyto.service_min)
        if c.direction == "export" and st.china_check is not None:
            add("china_check", name, past_cap, st.china_check.service_min)
    out: dict[str, StageLoad] = {}
    for spec in gate.network.resources:
        lam = visits.get(spec.name, 0.0)
        w = work.get(spec.name, 0.0)
        capacity = capacity_min_per_day(spec)
        rho = w / capacity if capacity > 0 else (math.inf if w > 0 else 0.0)
        out[spec.name] = StageLoad(
            spec.name, lam, w / lam if lam else 0.0, capacity, rho, tuple(who.get(spec.name, ()))
        )
    for group, cap in s.acceptance_cap_per_day.items():
        names = [n for n, c in s.classes.items() if c.direction == "export" and c.commodity == group]
        lam = sum(s.classes[n].trucks_per_day * s.demand_multiplier for n in names) * shows(s)
        rho = lam / cap if cap > 0 else (math.inf if lam > 0 else 0.0)
        out[f"acceptance_cap.{group}"] = StageLoad(
            f"acceptance_cap.{group}", lam, math.nan, float(cap), rho, tuple(names)
        )
    return out


def unstable(load: dict[str, StageLoad]) -> list[StageLoad]:
    """The stages with ρ ≥ 1, worst first."""
    return sorted((x for x in load.values() if x.unstable), key=lambda x: -x.rho)


def describe(x: StageLoad) -> str:
    """One line for an overloaded stage."""
    if math.isnan(x.service_min):
        what = f"{x.arrivals_per_day:.0f} trucks/day offered, {x.capacity_per_day:.0f} accepted"
    else:
        what = (
            f"{x.arrivals_per_day:.1f} trucks/day × {x.service_min:.1f} min against "
            f"{x.capacity_per_day:,.0f} server-min/day"
        )
    return (
        f"{x.stage} is overloaded: offered load ρ = {x.rho:.2f} ({what}); its queue grows by about "
        f"{x.excess_per_day:.0f} trucks a day, so means of waits and times in system grow with --days "
        "(see trucks_left_at_closing.growth_per_day)"
    )


def _stage_of(kpi: str) -> str:
    """The stage a wait or queue KPI is about: `wait_min.entry_gate.inbound.p95` → `entry_gate.inbound`."""
    rest = kpi.split(".", 1)[1]
    head, _, last = rest.rpartition(".")
    return head if last in ("p50", "p90", "p95") else rest


def affected_kpis(load: dict[str, StageLoad], kpis: list[str]) -> list[str]:
    """KPIs that have no steady-state value when some stage is unstable (they measure the run length)."""
    bad = unstable(load)
    if not bad:
        return []
    classes = {c for x in bad for c in x.classes}
    stages = {x.stage for x in bad}
    out = []
    for k in kpis:
        parts = k.split(".")
        if k.startswith("time_in_system_min.") and (parts[1] in classes or parts[1] == "all"):
            out.append(k)
        elif k.startswith(("wait_min.", "queue_length.")) and _stage_of(k) in stages:
            out.append(k)
        elif k.startswith("wait_min.acceptance_cap") and any(s.startswith("acceptance_cap.") for s in stages):
            out.append(k)
        elif k in ("trucks_left_at_closing", "trucks_in_system_at_end", "yard_occupancy.mean", "yard_occupancy.max"):
            out.append(k)
    return out


# Stages a truck visits while it holds a yard slot (between entry and exit).
_INSIDE_YARD = ("document_check", "weighbridge", "xray", "inspection", "phyto", "acceptance_cap.")


def yard_note(gate: CompiledGate, load: dict[str, StageLoad]) -> str | None:
    """When an unstable stage sits inside a finite yard, the backlog fills the yard and then blocks every class."""
    cap = gate.scenario.yard.capacity_trucks
    excess = sum(x.excess_per_day for x in unstable(load) if x.stage.startswith(_INSIDE_YARD))
    if cap is None or excess <= 0:
        return None
    return (
        f"the yard ({cap} trucks) fills with that backlog in about {cap / excess:.1f} days; after that, trucks "
        "that finished entry keep their lanes and every class queues at the entry gates, so throughput falls "
        "below demand for all of them"
    )
