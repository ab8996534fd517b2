"""The discrete-event engine: one heapq event loop over multi-server FIFO resources, a blocking yard and daily quotas.

The loop is a single function on purpose: locals, tuples and plain lists are what make CPython fast here, and a
generator per truck (the SimPy way) would cost several times more per event. Trucks carry pre-drawn service times
and a pre-computed route, so the engine itself draws no random numbers except for breakdowns, which have their
own streams; that is what makes common random numbers and the truck-for-truck SimPy comparison possible.

Memory is bounded by the trucks in the system: truck state lives in slots that are reused when a truck leaves,
statistics are accumulated into per-hour arrays and log-scale histograms, and the per-visit event log is kept only
when asked for.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from heapq import heappop, heappush

import numpy as np

# Route codes below zero are not resources but steps handled by the engine itself.
YARD_IN = -1
YARD_OUT = -2
EXIT = -3
QUOTA_BASE = -10  # quota group g is QUOTA_BASE - g

# Control events in the heap use negative codes; truck completions use the truck's slot (>= 0).
_TICK = -1
_BREAKDOWN_BASE = -100  # breakdown unit u is _BREAKDOWN_BASE - u

# Log-scale histogram of durations in minutes: bin = int(log1p(x) * HIST_PER_UNIT), about 0.5 % relative width.
HIST_PER_UNIT = 200.0
HIST_BINS = 3000
_INF = math.inf


def hist_bin(minutes: float) -> int:
    """The histogram bin of a duration in minutes."""
    b = int(math.log1p(minutes) * HIST_PER_UNIT)
    return b if b < HIST_BINS else HIST_BINS - 1


@dataclass(frozen=True, slots=True)
class ResourceSpec:
    """A multi-server FIFO resource: fixed servers or a 24-value staffing schedule, optional breakdowns."""

    name: str
    servers: int
    servers_by_hour: tuple[int, ...] | None = None
    mtbf_min: float | None = None
    mttr_min: float | None = None

    def servers_at(self, hour_of_day: int) -> int:
        """Scheduled servers during an hour of the day."""
        return self.servers if self.servers_by_hour is None else self.servers_by_hour[hour_of_day]

    @property
    def units(self) -> int:
        """Physical units (scanners, booths): `servers`, or the schedule's peak if that is higher.

        A schedule staffs up to its hourly value; units beyond it are spares that take over from a failed one, so
        capacity is min(scheduled, units working).
        """
        return max(self.servers, max(self.servers_by_hour or (0,)))


@dataclass(frozen=True, slots=True)
class NetworkSpec:
    """The queueing network the engine runs: resources, an optional finite yard, daily quotas per group."""

    resources: tuple[ResourceSpec, ...]
    classes: tuple[str, ...]
    yard_capacity: int | None = None
    quota_per_day: tuple[int, ...] = ()
    quota_reset_hour: int = 0
    close_hour: int | None = None
    warmup_min: float = 0.0


@dataclass(slots=True)
class DayBatch:
    """One day of arrivals, sorted by time: class, route (resource indices and step codes) and service times."""

    arrival_min: list[float]
    cls: list[int]
    route: list[tuple[int, ...]]
    service_min: list[list[float]]  # one row per truck, indexed by resource


@dataclass(slots=True)
class EventLog:
    """Per-visit records (truck id, resource, queued, start, end), kept only when asked for."""

    truck: list[int] = field(default_factory=list)
    resource: list[int] = field(default_factory=list)
    queued_min: list[float] = field(default_factory=list)
    start_min: list[float] = field(default_factory=list)
    end_min: list[float] = field(default_factory=list)
    truck_cls: list[int] = field(default_factory=list)  # indexed by truck id
    truck_arrival_min: list[float] = field(default_factory=list)  # indexed by truck id
    exit_truck: list[int] = field(default_factory=list)
    exit_min: list[float] = field(default_factory=list)


@dataclass(slots=True)
class RunResult:
    """What one replication measured; every array is bounded by days, hours, resources and classes."""

    days: int
    resources: tuple[str, ...]
    classes: tuple[str, ...]
    arrivals_by_class: np.ndarray
    exits_by_class: np.ndarray
    tis_sum_by_class: np.ndarray
    tis_hist_by_class: np.ndarray  # [class, HIST_BINS] time in system of trucks that left
    wait_hist_by_hour: np.ndarray  # [24, HIST_BINS] total wait by hour of arrival
    wait_sum: np.ndarray  # [resource] minutes queued before service (after warm-up)
    wait_n: np.ndarray  # [resource] services started (after warm-up)
    wait_hist: np.ndarray  # [resource, HIST_BINS] wait before service of those trucks (after warm-up)
    queue_area: np.ndarray  # [hour, resource] truck-minutes queued
    busy_area: np.ndarray  # [hour, resource] server-minutes busy
    cap_area: np.ndarray  # [hour, resource] server-minutes available
    yard_area: np.ndarray  # [hour] truck-minutes in the yard
    yard_max: np.ndarray  # [hour]
    yard_block_sum: float  # minutes trucks spent blocked at entry because the yard was full
    yard_block_n: int
    quota_hold_sum: float  # minutes trucks spent held by the daily quota
    quota_hold_n: int
    arrivals_by_hour: np.ndarray  # [hour]
    exits_by_hour: np.ndarray  # [hour]
    left_at_close: np.ndarray  # [day] trucks in the system at closing time
    in_system_end: int
    peak_slots: int  # truck slots ever allocated = the most trucks in the system at once
    log: EventLog | None = None


def _with_zero_waits(whist: list[list[int]], wn: list[int]) -> np.ndarray:
    """The per-resource wait histograms with the trucks that did not queue put in bin 0."""
    h = np.asarray(whist, dtype=np.int32).reshape(len(wn), HIST_BINS)
    h[:, 0] += np.asarray(wn, dtype=np.int32) - h.sum(axis=1).astype(np.int32)
    return h


def simulate(  # noqa: C901 - the event loop is kept in one frame for speed (locals, no calls)
    net: NetworkSpec,
    day_batch: Callable[[int], DayBatch],
    days: int,
    *,
    breakdown_draw: Callable[[int, bool], float] | None = None,
    log: bool = False,
) -> RunResult:
    """Run the network for whole days and return its statistics.

    `day_batch(d)` gives the arrivals of day d (minutes from the start of day 0). `breakdown_draw(unit, up)` gives
    the time to the next failure (up=True) or repair (up=False) of a breakdown unit, one unit per server of each
    resource that has an MTBF.
    """
    res = net.resources
    n_res = len(res)
    n_cls = len(net.classes)
    n_hours = days * 24
    horizon = days * 1440.0
    warm = net.warmup_min

    # Resource state: capacity now, busy servers, FIFO queues and time-weighted areas since the last hourly flush.
    cap = [spec.servers_at(0) for spec in res]
    sched = [spec.servers_by_hour for spec in res]
    broken = [0] * n_res
    n_units = [spec.units for spec in res]
    busy = [0] * n_res
    queues: list[deque[int]] = [deque() for _ in res]
    qarea = [0.0] * n_res
    qt = [0.0] * n_res
    barea = [0.0] * n_res
    bt = [0.0] * n_res
    carea = [0.0] * n_res
    ct = [0.0] * n_res
    wsum = [0.0] * n_res
    wn = [0] * n_res
    # Waits of trucks that queued, per resource (log-scale histogram); the zero waits are added at the end.
    whist = [[0] * HIST_BINS for _ in range(n_res)]
    # Per-hour statistics: 8 bytes per resource-hour, written a whole row at a time (item assignment is slow).
    h_q = np.zeros((n_hours, n_res))
    h_b = np.zeros((n_hours, n_res))
    h_c = np.zeros((n_hours, n_res))

    # Truck slots, reused when a truck leaves.
    t_id: list[int] = []
    t_arr: list[float] = []
    t_route: list[tuple[int, ...]] = []
    t_svc: list[list[float]] = []
    t_pos: list[int] = []
    t_tq: list[float] = []
    t_wait: list[float] = []
    t_cls: list[int] = []
    free: list[int] = []

    # Yard: [occupancy, last change, area since flush, max this hour]; trucks blocked at entry wait in order.
    yard_cap = net.yard_capacity if net.yard_capacity is not None else 1 << 60
    yard = [0, 0.0, 0.0, 0]
    yard_wait: deque[tuple[int, int]] = deque()  # (slot, resource it blocks)
    h_yard = np.zeros(n_hours)
    h_yard_max = np.zeros(n_hours)
    stats = [0.0, 0, 0.0, 0]  # yard block sum/n, quota hold sum/n

    quota = list(net.quota_per_day)
    quota_used = [0] * len(quota)
    quota_held: list[deque[int]] = [deque() for _ in quota]

    arrivals_by_class = [0] * n_cls
    exits_by_class = [0] * n_cls
    tis_sum = [0.0] * n_cls
    tis_hist = [[0] * HIST_BINS for _ in range(n_cls)]
    wait_hist = [[0] * HIST_BINS for _ in range(24)]
    h_arr = np.zeros(n_hours)
    h_exit = [0] * n_hours
    left_at_close = np.zeros(days)
    n_sys = 0
    lg = EventLog() if log else None

    heap: list[tuple[float, int]] = [(60.0, _TICK)]
    units: list[int] = []  # breakdown unit -> resource
    unit_up: list[bool] = []
    if breakdown_draw is not None:
        for ri, spec in enumerate(res):
            if spec.mtbf_min is not None and spec.mttr_min is not None:
                for _ in range(spec.units):
                    u = len(units)
                    units.append(ri)
                    unit_up.append(True)
                    heappush(heap, (breakdown_draw(u, True), _BREAKDOWN_BASE - u))

    log1p = math.log1p
    hist_max = HIST_BINS - 1
    hpu = HIST_PER_UNIT

    def start_waiting(r: int, t: float) -> None:
        """Start queued trucks at r while servers are free (after capacity rose)."""
        q = queues[r]
        while q and busy[r] < cap[r]:
            qarea[r] += len(q) * (t - qt[r])
            qt[r] = t
            j = q.popleft()
            barea[r] += busy[r] * (t - bt[r])
            bt[r] = t
            busy[r] += 1
            w = t - t_tq[j]
            t_wait[j] += w
            if t_arr[j] >= warm:
                wsum[r] += w
                wn[r] += 1
                b = int(log1p(w) * hpu)
                whist[r][b if b < hist_max else hist_max] += 1
            s = t_svc[j][r]
            if lg is not None:
                lg.truck.append(t_id[j])
                lg.resource.append(r)
                lg.queued_min.append(t_tq[j])
                lg.start_min.append(t)
                lg.end_min.append(t + s)
            heappush(heap, (t + s, j))

    def join(k: int, r: int, t: float) -> None:
        """Truck k joins resource r at time t."""
        t_tq[k] = t
        if busy[r] < cap[r] and not queues[r]:
            barea[r] += busy[r] * (t - bt[r])
            bt[r] = t
            busy[r] += 1
            if t_arr[k] >= warm:
                wn[r] += 1
            s = t_svc[k][r]
            if lg is not None:
                lg.truck.append(t_id[k])
                lg.resource.append(r)
                lg.queued_min.append(t)
                lg.start_min.append(t)
                lg.end_min.append(t + s)
            heappush(heap, (t + s, k))
        else:
            q = queues[r]
            qarea[r] += len(q) * (t - qt[r])
            qt[r] = t
            q.append(k)

    def release(r: int, t: float) -> None:
        """A server of r is done with its truck: hand it to the next in line or let it go idle."""
        q = queues[r]
        if q and busy[r] <= cap[r]:
            qarea[r] += len(q) * (t - qt[r])
            qt[r] = t
            j = q.popleft()
            w = t - t_tq[j]
            t_wait[j] += w
            if t_arr[j] >= warm:
                wsum[r] += w
                wn[r] += 1
                b = int(log1p(w) * hpu)
                whist[r][b if b < hist_max else hist_max] += 1
            s = t_svc[j][r]
            if lg is not None:
                lg.truck.append(t_id[j])
                lg.resource.append(r)
                lg.queued_min.append(t_tq[j])
                lg.start_min.append(t)
                lg.end_min.append(t + s)
            heappush(heap, (t + s, j))
        else:
            barea[r] += busy[r] * (t - bt[r])
            bt[r] = t
            busy[r] -= 1

    def leave(k: int, t: float) -> None:
        """Truck k leaves the system: record its time in system and free its slot."""
        nonlocal n_sys
        n_sys -= 1
        c = t_cls[k]
        a = t_arr[k]
        h_exit[int(t / 60.0)] += 1
        if lg is not None:
            lg.exit_truck.append(t_id[k])
            lg.exit_min.append(t)
        if a >= warm:
            tis = t - a
            exits_by_class[c] += 1
            tis_sum[c] += tis
            b = int(log1p(tis) * hpu)
            tis_hist[c][b if b < hist_max else hist_max] += 1
            b = int(log1p(t_wait[k]) * hpu)
            wait_hist[int(a / 60.0) % 24][b if b < hist_max else hist_max] += 1
        free.append(k)

    def advance(k: int, p: int, t: float) -> None:
        """Move truck k to route step p and on through any engine steps until it joins a resource or leaves."""
        rt = t_route[k]
        while True:
            nxt = rt[p]
            if nxt >= 0:
                t_pos[k] = p
                join(k, nxt, t)
                return
            if nxt == EXIT:
                leave(k, t)
                return
            if nxt == YARD_OUT:
                yard[2] += yard[0] * (t - yard[1])
                yard[1] = t
                yard[0] -= 1
                if yard_wait:
                    j, rj = yard_wait.popleft()
                    yard[0] += 1
                    if t_arr[j] >= warm:
                        stats[0] += t - t_tq[j]
                        stats[1] += 1
                    t_wait[j] += t - t_tq[j]
                    release(rj, t)
                    advance(j, t_pos[j] + 1, t)
                p += 1
                continue
            if nxt == YARD_IN:
                # Only reached by a truck's first step; blocking after service is handled at completion.
                if yard[0] >= yard_cap:
                    raise ValueError("a route may not start with YARD_IN when the yard can be full")
                yard[2] += yard[0] * (t - yard[1])
                yard[1] = t
                yard[0] += 1
                if yard[0] > yard[3]:
                    yard[3] = yard[0]
                p += 1
                continue
            g = QUOTA_BASE - nxt
            if quota_used[g] < quota[g]:
                quota_used[g] += 1
                p += 1
                continue
            t_pos[k] = p
            t_tq[k] = t
            quota_held[g].append(k)
            return

    def hourly_tick(t: float) -> None:
        """Flush the hour's areas, apply the next hour's staffing, count trucks at closing, reset quotas."""
        hi = int(t / 60.0 + 0.5) - 1
        h_q[hi] = [qarea[r] + len(queues[r]) * (t - qt[r]) for r in range(n_res)]
        h_b[hi] = [barea[r] + busy[r] * (t - bt[r]) for r in range(n_res)]
        h_c[hi] = [carea[r] + cap[r] * (t - ct[r]) for r in range(n_res)]
        for r in range(n_res):
            qarea[r] = barea[r] = carea[r] = 0.0
            qt[r] = bt[r] = ct[r] = t
        h_yard[hi] = yard[2] + yard[0] * (t - yard[1])
        h_yard_max[hi] = yard[3]
        yard[2] = 0.0
        yard[1] = t
        yard[3] = yard[0]
        if t >= horizon:
            return
        heappush(heap, (t + 60.0, _TICK))
        hod = (hi + 1) % 24
        for r in range(n_res):
            s = sched[r]
            if s is not None:
                cap[r] = max(0, min(s[hod], n_units[r] - broken[r]))
                start_waiting(r, t)
        if net.close_hour is not None and hod == net.close_hour:
            left_at_close[int(t // 1440.0)] = n_sys
        if quota and hod == net.quota_reset_hour:
            for g in range(len(quota)):
                quota_used[g] = 0
                held = quota_held[g]
                while held and quota_used[g] < quota[g]:
                    k = held.popleft()
                    quota_used[g] += 1
                    if t_arr[k] >= warm:
                        stats[2] += t - t_tq[k]
                        stats[3] += 1
                    t_wait[k] += t - t_tq[k]
                    advance(k, t_pos[k] + 1, t)

    # Arrivals are merged with the heap rather than pushed into it: one heap operation fewer per truck.
    day = 0
    batch = day_batch(0)
    arr = batch.arrival_min
    arr.append(_INF)
    b_cls = batch.cls
    b_route = batch.route
    b_svc = batch.service_min
    ai = 0
    gid = 0
    for a in arr[:-1]:
        h_arr[int(a / 60.0)] += 1

    while True:
        ta = arr[ai]
        if ta == _INF and day + 1 < days:
            day += 1
            batch = day_batch(day)
            arr = batch.arrival_min
            arr.append(_INF)
            b_cls, b_route, b_svc = batch.cls, batch.route, batch.service_min
            ai = 0
            for a in arr[:-1]:
                h_arr[int(a / 60.0)] += 1
            continue
        if heap[0][0] <= ta:
            t, k = heappop(heap)
            if k == _TICK:
                hourly_tick(t)
                if t >= horizon:
                    break
                continue
            if t >= horizon:
                break
            if k >= 0:
                # A service completion: the hot path, kept inline.
                rt = t_route[k]
                r = rt[t_pos[k]]
                p = t_pos[k] + 1
                nxt = rt[p]
                if nxt == YARD_IN:
                    if yard[0] >= yard_cap:
                        # Blocking after service: the truck keeps its entry lane until a yard slot frees.
                        t_pos[k] = p
                        t_tq[k] = t
                        yard_wait.append((k, r))
                        continue
                    yard[2] += yard[0] * (t - yard[1])
                    yard[1] = t
                    yard[0] += 1
                    if yard[0] > yard[3]:
                        yard[3] = yard[0]
                    p += 1
                    nxt = rt[p]
                q = queues[r]
                if q and busy[r] <= cap[r]:
                    qarea[r] += len(q) * (t - qt[r])
                    qt[r] = t
                    j = q.popleft()
                    w = t - t_tq[j]
                    t_wait[j] += w
                    if t_arr[j] >= warm:
                        wsum[r] += w
                        wn[r] += 1
                        b = int(log1p(w) * hpu)
                        whist[r][b if b < hist_max else hist_max] += 1
                    s = t_svc[j][r]
                    if lg is not None:
                        lg.truck.append(t_id[j])
                        lg.resource.append(r)
                        lg.queued_min.append(t_tq[j])
                        lg.start_min.append(t)
                        lg.end_min.append(t + s)
                    heappush(heap, (t + s, j))
                else:
                    barea[r] += busy[r] * (t - bt[r])
                    bt[r] = t
                    busy[r] -= 1
                if nxt >= 0:
                    t_pos[k] = p
                    t_tq[k] = t
                    if busy[nxt] < cap[nxt] and not queues[nxt]:
                        barea[nxt] += busy[nxt] * (t - bt[nxt])
                        bt[nxt] = t
                        busy[nxt] += 1
                        if t_arr[k] >= warm:
                            wn[nxt] += 1
                        s = t_svc[k][nxt]
                        if lg is not None:
                            lg.truck.append(t_id[k])
                            lg.resource.append(nxt)
                            lg.queued_min.append(t)
                            lg.start_min.append(t)
                            lg.end_min.append(t + s)
                        heappush(heap, (t + s, k))
                    else:
                        q = queues[nxt]
                        qarea[nxt] += len(q) * (t - qt[nxt])
                        qt[nxt] = t
                        q.append(k)
                elif nxt == EXIT:
                    leave(k, t)
                else:
                    advance(k, p, t)
            else:
                u = _BREAKDOWN_BASE - k
                r = units[u]
                ct_r = ct[r]
                carea[r] += cap[r] * (t - ct_r)
                ct[r] = t
                if unit_up[u]:
                    unit_up[u] = False
                    broken[r] += 1
                else:
                    unit_up[u] = True
                    broken[r] -= 1
                hod = int(t / 60.0) % 24
                s_r = sched[r]
                base = res[r].servers if s_r is None else s_r[hod]
                cap[r] = max(0, min(base, n_units[r] - broken[r]))
                start_waiting(r, t)
                if breakdown_draw is not None:
                    heappush(heap, (t + breakdown_draw(u, unit_up[u]), k))
        else:
            # An arrival.
            if free:
                k = free.pop()
                t_id[k] = gid
                t_arr[k] = ta
                t_route[k] = b_route[ai]
                t_svc[k] = b_svc[ai]
                t_wait[k] = 0.0
                t_cls[k] = b_cls[ai]
            else:
                k = len(t_id)
                t_id.append(gid)
                t_arr.append(ta)
                t_route.append(b_route[ai])
                t_svc.append(b_svc[ai])
                t_pos.append(0)
                t_tq.append(0.0)
                t_wait.append(0.0)
                t_cls.append(b_cls[ai])
            if ta >= warm:
                arrivals_by_class[b_cls[ai]] += 1
            if lg is not None:
                lg.truck_cls.append(b_cls[ai])
                lg.truck_arrival_min.append(ta)
            gid += 1
            n_sys += 1
            r = b_route[ai][0]
            ai += 1
            if r >= 0:
                t_pos[k] = 0
                join(k, r, ta)
            else:
                advance(k, 0, ta)
        continue

    return RunResult(
        days=days,
        resources=tuple(r.name for r in res),
        classes=net.classes,
        arrivals_by_class=np.asarray(arrivals_by_class, dtype=np.int64),
        exits_by_class=np.asarray(exits_by_class, dtype=np.int64),
        tis_sum_by_class=np.asarray(tis_sum),
        tis_hist_by_class=np.asarray(tis_hist, dtype=np.int32),
        wait_hist_by_hour=np.asarray(wait_hist, dtype=np.int32),
        wait_sum=np.asarray(wsum),
        wait_n=np.asarray(wn, dtype=np.int64),
        wait_hist=_with_zero_waits(whist, wn),
        queue_area=h_q,
        busy_area=h_b,
        cap_area=h_c,
        yard_area=h_yard,
        yard_max=h_yard_max,
        yard_block_sum=float(stats[0]),
        yard_block_n=int(stats[1]),
        quota_hold_sum=float(stats[2]),
        quota_hold_n=int(stats[3]),
        arrivals_by_hour=h_arr,
        exits_by_hour=np.asarray(h_exit, dtype=np.float64),
        left_at_close=left_at_close,
        in_system_end=n_sys,
        peak_slots=len(t_id),
        log=lg,
    )
