"""The gate model: a scenario compiled into an engine network, and the trucks of each day drawn from CRN streams.

Common random numbers: every truck attribute (channel, lead time, whether it visits a stage, its service time at
each stage) is a uniform from a fixed column of a per-(replication, class, day) stream, then transformed. Two
scenarios run with the same seed therefore give the same truck the same numbers wherever their structure agrees,
and a paired difference between them measures the change, not the noise.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from simulator.engine import EXIT, QUOTA_BASE, YARD_IN, YARD_OUT, DayBatch, NetworkSpec, ResourceSpec
from simulator.scenario import Scenario

# Uniform columns drawn for every truck; the order is fixed so that scenarios stay aligned.
_COLUMNS = (
    "channel",
    "lead",
    "visit_weighbridge",
    "visit_xray",
    "visit_inspection",
    "visit_phyto",
    "svc_entry",
    "svc_document_check",
    "svc_weighbridge",
    "svc_xray",
    "svc_inspection",
    "svc_phyto",
    "svc_exit",
    "svc_china_check",
)
_COL = {name: i for i, name in enumerate(_COLUMNS)}
CHANNELS = ("green", "yellow", "red")


def stream_key(name: str) -> int:
    """A stable integer for a named activity, so streams do not depend on declaration order."""
    return zlib.crc32(name.encode())


def _hours_schedule(servers: int, open_hour: int, close_hour: int) -> tuple[int, ...]:
    return tuple(servers if open_hour <= h < close_hour else 0 for h in range(24))


def _service(u: np.ndarray, mean: np.ndarray | float, distribution: str, cv: float) -> np.ndarray:
    """Service times from uniforms by inverse transform (so a uniform means the same truck in every scenario)."""
    if distribution == "fixed":
        return np.broadcast_to(np.asarray(mean, dtype=float), u.shape).astype(float)
    if distribution == "lognormal":
        from scipy.special import ndtri

        sigma = float(np.sqrt(np.log1p(cv * cv)))
        return np.asarray(mean * np.exp(sigma * ndtri(u) - sigma * sigma / 2.0), dtype=float)
    return np.asarray(-mean * np.log1p(-u), dtype=float)


@dataclass(frozen=True, slots=True)
class CompiledGate:
    """A scenario turned into an engine network plus what is needed to draw its trucks."""

    scenario: Scenario
    network: NetworkSpec
    resource_index: dict[str, int]
    quota_groups: tuple[str, ...]

    @property
    def classes(self) -> tuple[str, ...]:
        """Class names in engine order."""
        return self.network.classes


def compile_gate(s: Scenario) -> CompiledGate:
    """Build the engine network of a scenario: resources with their staffing, the yard and the daily caps."""
    h = s.hours
    st = s.stages
    res: list[ResourceSpec] = []

    def add(name: str, servers: int, by_hour: list[int] | None, default_hours: tuple[int, int], **kw: float) -> None:
        sched = tuple(by_hour) if by_hour is not None else _hours_schedule(servers, *default_hours)
        res.append(ResourceSpec(name=name, servers=servers, servers_by_hour=sched, **kw))

    gate_hours = (h.open_hour, h.close_hour)
    add("entry_gate.inbound", s.lanes.inbound, None, gate_hours)
    add("entry_gate.outbound", s.lanes.outbound, None, gate_hours)
    add("document_check", st.document_check.servers, st.document_check.servers_by_hour, gate_hours)
    add("weighbridge", st.weighbridge.servers, st.weighbridge.servers_by_hour, gate_hours)
    xray_kw = {}
    if st.xray.mtbf_hours is not None and st.xray.mttr_hours is not None:
        xray_kw = {"mtbf_min": st.xray.mtbf_hours * 60.0, "mttr_min": st.xray.mttr_hours * 60.0}
    add("xray", st.xray.servers, st.xray.servers_by_hour, gate_hours, **xray_kw)
    add("inspection", st.inspection.servers, st.inspection.servers_by_hour, gate_hours)
    if st.phyto is not None:
        add("phyto", st.phyto.servers, st.phyto.servers_by_hour, gate_hours)
    add("exit_gate.inbound", s.lanes.inbound, None, gate_hours)
    add("exit_gate.outbound", s.lanes.outbound, None, gate_hours)
    if st.china_check is not None:
        cc = st.china_check
        off = h.partner_offset_hours
        add(
            "china_check",
            cc.servers,
            cc.servers_by_hour,
            (max(0, cc.open_hour_partner - off), min(24, cc.close_hour_partner - off)),
        )
    groups = tuple(sorted(s.acceptance_cap_per_day))
    net = NetworkSpec(
        resources=tuple(res),
        classes=tuple(s.classes),
        yard_capacity=s.yard.capacity_trucks,
        quota_per_day=tuple(s.acceptance_cap_per_day[g] for g in groups),
        quota_reset_hour=h.open_hour,
        close_hour=h.close_hour % 24,
        warmup_min=s.warmup_days * 1440.0,
    )
    return CompiledGate(
        scenario=s, network=net, resource_index={r.name: i for i, r in enumerate(res)}, quota_groups=groups
    )


class GateSource:
    """Draws each day's trucks of one replication; callable as the engine's `day_batch`."""

    def __init__(self, gate: CompiledGate, seed: int, replication: int) -> None:
        """Prepare the per-class rates and the route table."""
        self.gate = gate
        self.seed = seed
        self.replication = replication
        s = gate.scenario
        self._routes: dict[int, tuple[int, ...]] = {}
        self._rates = []
        for c in s.classes.values():
            w = np.asarray(s.profiles[c.profile], dtype=float)
            self._rates.append(c.trucks_per_day * s.demand_multiplier * w / w.sum())
        # Class attributes as arrays, so a day's trucks are transformed in one vectorised pass.
        splits = [c.channels or s.channels for c in s.classes.values()]
        phyto = s.stages.phyto
        self._per_class = {
            "green": np.array([x.green for x in splits]),
            "green_yellow": np.array([x.green + x.yellow for x in splits]),
            "lead_min": np.array([c.declaration_lead_min for c in s.classes.values()]),
            "loaded": np.array([c.loaded for c in s.classes.values()]),
            "phyto": np.array(
                [
                    phyto is not None and c.commodity in phyto.commodities and c.direction in phyto.directions
                    for c in s.classes.values()
                ]
            ),
        }

    def _stream(self, activity: str, cls: str, day: int) -> np.random.Generator:
        key = (self.replication, stream_key(activity), stream_key(cls), day)
        return np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=key))

    def _route(self, ci: int, visits: int) -> tuple[int, ...]:
        """The route of a class with a visit bitmask (document, weighbridge, xray, inspection, phyto)."""
        key = ci * 32 + visits
        route = self._routes.get(key)
        if route is not None:
            return route
        g = self.gate
        s = g.scenario
        ri = g.resource_index
        c = list(s.classes.values())[ci]
        side = "inbound" if c.direction == "import" else "outbound"
        steps: list[int] = [ri[f"entry_gate.{side}"]]
        if s.yard.capacity_trucks is not None:
            steps.append(YARD_IN)
        for bit, name in enumerate(("document_check", "weighbridge", "xray", "inspection", "phyto")):
            if visits >> bit & 1:
                steps.append(ri[name])
        if c.direction == "export" and c.commodity in g.quota_groups:
            steps.append(QUOTA_BASE - g.quota_groups.index(c.commodity))
        if s.yard.capacity_trucks is not None:
            steps.append(YARD_OUT)
        steps.append(ri[f"exit_gate.{side}"])
        if c.direction == "export" and "china_check" in ri:
            steps.append(ri["china_check"])
        steps.append(EXIT)
        route = tuple(steps)
        self._routes[key] = route
        return route

    def _draws(self, day: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Arrival times, class indices and attribute uniforms of every truck of a day, one stream per class."""
        times, cls, us = [], [], []
        for ci, name in enumerate(self.gate.classes):
            rng = self._stream("arrivals", name, day)
            counts = rng.poisson(self._rates[ci])
            n = int(counts.sum())
            hours = np.repeat(np.arange(24), counts)
            times.append(np.sort(day * 1440.0 + (hours + rng.random(n)) * 60.0))
            cls.append(np.full(n, ci))
            us.append(self._stream("attributes", name, day).random((n, len(_COLUMNS))))
        t, c, u = np.concatenate(times), np.concatenate(cls), np.concatenate(us)
        if self.gate.scenario.booking is not None:
            t, c, u = self._book(day, t, c, u)
        return t, c, u

    def _book(self, day: int, t: np.ndarray, c: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, ...]:
        """Move booked trucks into the slot nearest their own arrival time; drop the no-shows.

        Own streams (one per class and day: booked?, no-show?, where in the slot), so a scenario with booking
        keeps the other uniforms of every truck, and one without draws nothing more.
        """
        s = self.gate.scenario
        b = s.booking
        assert b is not None
        ub = np.concatenate(
            [
                self._stream("booking", name, day).random((int((c == ci).sum()), 3))
                for ci, name in enumerate(self.gate.classes)
            ]
        )
        # Rows of `ub` follow the class-by-class order of t, c and u (built in the same loop).
        open_min = s.hours.open_hour * 60
        n_slots = (s.hours.close_hour - s.hours.open_hour) * 60 // b.slot_minutes
        free = [b.capacity_per_slot] * n_slots
        own = t - day * 1440.0
        booked = np.flatnonzero(ub[:, 0] < b.share)
        slot = np.full(t.size, -1)
        for i in booked[np.argsort(own[booked], kind="stable")].tolist():
            k0 = min(max(0, int((own[i] - open_min) // b.slot_minutes)), n_slots)
            k = next((k for k in range(k0, n_slots) if free[k]), -1)
            if k < 0:
                k = next((k for k in range(min(k0, n_slots) - 1, -1, -1) if free[k]), -1)
            if k >= 0:
                free[k] -= 1
                slot[i] = k
        has = slot >= 0
        t = np.where(has, day * 1440.0 + open_min + (slot + ub[:, 2]) * b.slot_minutes, t)
        keep = ~(has & (ub[:, 1] < b.no_show))
        return t[keep], c[keep], u[keep]

    def __call__(self, day: int) -> DayBatch:
        """All trucks of one day, in arrival order, with their routes and service times."""
        t_all, cls_all, u_all = self._draws(day)
        order = np.argsort(t_all, kind="stable")
        times, cls, u = t_all[order], cls_all[order], u_all[order]
        n = times.size
        g = self.gate
        s = g.scenario
        st = s.stages
        p = self._per_class

        # Channel by the class's split; lead time exponential with the class's mean.
        uc = u[:, _COL["channel"]]
        channel = (uc >= p["green"][cls]).astype(np.int64) + (uc >= p["green_yellow"][cls])
        lead = -p["lead_min"][cls] * np.log1p(-u[:, _COL["lead"]])

        def visit(stage: Any, col: str) -> np.ndarray:
            return np.asarray(u[:, _COL[col]] < np.asarray(stage.fractions())[channel])

        dc = st.document_check
        v_doc = np.ones(n, dtype=bool) if not dc.auto_green else channel != 0
        v_weigh = visit(st.weighbridge, "visit_weighbridge") & (p["loaded"][cls] | (not st.weighbridge.loaded_only))
        v_xray = visit(st.xray, "visit_xray")
        v_insp = visit(st.inspection, "visit_inspection")
        v_phyto = visit(st.phyto, "visit_phyto") & p["phyto"][cls] if st.phyto is not None else np.zeros(n, bool)
        visits = v_doc * 1 + v_weigh * 2 + v_xray * 4 + v_insp * 8 + v_phyto * 16

        svc = np.zeros((n, len(g.network.resources)))
        ri = g.resource_index
        eg = st.entry_gate
        entry_mean = eg.ocr_service_min if eg.mode == "ocr" else eg.manual_service_min
        entry = _service(u[:, _COL["svc_entry"]], entry_mean, eg.distribution, eg.cv)
        svc[:, ri["entry_gate.inbound"]] = entry
        svc[:, ri["entry_gate.outbound"]] = entry
        doc_mean = np.asarray(dc.service_min_by_channel.as_tuple())[channel]
        if dc.precheck_lead_min is not None:
            doc_mean = np.where(lead >= dc.precheck_lead_min, doc_mean * dc.precheck_factor, doc_mean)
        svc[:, ri["document_check"]] = _service(u[:, _COL["svc_document_check"]], doc_mean, dc.distribution, dc.cv)
        for name_ in ("weighbridge", "xray", "inspection", "phyto", "china_check"):
            stage = getattr(st, name_)
            if stage is not None:
                svc[:, ri[name_]] = _service(
                    u[:, _COL[f"svc_{name_}"]], stage.service_min, stage.distribution, stage.cv
                )
        ex = st.exit_gate
        exit_ = _service(u[:, _COL["svc_exit"]], ex.service_min, ex.distribution, ex.cv)
        svc[:, ri["exit_gate.inbound"]] = exit_
        svc[:, ri["exit_gate.outbound"]] = exit_

        # Few distinct routes exist: build each once, then fan them out in C.
        codes, inverse = np.unique(cls * 32 + visits, return_inverse=True)
        table = [self._route(int(c) // 32, int(c) % 32) for c in codes]
        routes = [table[i] for i in inverse.tolist()]
        return DayBatch(arrival_min=times.tolist(), cls=cls.tolist(), route=routes, service_min=svc.tolist())


class BreakdownDraws:
    """Times to failure and repair of each breakdown unit, each unit on its own stream."""

    def __init__(self, gate: CompiledGate, seed: int, replication: int) -> None:
        """One generator per unit, created on first use."""
        self._means: list[tuple[float, float]] = []
        self._names: list[str] = []
        for r in gate.network.resources:
            if r.mtbf_min is not None and r.mttr_min is not None:
                for u in range(r.units):
                    self._means.append((r.mtbf_min, r.mttr_min))
                    self._names.append(f"breakdown:{r.name}:{u}")
        self._rngs = [
            np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(replication, stream_key(n))))
            for n in self._names
        ]

    def __call__(self, unit: int, up: bool) -> float:
        """Minutes to the next failure (up) or repair (down) of a unit."""
        mtbf, mttr = self._means[unit]
        return float(self._rngs[unit].exponential(mtbf if up else mttr))
