"""The words that open a report: what a run, a comparison or a sweep found, in units, with its 95 % intervals.

A report (terminal or HTML) starts with a few sentences an engineer can quote — "smart-gate-2030 cuts the mean
time in the gate from 32.7 to 29.5 min (−10 %, 95 % CI −13 to −7 %)" — built from the KPIs that matter: throughput,
the time in the gate (mean and p95), the stage waits that changed most, the class that went the other way, the
resource that became the bottleneck, the trucks left at closing, the yard; differences that are not significant
say so. The full tables stay in the HTML report and the JSON.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from simulator.runner import GROWTH, RunOutput

MINUS = "−"
Summary = Mapping[str, Mapping[str, float]]

STAGES = {
    "entry_gate.inbound": "the inbound entry lanes",
    "entry_gate.outbound": "the outbound entry lanes",
    "document_check": "the document check",
    "weighbridge": "the weighbridge",
    "xray": "the X-ray",
    "inspection": "the inspection bays",
    "phyto": "the residue test",
    "exit_gate.inbound": "the inbound exit lanes",
    "exit_gate.outbound": "the outbound exit lanes",
    "china_check": "the Chinese-side check",
}
PERCENTILE = {"p50": "median", "p90": "90th-percentile", "p95": "95th-percentile"}
UNIT_WORDS = {"min": "min", "trucks/day": "trucks a day", "trucks": "trucks", "%": "%", "": ""}
METHODS = {"t": "Student t", "hall": "Hall's skewness-corrected t"}


def stage_name(stage: str) -> str:
    """`xray` → "the X-ray"; a daily cap `acceptance_cap.fruit` → "the Chinese cap on fruit"."""
    if stage in STAGES:
        return STAGES[stage]
    if stage.startswith("acceptance_cap."):
        return f"the Chinese cap on {stage.split('.', 1)[1].replace('_', ' ')}"
    return "the " + stage.replace("_", " ").replace(".", " ")


def class_name(cls: str) -> str:
    """`export_fruit` → "fruit exports"; any other name with its underscores as spaces."""
    direction, _, rest = cls.partition("_")
    if direction in ("import", "export") and rest:
        return f"{rest.replace('_', ' ')} {direction}s"
    return cls.replace("_", " ")


def describe(key: str) -> tuple[str, str]:
    """A KPI as a noun phrase and its unit ("min", "trucks/day", "trucks", "%" for a share, "" if unknown)."""
    fixed = {
        "throughput_per_day": ("throughput", "trucks/day"),
        "demand_per_day": ("demand", "trucks/day"),
        "throughput_per_day.import": ("import throughput", "trucks/day"),
        "throughput_per_day.export": ("export throughput", "trucks/day"),
        "wait_min.yard_blocked": ("the wait of trucks blocked by a full yard", "min"),
        "trucks_blocked_by_yard_per_day": ("the trucks blocked by a full yard", "trucks/day"),
        "wait_min.acceptance_cap": ("the wait of trucks held by the daily cap", "min"),
        "trucks_held_by_cap_per_day": ("the trucks held by the daily cap", "trucks/day"),
        "yard_occupancy.mean": ("the mean yard occupancy", "trucks"),
        "yard_occupancy.max": ("the peak yard occupancy", "trucks"),
        "trucks_left_at_closing": ("the trucks left at closing", "trucks"),
        GROWTH: ("the growth of the backlog", "trucks/day"),
        "trucks_in_system_at_end": ("the trucks in the gate at the end", "trucks"),
    }
    if key in fixed:
        return fixed[key]
    head, _, rest = key.partition(".")
    if head == "time_in_system_min" and "." in rest:
        cls, stat = rest.rsplit(".", 1)
        what = "mean" if stat == "mean" else PERCENTILE.get(stat, stat)
        who = "" if cls == "all" else f" of {class_name(cls)}"
        return f"the {what} time in the gate{who}", "min"
    if head == "wait_min":
        stage, stat = rest, "mean"
        if rest.rsplit(".", 1)[-1] in PERCENTILE:
            stage, stat = rest.rsplit(".", 1)
        what = "mean" if stat == "mean" else PERCENTILE[stat]
        return f"the {what} wait at {stage_name(stage)}", "min"
    if head == "queue_length":
        return f"the queue at {stage_name(rest)}", "trucks"
    if head == "utilisation":
        return f"the utilisation of {stage_name(rest)}", "%"
    return key, ""


def _finite(x: Any) -> bool:
    return isinstance(x, int | float) and math.isfinite(x)


def num(x: float, unit: str = "", signed: bool = False) -> str:
    """A figure with the digits that matter: 212, 32.7, 0.31; a share (unit "%") in percent; "–" when unknown."""
    if not _finite(x):
        return "–"
    if unit == "%":
        x *= 100.0
    a = abs(x)
    digits = 0 if a >= 100 or a == 0 or (unit == "%" and a >= 10) else 1 if a >= 1 else 2
    text = f"{a:,.{digits}f}"
    if x < 0 and text.strip("0.,"):
        return MINUS + text
    return ("+" if signed and text.strip("0.,") else "") + text


def with_unit(x: float, unit: str, signed: bool = False) -> str:
    """`num` followed by the unit in words: "32.7 min", "389 trucks a day", "47 %"."""
    words = UNIT_WORDS.get(unit, unit)
    return f"{num(x, unit, signed)} {words}".rstrip()


def pct(x: float, factor: bool = False) -> str:
    """A relative change: "−30 %", "+4.5 %"; with `factor` as a multiple of A: "×3.2", "×680"."""
    if not _finite(x):
        return "–"
    if factor:
        f = 1.0 + x
        return f"×{f:,.0f}" if f >= 9.95 else f"×{f:.1f}" if f >= 0.995 else f"×{f:.2f}"
    p = x * 100.0
    text = f"{abs(p):,.0f}" if abs(p) >= 9.95 else f"{abs(p):.1f}"
    if text.strip("0.,") == "":
        return "0 %"
    return f"{MINUS if p < 0 else '+'}{text} %"


def ci_text(v: Mapping[str, float], unit: str, signed: bool = False, words: bool = True) -> str:
    """ "95 % CI 32.0 to 33.5 min" (without the unit: `words` False), or "" when the interval is unknown."""
    if not (_finite(v.get("ci_low")) and _finite(v.get("ci_high"))):
        return ""
    high = with_unit(v["ci_high"], unit, signed) if words else num(v["ci_high"], unit, signed)
    return f"95 % CI {num(v['ci_low'], unit, signed)} to {high}"


def _value(v: Mapping[str, float], unit: str) -> str:
    ci = ci_text(v, unit, words=False)
    return f"{with_unit(v['mean'], unit)}" + (f" ({ci})" if ci else "")


def _and(items: Sequence[str]) -> str:
    """ "a", "a and b", "a, b and c"."""
    return " and ".join(items) if len(items) < 3 else ", ".join(items[:-1]) + " and " + items[-1]


def short_label(label: str) -> str:
    """A sweep variant as a sentence names it: the last two parts of each path, "xray.servers=2"."""
    parts = []
    for item in label.split(", "):
        path, eq, value = item.partition("=")
        parts.append(".".join(path.split(".")[-2:]) + eq + value)
    return ", ".join(parts)


def _sentence(text: str, capital: bool = True) -> str:
    return (text[:1].upper() if capital else text[:1]) + text[1:] + ("" if text.endswith(".") else ".")


def interval_note(method: str, paired: bool = False) -> str:
    """Which intervals the figures carry, in one sentence."""
    own = f"95 % {METHODS.get(method, method)} intervals across replications"
    clip = "an interval of a quantity that cannot be negative stops at 0"
    if not paired:
        return f"Intervals are {own}; {clip}."
    return (
        "Differences are paired by replication (common random numbers) with 95 % t intervals; a relative change "
        f"is B / A − 1 with a delta-method t interval (never below −100 %); each scenario's own figures carry {own}; "
        f"{clip}."
    )


def run_summary(run: RunOutput, extra: Sequence[str] = ()) -> list[str]:
    """The sentences that open the report of one scenario."""
    s = run.summary
    name = str(run.scenario.get("name"))
    grows = set(run.no_steady_state)
    out = []
    thr, dem = s["throughput_per_day"], s["demand_per_day"]
    first = (
        f"{name} ({run.replications} replication{'s' if run.replications != 1 else ''} × {run.days} days, seed "
        f"{run.seed}) clears {_value(thr, 'trucks/day')} of the {num(dem['mean'])} that arrive"
    )
    if _finite(thr["mean"]) and _finite(dem["mean"]) and thr["mean"] < 0.98 * dem["mean"]:
        first += f", {with_unit(dem['mean'] - thr['mean'], 'trucks/day')} short"
    out.append(_sentence(first, capital=False))
    mean, p95 = s["time_in_system_min.all.mean"], s["time_in_system_min.all.p95"]
    over = [x for x in run.load.values() if x.unstable]
    if over or "time_in_system_min.all.mean" in grows:
        names = _and([stage_name(x.stage) for x in over]) or "a stage"
        g = s.get(GROWTH)
        grow = f"the backlog grows by {_value(g, 'trucks/day')}" if g is not None else "the backlog grows every day"
        out.append(
            _sentence(
                f"there is no steady state: {names} {'is' if len(over) == 1 else 'are'} overloaded, so {grow} and "
                f"the mean time in the gate ({with_unit(mean['mean'], 'min')}) only measures the run length "
                "(it grows with --days)"
            )
        )
    else:
        out.append(
            _sentence(
                f"a truck spends {_value(mean, 'min')} in the gate on average; 95 % of the trucks leave within "
                f"{_value(p95, 'min')}"
            )
        )
    waits = [(s[f"wait_min.{r}"]["mean"], r) for r in run.resources if _finite(s.get(f"wait_min.{r}", {}).get("mean"))]
    utils = [
        (s[f"utilisation.{r}"]["mean"], r) for r in run.resources if _finite(s.get(f"utilisation.{r}", {}).get("mean"))
    ]
    parts = []
    if waits and max(waits)[0] > 0:
        w, r = max(waits)
        parts.append(f"the longest wait is at {stage_name(r)}, {_value(s[f'wait_min.{r}'], 'min')} on average")
    if utils:
        u, r = max(utils)
        why = " (over 100 %: it serves past closing the trucks it started)" if u > 1.0 else ""
        parts.append(f"the busiest resource is {stage_name(r)} at {with_unit(u, '%')} utilisation{why}")
    if parts:
        out.append(_sentence("; ".join(parts)))
    classes = [
        (s[k]["mean"], c) for c in run.classes if _finite(s.get(k := f"time_in_system_min.{c}.mean", {}).get("mean"))
    ]
    if len(classes) > 1:
        m, c = max(classes)
        out.append(_sentence(f"{class_name(c)} take longest: {with_unit(m, 'min')} in the gate on average"))
    left, ymax = s["trucks_left_at_closing"], s["yard_occupancy.max"]
    cap = (run.scenario.get("yard") or {}).get("capacity_trucks")
    out.append(
        _sentence(
            f"{num(left['mean'])} trucks are left at closing on average and the yard peaks at "
            f"{num(ymax['mean'])}{f' of its {cap}' if cap else ''} trucks"
        )
    )
    for key in extra:
        if key in s:
            label, unit = describe(key)
            out.append(_sentence(f"{label}: {_value(s[key], unit)}"))
    out.append(interval_note(run.interval))
    return out


def _how(d: Mapping[str, float], r: Mapping[str, float], unit: str) -> str:
    """How much B differs from A: relative (with its interval) when that interval agrees with the paired
    difference on whether there is a change, else the difference itself in its unit (a share: in points)."""
    significant = bool(d.get("significant"))
    lo, hi = r.get("ci_low", math.nan), r.get("ci_high", math.nan)
    agrees = _finite(lo) and _finite(hi) and (lo > 0 or hi < 0) == significant
    if unit != "%" and _finite(r.get("mean")) and (agrees or not (_finite(lo) and _finite(hi))):
        big = r["mean"] >= 2.0  # three times A or more: "×3.2" reads better than "+220 %"
        how = pct(r["mean"], big) + (f", 95 % CI {pct(lo, big)} to {pct(hi, big)}" if agrees else "")
    else:
        u = "points" if unit == "%" else unit
        how = f"{num(d['mean'], unit, True)} {UNIT_WORDS.get(u, u)}".rstrip()
        if _finite(d.get("ci_low")) and _finite(d.get("ci_high")):
            how += f", 95 % CI {num(d['ci_low'], unit, True)} to {num(d['ci_high'], unit, True)}"
    return how if significant else how + ": not significant"


def change(key: str, a: Summary, b: Summary, diff: Summary, rel: Summary) -> str:
    """One clause: "cuts the mean time in the gate from 32.7 to 29.5 min (−10 %, 95 % CI −13 to −7 %)"."""
    label, unit = describe(key)
    d = diff[key]
    verb = ("raises" if d["mean"] > 0 else "cuts") if d.get("significant") else "changes"
    how = _how(d, rel.get(key, {}), unit)
    return f"{verb} {label} from {num(a[key]['mean'], unit)} to {with_unit(b[key]['mean'], unit)} ({how})"


def compare_keys(a: RunOutput, b: RunOutput, diff: Summary, extra: Sequence[str] = ()) -> list[str]:
    """The KPIs a comparison's summary speaks of, in order."""
    sig = {k for k, d in diff.items() if d.get("significant")}
    keys = []
    if "demand_per_day" in sig:
        keys.append("demand_per_day")
    keys += ["throughput_per_day", "time_in_system_min.all.mean", "time_in_system_min.all.p95"]
    if a.no_steady_state or b.no_steady_state:
        keys.append(GROWTH)
    resources = [r for r in a.resources if r in b.resources]
    waits = sorted(
        (k for r in resources if (k := f"wait_min.{r}") in sig and _finite(diff[k]["mean"])),
        key=lambda k: -abs(diff[k]["mean"]),
    )
    keys += waits[:3]
    # The class that went the other way (the overall mean fell, theirs rose), else the one that changed most.
    overall = diff.get("time_in_system_min.all.mean", {})
    direction = 0.0 if not overall.get("significant") else math.copysign(1.0, overall["mean"])
    against = sorted(
        (
            k
            for c in a.classes
            if (k := f"time_in_system_min.{c}.mean") in sig
            and _finite(diff[k]["mean"])
            and diff[k]["mean"] * direction <= 0
        ),
        key=lambda k: -abs(diff[k]["mean"]),
    )
    keys += against[:1]
    hot = sorted(
        (
            k
            for r in resources
            if (k := f"utilisation.{r}") in sig and diff[k]["mean"] > 0 and b.summary[k]["mean"] >= 0.8
        ),
        key=lambda k: -b.summary[k]["mean"],
    )
    keys += hot[:1]
    keys += ["trucks_left_at_closing", "yard_occupancy.max", *extra]
    return [k for k in dict.fromkeys(keys) if k in diff and k in a.summary and k in b.summary]


