"""Scenario files: the YAML schema of a gate, its validation with errors that name the path, and `--set` overrides."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

SCENARIO_DIR = Path(__file__).parent / "scenarios"
Commodity = Literal["fruit", "minerals", "general"]
Direction = Literal["import", "export"]
Distribution = Literal["exponential", "lognormal", "fixed"]
# Keys that describe the scenario rather than the gate; they need no source.
_UNSOURCED = ("name", "description", "seed", "sources")


class ScenarioError(ValueError):
    """A scenario that cannot be loaded; the message names the offending path."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ChannelSplit(_Model):
    """Shares of declarations routed to the green, yellow and red risk channels."""

    green: float = Field(ge=0, le=1)
    yellow: float = Field(ge=0, le=1)
    red: float = Field(ge=0, le=1)

    @model_validator(mode="after")
    def _sums_to_one(self) -> ChannelSplit:
        total = self.green + self.yellow + self.red
        if not math.isclose(total, 1.0, abs_tol=1e-6):
            raise ValueError(f"green + yellow + red must be 1, got {total:g}")
        return self


class ByChannel(_Model):
    """A value per risk channel (a fraction or minutes)."""

    green: float = Field(default=0.0, ge=0)
    yellow: float = Field(default=0.0, ge=0)
    red: float = Field(default=0.0, ge=0)

    def as_tuple(self) -> tuple[float, float, float]:
        """(green, yellow, red)."""
        return (self.green, self.yellow, self.red)


class Hours(_Model):
    """Goods hours at the gate in local (Hanoi) time, and the partner side's clock offset."""

    open_hour: int = Field(default=7, ge=0, le=23)
    close_hour: int = Field(default=19, ge=1, le=24)
    partner_offset_hours: int = Field(default=1, ge=-12, le=12)

    @model_validator(mode="after")
    def _open_before_close(self) -> Hours:
        if self.close_hour <= self.open_hour:
            raise ValueError("close_hour must be after open_hour")
        return self


class Lanes(_Model):
    """Vehicle lanes by direction (entry and exit booths)."""

    inbound: int = Field(ge=1)
    outbound: int = Field(ge=1)


class TruckClass(_Model):
    """A class of trucks: direction, load, commodity, daily demand with its hourly profile, declaration lead time."""

    direction: Direction
    loaded: bool
    commodity: Commodity
    trucks_per_day: float = Field(ge=0)
    profile: str
    declaration_lead_min: float = Field(default=0.0, ge=0)
    channels: ChannelSplit | None = None


class _Service(_Model):
    distribution: Distribution = "exponential"
    cv: float = Field(default=1.0, ge=0)


class _Stage(_Service):
    servers: int = Field(ge=1)
    servers_by_hour: list[int] | None = None
    service_min: float = Field(ge=0)
    visit_fraction: ByChannel | float = 1.0

    @field_validator("servers_by_hour")
    @classmethod
    def _24_hours(cls, v: list[int] | None) -> list[int] | None:
        if v is not None and (len(v) != 24 or any(x < 0 for x in v)):
            raise ValueError("needs 24 non-negative server counts, one per hour from 00:00")
        return v

    @field_validator("visit_fraction")
    @classmethod
    def _fraction(cls, v: ByChannel | float) -> ByChannel | float:
        values = v.as_tuple() if isinstance(v, ByChannel) else (v,)
        if any(not 0 <= x <= 1 for x in values):
            raise ValueError("fractions must be between 0 and 1")
        return v

    def fractions(self) -> tuple[float, float, float]:
        """Visit probability per channel (green, yellow, red)."""
        v = self.visit_fraction
        return v.as_tuple() if isinstance(v, ByChannel) else (v, v, v)


class EntryGate(_Service):
    """Plate and container read at the entry booths; one booth per lane."""

    mode: Literal["manual", "ocr"] = "manual"
    manual_service_min: float = Field(gt=0)
    ocr_service_min: float = Field(gt=0)


class DocumentCheck(_Stage):
    """Document check by risk channel; green can be released automatically; pre-arrival declarations are faster."""

    service_min: float = Field(default=0.0, ge=0)
    service_min_by_channel: ByChannel
    auto_green: bool = False
    precheck_lead_min: float | None = Field(default=None, ge=0)
    precheck_factor: float = Field(default=1.0, ge=0, le=1)


class Weighbridge(_Stage):
    """Weighing; by default only loaded trucks."""

    loaded_only: bool = True


class Xray(_Stage):
    """Non-intrusive scanners; each fails and is repaired with exponential MTBF/MTTR (calendar hours)."""

    mtbf_hours: float | None = Field(default=None, gt=0)
    mttr_hours: float | None = Field(default=None, gt=0)


class Inspection(_Stage):
    """Physical inspection bays."""


class Phyto(_Stage):
    """Phytosanitary / residue testing, for the listed commodities and directions."""

    commodities: list[Commodity] = ["fruit"]
    directions: list[Direction] = ["export"]


