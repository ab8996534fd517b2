"""Twin mode: the scenario's trucks, compressed in time, filed and cleared through the real platform's HTTP API.

The model says how many trucks of which class arrive when; twin mode makes each loaded truck a real declaration
(goods typical of its class), files it as a trader would, lets an officer decide the ones the platform's risk
engine sends to review, pays the duties (a trader's claim the treasury then confirms), and records what the
platform answered and how fast. What it shows that the model alone cannot: the channel split the platform's rule
set really produces for this traffic (the model assumes one), and how the platform's API holds up under the
scenario's arrival pattern.

Like any client it reaches the platform over HTTP only (DESIGN.md): it imports nothing from `services/` or `api/`.
Not simulated here: the gate cameras (posting images needs rendered container doors and the OCR model) and the
physical stages, which are the model's job.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import statistics
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx
import numpy as np
from stdnum import iso6346

from simulator.scenario import Scenario

API = "/api/v1"
GATE_TZ = dt.timezone(dt.timedelta(hours=7))

# Goods typical of each (direction, commodity) at this crossing: HS code (in the seeded tariff), description,
# USD per kg (an ordinary unit value, so the unit-value rule sees ordinary traffic).
GOODS: dict[tuple[str, str], list[tuple[str, str, str]]] = {
    ("import", "fruit"): [("08109020", "Fresh lychees, in cartons", "0.80"), ("08081000", "Fresh apples", "0.70"),
                          ("08052100", "Fresh mandarins", "0.60")],
    ("export", "fruit"): [("08109092", "Fresh dragon fruit", "0.90"), ("08106000", "Fresh durians", "2.40"),
                          ("08109050", "Fresh jackfruit", "0.50")],
    ("import", "general"): [("31021000", "Urea fertiliser, bagged", "0.35"), ("31053000", "DAP fertiliser", "0.55"),
                            ("84314990", "Excavator parts", "6.00")],
    ("export", "general"): [("07141011", "Dried cassava chips", "0.25"), ("11081400", "Cassava starch", "0.45")],
    ("import", "minerals"): [("27040010", "Metallurgical coke", "0.30"), ("28047000", "Yellow phosphorus", "3.20")],
    ("export", "minerals"): [("26011110", "Haematite iron ore, non-agglomerated", "0.10")],
}  # fmt: skip
OWNER_CODES = ("CSQU", "MSKU", "TGHU", "OOLU", "CMAU", "TCNU")
VN_PARTY = {"name": "Cong ty TNHH Thuong mai Lao Cai", "address": "So 1 Duong Hoang Lien, Lao Cai, Viet Nam",
            "country": "VN", "tax_id": "0100233488"}  # fmt: skip
CN_PARTY = {"name": "Yunnan Hekou Trading Co., Ltd.", "address": "No. 8 Binlang Road, Hekou, Yunnan, China",
            "country": "CN", "tax_id": "91110000600037341L"}  # fmt: skip


class TwinError(RuntimeError):
    """The platform cannot be driven (unreachable, a key refused): a one-line reason for the CLI."""


@dataclass(frozen=True)
class TwinTruck:
    """One truck of the plan: its class and arrival (seconds of scenario time after the first arrival)."""

    n: int
    truck_class: str
    direction: str
    commodity: str
    arrival_s: float
    body: dict[str, Any]


def plan(scenario: Scenario, *, trucks: int, seed: int, day: dt.date | None = None) -> list[TwinTruck]:
    """The first `trucks` loaded trucks of the scenario's days from midnight: non-homogeneous Poisson arrivals per
    class and hour (the model's demand and hourly profiles, as the model draws them), each with a declaration."""
    rng = np.random.default_rng(seed)
    day = day or dt.datetime.now(GATE_TZ).date()
    loaded = {name: c for name, c in scenario.classes.items() if c.loaded}
    if not loaded:
        raise TwinError(f"scenario {scenario.name!r} has no loaded truck class to declare")
    arrivals: list[tuple[float, str]] = []
    for d in range(366):
        for hour in range(24):
            for name, c in loaded.items():
                profile = scenario.profiles[c.profile]
                rate = c.trucks_per_day * scenario.demand_multiplier * profile[hour] / sum(profile)
                count = int(rng.poisson(rate))
                arrivals.extend(((d * 24 + hour) * 3600 + float(s), name) for s in rng.uniform(0, 3600, count))
        if len(arrivals) >= trucks:
            break
    if len(arrivals) < trucks:
        raise TwinError(f"scenario {scenario.name!r} brings fewer than {trucks} loaded trucks in a year")
    arrivals.sort()
    first = arrivals[0][0]
    out = []
    for n, (at, name) in enumerate(arrivals[:trucks]):
        c = loaded[name]
        body = declaration_body(rng, direction=c.direction, commodity=c.commodity, day=day)
        out.append(TwinTruck(n, name, c.direction, c.commodity, at - first, body))
    return out


def declaration_body(rng: np.random.Generator, *, direction: str, commodity: str, day: dt.date) -> dict[str, Any]:
    """A valid declaration of one truck: goods of its class, a container with a good check digit, one trailer."""
    hs, description, usd_per_kg = GOODS[(direction, commodity)][int(rng.integers(len(GOODS[(direction, commodity)])))]
    net = int(rng.integers(16, 81)) * 250  # 4 to 20 t
    gross = net + net // 12
    value = (Decimal(net) * Decimal(usd_per_kg)).quantize(Decimal("0.01"))
    stem = OWNER_CODES[int(rng.integers(len(OWNER_CODES)))] + f"{int(rng.integers(1_000_000)):06d}"
    importing = direction == "import"
    origin = "CN" if importing else "VN"
    body: dict[str, Any] = {
        "kind": direction,
        "procedure_code": "A11" if importing else "B11",
        "border_gate": "KIMTHANH",
        "consignor": dict(CN_PARTY if importing else VN_PARTY),
        "consignee": dict(VN_PARTY if importing else CN_PARTY),
        "transport": {
            "truck_plate": f"24C-{int(rng.integers(100, 1000))}.{int(rng.integers(10, 100))}",
            "driver_name": "Nguyen Van An",
            "driver_id": f"0010890{int(rng.integers(10_000, 100_000))}",
            "expected_arrival": dt.datetime.combine(day, dt.time(20, 0), GATE_TZ).isoformat(),
        },
        "containers": [{"number": stem + iso6346.calc_check_digit(stem), "size_type": "22G1",
                        "seals": [f"{origin}{int(rng.integers(1_000_000, 10_000_000))}"]}],
        "items": [{"hs_code": hs, "description": description, "origin": origin, "quantity": str(net), "unit": "KGM",
                   "gross_mass_kg": str(gross), "net_mass_kg": str(net), "customs_value": str(value),
                   "currency": "USD", "incoterms": "DAP"}],
        "total_gross_mass_kg": str(gross),
        "total_net_mass_kg": str(net),
    }  # fmt: skip
    if importing:
        issued = day - dt.timedelta(days=int(rng.integers(1, 30)))
        body["preferential_origin"] = {"form_e_number": f"E26{int(rng.integers(10**13, 10**14))}",
                                       "issued_on": issued.isoformat()}  # fmt: skip
    return body


@dataclass
class Outcome:
    """What happened to one truck's declaration on the platform."""

    n: int
    truck_class: str
    channel: str | None = None
    status: str | None = None
    decisions: list[str] = field(default_factory=list)
    error: str | None = None
    submitted_at: str | None = None
    released_at: str | None = None
    latencies_ms: dict[str, list[float]] = field(default_factory=dict)
    retries: int = 0  # answers 503 (nothing stored) that were retried


@dataclass
class TwinSettings:
    """How the plan is played: time compression, concurrency, and the officer's simulated review time."""

    url: str
    trader_key: str
    officer_key: str
    # The bank / State Treasury side: a trader's payment is only a claim until the treasury confirms it.
    treasury_key: str
    speedup: float = 600.0
    concurrency: int = 16
    review_minutes: float = 20.0
    timeout_s: float = 30.0


class _Client:
    def __init__(self, http: httpx.AsyncClient, settings: TwinSettings) -> None:
        self.http, self.settings = http, settings
        self.trader = {"Authorization": f"Bearer {settings.trader_key}"}
        # Bank references are unique on the platform: each run has its own.
        self.run_id = uuid.uuid4().hex[:10]
        self.officer = {"Authorization": f"Bearer {settings.officer_key}"}
        self.treasury = {"Authorization": f"Bearer {settings.treasury_key}"}
        self.officer_id: str | None = None  # the officer key's id, which assignments name (read at the start)

    async def call(self, out: Outcome, step: str, method: str, path: str, who: dict[str, str], **kw: Any) -> Any:
        headers = {**who, **kw.pop("headers", {})}
        for attempt in range(RETRIES_ON_503 + 1):
            started = time.perf_counter()
            response = await self.http.request(method, path, headers=headers, **kw)
            out.latencies_ms.setdefault(step, []).append((time.perf_counter() - started) * 1000)
            # 503 means nothing was stored (a database lock or timeout under load): retry as the platform asks,
            # a few times, as any client of it should.
            if response.status_code != 503 or attempt == RETRIES_ON_503:
                break
            out.retries += 1
            await asyncio.sleep(min(_retry_after(response), MAX_RETRY_WAIT_S))
        if response.status_code >= 400:
            try:
                problem = response.json()
                reason = f"{problem.get('title', '')}: {problem.get('detail', '')}"
            except (ValueError, AttributeError):
                reason = response.text[:200]
            raise _StepFailed(f"{step}: HTTP {response.status_code} {reason}")
        try:
            data = response.json()
        except ValueError:
            raise _StepFailed(f"{step}: HTTP {response.status_code} with a body that is not JSON") from None
        if not isinstance(data, dict):
            raise _StepFailed(f"{step}: HTTP {response.status_code} with an unexpected body")
        return data


RETRIES_ON_503 = 3
MAX_RETRY_WAIT_S = 2.0


def _retry_after(response: httpx.Response) -> float:
    try:
        return max(0.0, float(response.headers.get("retry-after", "1")))
    except ValueError:
        return 1.0


class _StepFailed(Exception):
    pass


async def _truck(client: _Client, truck: TwinTruck, out: Outcome, start: float, gate: asyncio.Semaphore) -> None:
    settings = client.settings
    await asyncio.sleep(max(0.0, start + truck.arrival_s / settings.speedup - time.monotonic()))
    try:
        async with gate:
            decl = await client.call(out, "file", "POST", f"{API}/declarations?submit=true", client.trader,
                                     json=truck.body, headers={"Idempotency-Key": f"twin-{uuid.uuid4()}"})  # fmt: skip
        out.channel, out.status, out.submitted_at = decl.get("channel"), decl["status"], decl.get("submitted_at")
        path = f"{API}/declarations/{decl['id']}"
        # The officer's review takes scenario time (compressed like everything else).
        if decl["status"] == "submitted":
            await asyncio.sleep(settings.review_minutes * 60 / settings.speedup)
            if decl.get("assigned_officer") is None and client.officer_id:
                # Nobody on duty got it in rotation: the officer takes it (only the assignee decides).
                async with gate:
                    decl = await client.call(out, "take", "POST", f"{path}/assignment", client.officer,
                                             json={"officer_key_id": client.officer_id})  # fmt: skip
            outcomes = ["inspect", "clear"] if decl.get("channel") == "red" else ["clear"]
            for outcome in outcomes:
                decision = {"outcome": outcome, "reason": f"twin: {outcome} after review"}
                # On the version reviewed: the ETag of the declaration as last read.
                async with gate:
                    decl = await client.call(out, "decide", "POST", f"{path}/decisions", client.officer,
                                             json=decision, headers={"If-Match": decl["etag"]})  # fmt: skip
                out.decisions.append(outcome)
        out.status = decl["status"]
        due = int(decl.get("duties_due_vnd") or 0) - int(decl.get("paid_vnd") or 0)
        if decl["status"] == "cleared" and due > 0:
            async with gate:
                claim = await client.call(out, "pay", "POST", f"{API}/declarations/{decl['id']}/payments",
                                          client.trader, json={"bank_reference": f"TWIN-{client.run_id}-{truck.n:06d}",
                                                               "amount_vnd": due})  # fmt: skip
            # The trader's payment is a claim; the treasury confirms the money arrived, which releases the goods.
            async with gate:
                paid = await client.call(out, "confirm", "POST", f"{API}/payments/{claim['id']}/confirm",
                                         client.treasury)  # fmt: skip
            out.status = paid["declaration_status"]
        if out.status != "released":
            raise _StepFailed(f"ended {out.status}, not released")
        async with gate:
            history = await client.call(out, "history", "GET", f"{path}/history", client.trader)
        out.released_at = next((t["at"] for t in history["transitions"] if t["to_status"] == "released"), None)
    except _StepFailed as exc:
        out.error = str(exc)
    except httpx.HTTPError as exc:
        out.error = f"{type(exc).__name__}: {exc}"
    except (KeyError, TypeError, ValueError) as exc:  # an answer of another shape: this truck's error, not the run's
        out.error = f"unexpected answer from the platform ({type(exc).__name__}: {exc})"


async def _check_access(http: httpx.AsyncClient, settings: TwinSettings) -> None:
    """Fail fast with one reason: the platform unreachable, or a key refused."""
    try:
        health = await http.get("/healthz")
    except httpx.HTTPError as exc:
        raise TwinError(f"cannot reach the platform at {settings.url}: {exc}") from exc
    if health.status_code != 200:
        raise TwinError(f"the platform at {settings.url} is not healthy (HTTP {health.status_code})")
    # Probes that change nothing: an empty filing (a trader's key gets 422 for the body, any other role 403), a
    # decision on a declaration that does not exist (an officer's key gets 404, any other role 403), and the
    # confirmation of a payment that does not exist (the treasury's key gets 404, any other role 403).
    probes: tuple[tuple[str, str, str, str, dict[str, Any] | None], ...] = (
        ("trader", settings.trader_key, "POST", f"{API}/declarations", {}),
        (
            "officer",
            settings.officer_key,
            "POST",
            f"{API}/declarations/{uuid.UUID(int=0)}/decisions",
            {"outcome": "clear", "reason": "access check"},
        ),
        ("treasury", settings.treasury_key, "POST", f"{API}/payments/{uuid.UUID(int=0)}/confirm", {}),
    )
    for role, key, method, path, body in probes:
        try:
            got = await http.request(method, path, json=body, headers={"Authorization": f"Bearer {key}"})
        except httpx.HTTPError as exc:
            raise TwinError(f"checking the {role} key at {settings.url}: {exc}") from exc
        if got.status_code in (401, 403):
            raise TwinError(f"the {role} key was refused (HTTP {got.status_code}): it must be a valid {role} key")
        if got.status_code >= 500:
            raise TwinError(f"checking the {role} key: HTTP {got.status_code} from {path}")


async def run_async(
    trucks: list[TwinTruck], settings: TwinSettings, *, progress: Callable[[int, int], None] | None = None
) -> dict[str, Any]:
    """Play the plan against the platform and return the report (see `report`)."""
    limits = httpx.Limits(max_connections=settings.concurrency, max_keepalive_connections=settings.concurrency)
    async with httpx.AsyncClient(base_url=settings.url, timeout=settings.timeout_s, limits=limits) as http:
        await _check_access(http, settings)
        client = _Client(http, settings)
        duty = await http.get(f"{API}/review/duty", headers=client.officer)
        client.officer_id = duty.json().get("officer_key_id") if duty.status_code == 200 else None
        gate = asyncio.Semaphore(settings.concurrency)
        outcomes = [Outcome(t.n, t.truck_class) for t in trucks]
        start = time.monotonic()
        tasks = [asyncio.create_task(_truck(client, t, o, start, gate)) for t, o in zip(trucks, outcomes, strict=True)]
        done = 0
        for finished in asyncio.as_completed(tasks):
            await finished
            done += 1
            if progress:
                progress(done, len(tasks))
        wall = time.monotonic() - start
    return report(trucks, outcomes, settings, wall_s=wall)


def run(
    trucks: list[TwinTruck], settings: TwinSettings, *, progress: Callable[[int, int], None] | None = None
) -> dict[str, Any]:
    """`run_async` from synchronous code (the CLI)."""
    return asyncio.run(run_async(trucks, settings, progress=progress))


def _pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1)], 1)


