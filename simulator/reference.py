"""Reference models: the 5-stage tandem network, its Erlang-C answer, and a SimPy model of any engine network.

The SimPy model consumes the same pre-drawn arrivals and service times as the engine, so the two must agree truck
for truck; it is the independent check that the hand-written event loop implements FIFO multi-server queues,
blocking after service and the yard the way a textbook process-based simulator does.
"""

from __future__ import annotations

import math
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from simulator.engine import EXIT, YARD_IN, YARD_OUT, DayBatch, NetworkSpec, ResourceSpec

# (servers, mean exponential service in minutes) of the benchmark network; arrivals 1 truck/min.
TANDEM_STAGES: tuple[tuple[int, float], ...] = ((3, 2.4), (1, 0.8), (2, 1.7), (4, 3.4), (2, 1.5))


def erlang_c_wait_min(arrivals_per_min: float, servers: int, service_min: float) -> float:
    """Mean wait in queue of an M/M/c queue (Erlang C), in minutes."""
    a = arrivals_per_min * service_min  # offered load in erlangs
    rho = a / servers
    if rho >= 1.0:
        return math.inf
    term = 1.0
    total = 1.0
    for k in range(1, servers):
        term *= a / k
        total += term
    last = term * a / servers / (1.0 - rho)
    p_wait = last / (total + last)
    return p_wait * service_min / (servers * (1.0 - rho))


def tandem_network(stages: Sequence[tuple[int, float]] = TANDEM_STAGES, warmup_min: float = 0.0) -> NetworkSpec:
    """An always-open tandem of multi-server stations, as an engine network."""
    resources = tuple(ResourceSpec(name=f"stage{i + 1}", servers=c) for i, (c, _) in enumerate(stages))
    return NetworkSpec(resources=resources, classes=("truck",), warmup_min=warmup_min)


@dataclass(slots=True)
class TandemSource:
    """Poisson arrivals and exponential services for the tandem network, one numpy stream per day."""

    arrivals_per_min: float
    stages: tuple[tuple[int, float], ...]
    seed: int
    replication: int = 0

    def __call__(self, day: int) -> DayBatch:
        """The arrivals of one day."""
        rng = np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(self.replication, day)))
        n = int(rng.poisson(self.arrivals_per_min * 1440.0))
        times = np.sort(rng.random(n)) * 1440.0 + day * 1440.0
        means = np.array([m for _, m in self.stages])
        svc = rng.exponential(1.0, size=(n, len(self.stages))) * means
        route = (*range(len(self.stages)), EXIT)
        return DayBatch(arrival_min=times.tolist(), cls=[0] * n, route=[route] * n, service_min=svc.tolist())


def simpy_network(net: NetworkSpec, batches: Sequence[DayBatch]) -> dict[tuple[int, int], tuple[float, float]]:
    """Run the same trucks through SimPy; returns (truck id, resource) -> (queued, start) in minutes.

    Supports fixed servers, routes, EXIT and a finite yard with blocking after service; no schedules, breakdowns
    or quotas (the engine's own tests cover those).
    """
    import simpy

    env = simpy.Environment()
    resources = [simpy.Resource(env, capacity=r.servers) for r in net.resources]
    yard = simpy.Resource(env, capacity=net.yard_capacity or 1 << 30)
    out: dict[tuple[int, int], tuple[float, float]] = {}

    def truck(tid: int, arrival: float, route: tuple[int, ...], svc: list[float]) -> Generator[Any, Any, None]:
        yield env.timeout(arrival - env.now)
        held = None  # (resource index, request) still held after service
        yard_req = None
        for step in route:
            if step >= 0:
                if held is not None:
                    resources[held[0]].release(held[1])
                req = resources[step].request()
                queued = env.now
                yield req
                out[(tid, step)] = (queued, env.now)
                yield env.timeout(svc[step])
                held = (step, req)
            elif step == YARD_IN:
                yard_req = yard.request()
                yield yard_req  # still holding the entry server: blocking after service
            elif step == YARD_OUT:
                if held is not None:
                    resources[held[0]].release(held[1])
                    held = None
                if yard_req is not None:
                    yard.release(yard_req)
            elif step == EXIT:
                if held is not None:
                    resources[held[0]].release(held[1])
                return

    tid = 0
    for b in batches:
        for a, route, svc in zip(b.arrival_min, b.route, b.service_min, strict=False):
            env.process(truck(tid, a, route, svc))
            tid += 1
    env.run()
    return out


def simpy_tandem_bare(arrivals_per_min: float, stages: Sequence[tuple[int, float]], minutes: float, seed: int) -> int:
    """A bare SimPy 4.1 model of the tandem network drawing its own numbers; returns trucks completed."""
    import random

    import simpy

    rnd = random.Random(seed)
    env = simpy.Environment()
    stations = [(simpy.Resource(env, capacity=c), m) for c, m in stages]
    done = [0]

    def truck() -> Generator[Any, Any, None]:
        for res, mean in stations:
            with res.request() as req:
                yield req
                yield env.timeout(rnd.expovariate(1.0 / mean))
        done[0] += 1

    def source() -> Generator[Any, Any, None]:
        while True:
            yield env.timeout(rnd.expovariate(arrivals_per_min))
            env.process(truck())

    env.process(source())
    env.run(until=minutes)
    return done[0]