class ExitGate(_Service):
    """Exit booths; one per lane."""

    service_min: float = Field(gt=0)


class ChinaCheck(_Stage):
    """The Chinese-side acceptance check of export trucks, on the partner's clock."""

    open_hour_partner: int = Field(default=8, ge=0, le=23)
    close_hour_partner: int = Field(default=20, ge=1, le=24)


class Stages(_Model):
    """The gate's stages, in the order a truck meets them."""

    entry_gate: EntryGate
    document_check: DocumentCheck
    weighbridge: Weighbridge
    xray: Xray
    inspection: Inspection
    phyto: Phyto | None = None
    exit_gate: ExitGate
    china_check: ChinaCheck | None = None


class Yard(_Model):
    """The parking yard between entry and exit; when full it blocks the entry lanes."""

    capacity_trucks: int | None = Field(default=None, ge=1)


class Booking(_Model):
    """Arrival-slot booking: a share of the trucks book a slot of the goods hours and arrive inside it.

    Slots are `slot_minutes` long from opening to closing, `capacity_per_slot` trucks each (all classes together).
    A booked truck takes the free slot nearest to when it would have come (the first one at or after it, else the
    last one before it) and arrives uniformly inside that slot; trucks that find every slot of the day taken, and
    the unbooked ones, come as before (the class profile). A booked truck is a no-show with probability
    `no_show`: it keeps its slot but never arrives.
    """

    share: float = Field(ge=0, le=1)
    slot_minutes: int = Field(ge=1, le=1440)
    capacity_per_slot: int = Field(ge=1)
    no_show: float = Field(default=0.0, ge=0, le=1)


class Scenario(_Model):
    """A whole gate scenario."""

    name: str
    description: str = ""
    seed: int = Field(default=20250101, ge=0)
    demand_multiplier: float = Field(default=1.0, ge=0)
    warmup_days: int = Field(default=0, ge=0)
    hours: Hours = Hours()
    lanes: Lanes
    channels: ChannelSplit
    profiles: dict[str, list[float]]
    classes: dict[str, TruckClass]
    stages: Stages
    yard: Yard = Yard()
    acceptance_cap_per_day: dict[Commodity, int] = {}
    booking: Booking | None = None
    sources: dict[str, str] = {}

    @field_validator("profiles")
    @classmethod
    def _profiles(cls, v: dict[str, list[float]]) -> dict[str, list[float]]:
        for name, weights in v.items():
            if len(weights) != 24:
                raise ValueError(f"profile {name!r} needs 24 hourly values, got {len(weights)}")
            if any(w < 0 for w in weights) or sum(weights) <= 0:
                raise ValueError(f"profile {name!r} needs non-negative values with a positive sum")
        return v

    @field_validator("acceptance_cap_per_day")
    @classmethod
    def _caps(cls, v: dict[str, int]) -> dict[str, int]:
        if any(x < 0 for x in v.values()):
            raise ValueError("caps must be non-negative")
        return v

    @model_validator(mode="after")
    def _references(self) -> Scenario:
        if not self.classes:
            raise ValueError("classes: at least one truck class is needed")
        for name, c in self.classes.items():
            if c.profile not in self.profiles:
                raise ValueError(f"classes.{name}.profile: unknown profile {c.profile!r}")
        b = self.booking
        if b is not None and b.slot_minutes > (self.hours.close_hour - self.hours.open_hour) * 60:
            raise ValueError(
                f"booking.slot_minutes: {b.slot_minutes} is longer than the goods hours "
                f"({self.hours.open_hour:02d}:00–{self.hours.close_hour:02d}:00)"
            )
        return self