def compare_summary(a: RunOutput, b: RunOutput, diff: Summary, rel: Summary, extra: Sequence[str] = ()) -> list[str]:
    """The sentences that open a comparison of B against A."""
    na, nb = a.scenario.get("name"), b.scenario.get("name")
    keys = compare_keys(a, b, diff, extra)
    first = (
        "demand_per_day",
        "throughput_per_day",
        "time_in_system_min.all.mean",
        "time_in_system_min.all.p95",
        GROWTH,
    )
    groups: list[list[str]] = [[k for k in keys if k in first], [], []]
    for k in keys:
        if k not in first:
            groups[1 if k.startswith("wait_min.") and k not in extra else 2].append(k)
    head = (
        f"{nb} against {na} ({a.replications} paired replication{'s' if a.replications != 1 else ''} × {a.days} "
        f"days, seed {a.seed}, the same trucks in both): "
    )
    lead = (f"{nb} ", "At the stages it ", "It also ")
    out: list[str] = []
    for i, group in enumerate(groups):
        if group:
            text = lead[i] + "; ".join(change(k, a.summary, b.summary, diff, rel) for k in group) + "."
            out.append(head + text if not out else text)
    grows = sorted(set(a.no_steady_state) | set(b.no_steady_state))
    if grows:
        who = [str(x.scenario.get("name")) for x in (a, b) if x.no_steady_state]
        out.append(
            f"{' and '.join(who)} {'has' if len(who) == 1 else 'have'} no steady state (a stage at ρ ≥ 1): "
            "means grow with --days; compare the growth of the backlog instead."
        )
    out.append(interval_note(a.interval, paired=True))
    return out