def report(
    trucks: list[TwinTruck], outcomes: list[Outcome], settings: TwinSettings, *, wall_s: float
) -> dict[str, Any]:
    """Channel split the platform gave (overall and by class), what ended released, API latency per step, the
    platform's own submission-to-release times, and every error."""
    channels = Counter(o.channel for o in outcomes if o.channel)
    filed = sum(channels.values())
    by_class: dict[str, Counter[str]] = {}
    for o in outcomes:
        if o.channel:
            by_class.setdefault(o.truck_class, Counter())[o.channel] += 1
    steps: dict[str, list[float]] = {}
    for o in outcomes:
        for step, values in o.latencies_ms.items():
            steps.setdefault(step, []).extend(values)
    release_s = [
        (dt.datetime.fromisoformat(o.released_at) - dt.datetime.fromisoformat(o.submitted_at)).total_seconds()
        for o in outcomes
        if o.released_at and o.submitted_at
    ]
    span_s = trucks[-1].arrival_s if trucks else 0.0
    return {
        "trucks": len(trucks),
        "filed": filed,
        "released": sum(o.status == "released" for o in outcomes),
        "errors": [{"truck": o.n, "class": o.truck_class, "error": o.error} for o in outcomes if o.error],
        "retried_503": sum(o.retries for o in outcomes),
        "channels": {c: channels.get(c, 0) for c in ("green", "yellow", "red")},
        "channel_split": {
            c: round(channels.get(c, 0) / filed, 4) if filed else None for c in ("green", "yellow", "red")
        },
        "channels_by_class": {k: dict(v) for k, v in sorted(by_class.items())},
        "decisions": dict(Counter(d for o in outcomes for d in o.decisions)),
        "latency_ms": {
            step: {"n": len(v), "p50": _pct(v, 50), "p95": _pct(v, 95), "max": round(max(v), 1)}
            for step, v in sorted(steps.items())
        },
        "release_wall_s": {
            "n": len(release_s),
            "mean": round(statistics.fmean(release_s), 3) if release_s else None,
            "p95": _pct(release_s, 95),
        },
        "scenario_span_min": round(span_s / 60, 1),
        "wall_s": round(wall_s, 2),
        "settings": {
            "speedup": settings.speedup,
            "concurrency": settings.concurrency,
            "review_minutes": settings.review_minutes,
            "url": settings.url,
        },
    }