def _format_errors(err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        path = ".".join(str(p) for p in e["loc"])
        msg = e["msg"].removeprefix("Value error, ")
        parts.append(f"{path}: {msg}" if path else msg)
    return "; ".join(parts)


def _paths(node: Any, prefix: str = "") -> list[str]:
    if isinstance(node, dict):
        out: list[str] = []
        for k, v in node.items():
            out += _paths(v, f"{prefix}.{k}" if prefix else str(k))
        return out
    return [prefix]


def _has_path(raw: dict[str, Any], path: str) -> bool:
    node: Any = raw
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def unsourced_paths(raw: dict[str, Any]) -> list[str]:
    """Leaf paths of a raw scenario covered by no entry (or prefix) of its `sources` map."""
    sources = raw.get("sources") or {}
    out = []
    for p in _paths({k: v for k, v in raw.items() if k not in _UNSOURCED}):
        parts = p.split(".")
        if not any(".".join(parts[:i]) in sources for i in range(1, len(parts) + 1)):
            out.append(p)
    return out


def parse_scenario(raw: Any, origin: str = "scenario") -> Scenario:
    """Validate a raw mapping as a scenario; errors name the file and the path."""
    if not isinstance(raw, dict):
        raise ScenarioError(f"{origin}: a scenario must be a mapping")
    try:
        scenario = Scenario.model_validate(raw)
    except ValidationError as e:
        raise ScenarioError(f"{origin}: {_format_errors(e)}") from None
    for path in raw.get("sources") or {}:
        if not _has_path(raw, path):
            raise ScenarioError(f"{origin}: sources.{path}: no such path in the scenario")
    return scenario


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Mappings merge key by key; anything else in `over` replaces the base value."""
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) and v else v
    return out


def load_raw(path: str | Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """Read a scenario file (or a shipped scenario name) as a raw mapping, resolving `extends: BASE`."""
    p = resolve_path(path)
    if p.resolve() in _seen:
        raise ScenarioError(f"{p}: extends: cycle through {', '.join(str(s) for s in _seen)}")
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as e:
        raise ScenarioError(f"{p}: cannot read: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise ScenarioError(f"{p}: not valid YAML: {e}") from None
    if not isinstance(raw, dict):
        raise ScenarioError(f"{p}: a scenario must be a mapping")
    base = raw.pop("extends", None)
    if base is not None:
        if not isinstance(base, str):
            raise ScenarioError(f"{p}: extends: expected the name or path of a base scenario")
        base_path = p.parent / base
        if not base_path.exists() and (p.parent / f"{base}.yaml").exists():
            base_path = p.parent / f"{base}.yaml"
        raw = _merge(load_raw(base_path if base_path.exists() else base, (*_seen, p.resolve())), raw)
    return raw


def resolve_path(path: str | Path) -> Path:
    """A path as given, or the shipped scenario of that name (`baseline-2025`)."""
    p = Path(path)
    if not p.exists() and (SCENARIO_DIR / f"{p.name}.yaml").exists():
        return SCENARIO_DIR / f"{p.name}.yaml"
    return p


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file."""
    return parse_scenario(load_raw(path), str(resolve_path(path)))


def shipped_scenarios() -> list[Path]:
    """The scenario files shipped with the simulator."""
    return sorted(SCENARIO_DIR.glob("*.yaml"))


def set_path(raw: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of the raw scenario with `path` (dotted) set to `value`; the parent must exist."""
    import copy

    out = copy.deepcopy(raw)
    node: Any = out
    parts = path.split(".")
    for part in parts[:-1]:
        if not isinstance(node, dict) or part not in node:
            raise ScenarioError(f"--set {path}: no such path in the scenario")
        node = node[part]
    if not isinstance(node, dict):
        raise ScenarioError(f"--set {path}: no such path in the scenario")
    node[parts[-1]] = value
    return out


def parse_set(spec: str) -> tuple[str, list[Any]]:
    """Parse `stages.xray.servers=1,2,3` into the path and its YAML-typed values."""
    if "=" not in spec:
        raise ScenarioError(f"--set {spec}: expected PATH=V1,V2,...")
    path, values = spec.split("=", 1)
    parsed = [yaml.safe_load(v) for v in values.split(",") if v.strip()]
    if not path or not parsed:
        raise ScenarioError(f"--set {spec}: expected PATH=V1,V2,...")
    return path.strip(), parsed


def _get_path(raw: dict[str, Any], path: str) -> Any:
    node: Any = raw
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def scale_schedule(raw: dict[str, Any], path: str, value: Any) -> tuple[str, list[int]] | None:
    """The schedule a capacity change must carry along: (its path, the scaled schedule), or None.

    `stages.S.servers` alone does not change the capacity of a stage whose `servers_by_hour` is set (the schedule
    staffs the stage hour by hour; units beyond it are spares). Setting it to N therefore scales the schedule by
    N / servers, rounding half up and keeping an open hour open.
    """
    parts = path.split(".")
    if len(parts) != 3 or parts[0] != "stages" or parts[2] != "servers":
        return None
    sched_path = f"stages.{parts[1]}.servers_by_hour"
    sched = _get_path(raw, sched_path)
    old = _get_path(raw, path)
    if not isinstance(sched, list) or not isinstance(old, int) or isinstance(value, bool) or old < 1:
        return None
    if not isinstance(value, int) or not all(isinstance(x, int) for x in sched):
        return None
    factor = value / old
    return sched_path, [0 if x <= 0 else max(1, math.floor(x * factor + 0.5)) for x in sched]


def apply_sets(raw: dict[str, Any], sets: list[tuple[str, Any]]) -> tuple[dict[str, Any], list[str]]:
    """A copy of the raw scenario with every (path, value) set, capacity changes scaling their schedules.

    Returns the variant and one note per schedule that was scaled. A schedule set explicitly is left alone.
    """
    explicit = {p for p, _ in sets}
    out = raw
    notes: list[str] = []
    for path, value in sets:
        out = set_path(out, path, value)
        scaled = scale_schedule(raw, path, value)
        if scaled is not None and scaled[0] not in explicit and scaled[1] != _get_path(raw, scaled[0]):
            out = set_path(out, scaled[0], scaled[1])
            notes.append(f"{path}={value} scales {scaled[0]} to {scaled[1]}")
    return out, notes