def sweep_summary(
    scenario: str,
    labels: Sequence[str],
    runs: Sequence[RunOutput],
    diffs: Sequence[Summary],
    rels: Sequence[Summary],
    extra: Sequence[str] = (),
) -> list[str]:
    """The sentences that open a sweep: each headline KPI across the variants, changes against the first."""
    r0 = runs[0]
    axes: dict[str, list[str]] = {}
    for label in labels:
        for item in label.split(", "):
            path, _, value = item.partition("=")
            axes.setdefault(path, [])
            if value not in axes[path]:
                axes[path].append(value)
    grid = "; ".join(f"{path} = {_and(values)}" for path, values in axes.items())
    out = [
        f"{scenario}, {len(runs)} variant{'s' if len(runs) != 1 else ''} ({grid}; {r0.replications} "
        f"paired replication{'s' if r0.replications != 1 else ''} × {r0.days} days each, seed {r0.seed}); changes "
        "are against the first."
    ]
    labels = [short_label(x) for x in labels]
    keys = ["throughput_per_day", "time_in_system_min.all.mean", "time_in_system_min.all.p95"]
    if any(r.no_steady_state for r in runs):
        keys.append(GROWTH)
    for key in dict.fromkeys([*keys, *extra]):
        if not all(key in r.summary for r in runs):
            continue
        label, unit = describe(key)
        parts = [f"{with_unit(r0.summary[key]['mean'], unit)} at {labels[0]}"]
        for lab, r, d, rel in zip(labels[1:], runs[1:], diffs[1:], rels[1:], strict=True):
            v = r.summary[key]["mean"]
            how = _how(d[key], rel.get(key, {}), unit)
            parts.append(f"{num(v, unit)} at {lab} ({how})")
        text = f"{label}: " + "; ".join(parts)
        means = [r.summary[key]["mean"] for r in runs]
        if len(runs) > 2 and all(_finite(m) for m in means):
            best = means.index(max(means) if key == "throughput_per_day" else min(means))
            if best == 0 or diffs[best][key].get("significant"):
                text += f"; {'highest' if key == 'throughput_per_day' else 'lowest'} at {labels[best]}"
        out.append(_sentence(text))
    longest = []
    for lab, r in zip(labels, runs, strict=True):
        w = [
            (r.summary[f"wait_min.{x}"]["mean"], x) for x in r.resources if _finite(r.summary[f"wait_min.{x}"]["mean"])
        ]
        if w:
            m, x = max(w)
            longest.append((lab, x, m))
    if longest:
        if len({x for _, x, _ in longest}) == 1:
            out.append(_sentence(f"the longest wait is at {stage_name(longest[0][1])} in every variant"))
        else:
            out.append(
                _sentence(
                    "the longest wait moves: "
                    + "; ".join(f"{stage_name(x)} ({with_unit(m, 'min')}) at {lab}" for lab, x, m in longest)
                )
            )
    out.append(interval_note(r0.interval, paired=True))
    return out
