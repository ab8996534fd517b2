"""Week by week, as selectivity would run: inspect a fixed budget of each week's declarations, learn only from the
outcomes of what was inspected, and compare exploitation alone, exploration shares and the rules alone.

The replay (:func:`simulate`):

- Declarations arrive week by week (ISO weeks of their dates). Each week a budget of ``budget`` % of them is
  inspected; only the inspected ones' labels become known, and only known labels feed the risk profiles, the
  trees and the rules' trader history.
- Warm-up: for the first ``warmup`` weeks no model exists; every strategy inspects by the rules, plus its own
  exploration.
- A model strategy with exploration share ``e`` spends ``(1 - e)`` of the budget on the top-scored declarations
  and ``e`` on declarations drawn at random among the rest; the model is retrained every ``retrain`` weeks on
  everything inspected so far (the same leak-free out-of-fold encoding as `smartgate risk model train`).
- The rules alone: the platform's rule set (its YAML, services/declarations/rules/default.yaml by default) on the
  analogues the KCS data have: HS watch lists (HS6 prefixes), value per kg outside the p5-p95 band of earlier
  declarations of the HS6 code (label-free), an FTA claim for an origin not party to the agreement (the Form E
  rule), a new importer (few earlier declarations) and the importer's compliance class (C after a violation
  found, A after 20 clean inspections; from inspected outcomes only). Declarations are ranked by rule score (ties
  at random) and the budget is taken from the top, so every strategy inspects as many.
- Measured per week on every declaration's true label (the simulation knows them all): precision (violations
  among the inspected) and recall (violations found / all violations of the week).
"""

from __future__ import annotations

import datetime as dt
import html
import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from riskmodel import features
from riskmodel.records import Item

DEFAULT_RULES = Path(__file__).resolve().parents[1] / "services" / "declarations" / "rules" / "default.yaml"
SIM_PARAMS = {"num_leaves": 15, "learning_rate": 0.1, "min_data_in_leaf": 20}
SIM_ROUNDS = 120


@dataclass
class Week:
    """One strategy's week."""

    week: str
    declarations: int
    frauds: int
    inspected: int
    found: int
    explored: int = 0
    explored_found: int = 0

    @property
    def precision(self) -> float | None:
        return self.found / self.inspected if self.inspected else None

    @property
    def recall(self) -> float | None:
        return self.found / self.frauds if self.frauds else None


@dataclass
class Strategy:
    """How a strategy selects, and what it learned."""

    name: str
    exploration: float | None  # None: the rules alone
    weeks: list[Week] = field(default_factory=list)
    known: list[int] = field(default_factory=list)  # indexes of inspected rows (labels known)
    model: object | None = None

    def summary(self, after: int) -> dict:
        """Precision and recall over the weeks after the warm-up."""
        ws = self.weeks[after:]
        inspected = sum(w.inspected for w in ws)
        found = sum(w.found for w in ws)
        frauds = sum(w.frauds for w in ws)
        explored = sum(w.explored for w in ws)
        return {
            "strategy": self.name,
            "weeks": len(ws),
            "inspected": inspected,
            "found": found,
            "precision": round(found / inspected, 4) if inspected else None,
            "recall": round(found / frauds, 4) if frauds else None,
            "exploration_hit_rate": round(sum(w.explored_found for w in ws) / explored, 4) if explored else None,
        }


class RuleSet:
    """The rule set's analogues on KCS items (weights from its YAML)."""

    def __init__(self, text: str) -> None:
        spec = yaml.safe_load(text)
        self.version = str(spec.get("version", "?"))
        self.watch: list[tuple[tuple[str, ...], int]] = []
        self.band: tuple[float, float, int, int] | None = None
        self.fta = 0
        self.new_trader: tuple[int, int] | None = None
        self.classes = {"A": 0, "B": 0, "C": 0}
        for rule in spec["rules"]:
            kind, weight = rule["type"], int(rule.get("weight", 0))
            if kind == "hs_watchlist":
                self.watch.append((tuple(str(p)[:6] for p in rule["prefixes"]), weight))
            elif kind == "unit_value_anomaly":
                self.band = (float(rule.get("low_percentile", 5)), float(rule.get("high_percentile", 95)),
                             int(rule.get("min_history", 20)), weight)  # fmt: skip
            elif kind == "form_e_non_chinese_origin":
                self.fta = weight
            elif kind == "new_trader":
                self.new_trader = (int(rule.get("max_prior_declarations", 3)), weight)
            elif kind == "compliance_class":
                self.classes.update({k: int(v) for k, v in rule["weights"].items()})


def _week_key(day: dt.date) -> str:
    iso = day.isocalendar()
    return f"{iso.year}-W{iso.week:02d}"


def simulate(
    items: Sequence[Item],
    labels: np.ndarray,
    *,
    budget: float = 10.0,
    explorations: Sequence[float] = (0.0, 0.05, 0.10, 0.20),
    warmup: int = 8,
    retrain: int = 4,
    rules_text: str | None = None,
    seed: int = 0,
    rounds: int = SIM_ROUNDS,
) -> dict:
    """Replay the items week by week; the result has per-strategy weekly figures and a summary after warm-up."""
    from riskmodel import training

    labels = np.asarray(labels).astype(np.int64)
    order = sorted(range(len(items)), key=lambda i: (items[i].date, i))
    by_week: dict[str, list[int]] = defaultdict(list)
    for i in order:
        by_week[_week_key(items[i].date)].append(i)
    weeks = sorted(by_week)
    rules = RuleSet(rules_text if rules_text is not None else DEFAULT_RULES.read_text(encoding="utf-8"))
    strategies = [Strategy("rules alone", None)] + [
        Strategy("exploitation only" if e == 0 else f"exploration {e:.0%}", e) for e in explorations
    ]
    rng = np.random.default_rng(seed)
    unit_values: dict[str, list[float]] = defaultdict(list)  # label-free history of value per kg by HS6
    prior_count: Counter[str] = Counter()  # declarations per importer so far (label-free)

    for w, week in enumerate(weeks):
        rows = by_week[week]
        n = len(rows)
        k = max(1, math.ceil(n * budget / 100 - 1e-9))
        week_items = [items[i] for i in rows]
        truth = labels[rows]
        bands = _bands(rules, unit_values, {it.hs6 for it in week_items})
        for s in strategies:
            rule_scores = _rule_scores(rules, week_items, bands, prior_count, s, labels, items)
            explore = 0 if s.exploration is None else int(round(k * s.exploration))
            if s.model is None or s.exploration is None:
                ranking = rule_scores + rng.random(n) * 1e-3  # ties at random
            else:
                ranking = s.model.predict(week_items)  # type: ignore[attr-defined]
            exploit = k - explore
            picked = list(np.argsort(-ranking, kind="mergesort")[:exploit])
            rest = np.setdiff1d(np.arange(n), picked)
            explored = list(rng.choice(rest, size=min(explore, len(rest)), replace=False)) if explore else []
            chosen = picked + explored
            s.known.extend(rows[j] for j in chosen)
            s.weeks.append(Week(week, n, int(truth.sum()), len(chosen), int(truth[chosen].sum()), len(explored),
                                int(truth[explored].sum()) if explored else 0))  # fmt: skip
            if s.exploration is not None and w + 1 >= warmup and (w + 1 - warmup) % retrain == 0:
                known = sorted(set(s.known))
                y = labels[known]
                if 0 < y.sum() < len(y):
                    s.model = training.train([items[i] for i in known], y, rounds=rounds, params=SIM_PARAMS,
                                             seed=seed)  # fmt: skip
        for it in week_items:
            if it.net_mass > 0 and it.value > 0:
                unit_values[it.hs6].append(math.log(it.value / it.net_mass))
            prior_count[it.importer] += 1
    return {
        "budget_percent": budget,
        "warmup_weeks": warmup,
        "retrain_weeks": retrain,
        "rules_version": rules.version,
        "weeks": weeks,
        "strategies": [
            {
                "name": s.name,
                "summary": s.summary(warmup),
                "weekly": [
                    {
                        "week": x.week,
                        "declarations": x.declarations,
                        "frauds": x.frauds,
                        "inspected": x.inspected,
                        "found": x.found,
                        "precision": x.precision,
                        "recall": x.recall,
                    }
                    for x in s.weeks
                ],
            }
            for s in strategies
        ],
    }


def _bands(rules: RuleSet, history: dict[str, list[float]], hs6: set[str]) -> dict[str, tuple[float, float]]:
    if rules.band is None:
        return {}
    low, high, min_history, _ = rules.band
    out = {}
    for code in hs6:
        values = history.get(code, [])[-500:]
        if len(values) >= min_history:
            lo, hi = np.percentile(values, [low, high])
            out[code] = (float(lo), float(hi))
    return out


def _rule_scores(
    rules: RuleSet,
    week_items: list[Item],
    bands: dict[str, tuple[float, float]],
    prior_count: Counter[str],
    s: Strategy,
    labels: np.ndarray,
    items: Sequence[Item],
) -> np.ndarray:
    """Rule score of each item; the compliance class rests on this strategy's own inspected outcomes."""
    violations: Counter[str] = Counter()
    clean: Counter[str] = Counter()
    for i in s.known:
        if labels[i]:
            violations[items[i].importer] += 1
        else:
            clean[items[i].importer] += 1
    scores = np.zeros(len(week_items))
    for j, it in enumerate(week_items):
        score = 0
        for prefixes, weight in rules.watch:
            if it.hs6.startswith(prefixes):
                score += weight
        if rules.band is not None and it.hs6 in bands and it.net_mass > 0 and it.value > 0:
            lo, hi = bands[it.hs6]
            luv = math.log(it.value / it.net_mass)
            if luv < lo or luv > hi:
                score += rules.band[3]
        if rules.fta and features._partner_mismatch(it):
            score += rules.fta
        if rules.new_trader is not None and prior_count[it.importer] <= rules.new_trader[0]:
            score += rules.new_trader[1]
        klass = "C" if violations[it.importer] else "A" if clean[it.importer] >= 20 else "B"
        score += rules.classes.get(klass, 0)
        scores[j] = score
    return scores


def table(result: dict) -> str:
    """The summary as a plain-text table."""
    lines = [
        f"budget {result['budget_percent']:g} % of each week's declarations; warm-up {result['warmup_weeks']} weeks "
        f"by the rules; retrained every {result['retrain_weeks']} weeks; {len(result['weeks'])} weeks; "
        f"figures after the warm-up",
        f"{'strategy':<20} {'inspected':>9} {'found':>6} {'precision':>9} {'recall':>7} {'explore hit rate':>16}",
    ]
    for s in result["strategies"]:
        m = s["summary"]
        hit = "" if m["exploration_hit_rate"] is None else f"{m['exploration_hit_rate']:.3f}"
        lines.append(f"{s['name']:<20} {m['inspected']:>9} {m['found']:>6} {_f(m['precision']):>9} "
                     f"{_f(m['recall']):>7} {hit:>16}")  # fmt: skip
    return "\n".join(lines)


def _f(x: float | None) -> str:
    return "" if x is None else f"{x:.3f}"


COLOURS = ("#555555", "#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e")


def _svg(result: dict, key: str, title: str) -> str:
    w, h, pad = 760, 260, 40
    weeks = result["weeks"]
    n = len(weeks)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h + 30}" role="img">',
             f'<text x="{pad}" y="16" font-size="13">{html.escape(title)}</text>']  # fmt: skip
    for tick in (0, 0.25, 0.5, 0.75, 1.0):
        y = h - pad + 20 - tick * (h - 2 * pad)
        parts.append(f'<line x1="{pad}" x2="{w - 10}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="4" y="{y + 4:.1f}" font-size="10">{tick:.2f}</text>')
    warm = pad + (result["warmup_weeks"] - 0.5) * (w - pad - 10) / max(1, n - 1)
    parts.append(f'<line x1="{warm:.1f}" x2="{warm:.1f}" y1="20" y2="{h - pad + 20}" stroke="#999" '
                 'stroke-dasharray="4 3"/>')  # fmt: skip
    for c, s in enumerate(result["strategies"]):
        points = []
        for i, week in enumerate(s["weekly"]):
            value = week[key]
            if value is None:
                continue
            x = pad + i * (w - pad - 10) / max(1, n - 1)
            y = h - pad + 20 - value * (h - 2 * pad)
            points.append(f"{x:.1f},{y:.1f}")
        colour = COLOURS[c % len(COLOURS)]
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.6" points="{" ".join(points)}"/>')
        parts.append(f'<text x="{pad + 120 * c}" y="{h + 24}" font-size="11" fill="{colour}">'
                     f"{html.escape(s['name'])}</text>")  # fmt: skip
    parts.append("</svg>")
    return "".join(parts)


def report_html(result: dict) -> str:
    """A self-contained HTML report: the summary table, precision and recall per week as plots, the weekly
    figures."""
    rows = "".join(
        f"<tr><td>{html.escape(s['name'])}</td><td>{s['summary']['inspected']}</td><td>{s['summary']['found']}</td>"
        f"<td>{_f(s['summary']['precision'])}</td><td>{_f(s['summary']['recall'])}</td>"
        f"<td>{_f(s['summary']['exploration_hit_rate'])}</td></tr>"
        for s in result["strategies"]
    )
    weekly_head = "".join(f"<th>{html.escape(s['name'])}</th>" for s in result["strategies"])
    weekly = "".join(
        f"<tr><td>{week}</td>"
        + "".join(
            f"<td>{_f(s['weekly'][i]['precision'])} / {_f(s['weekly'][i]['recall'])}</td>" for s in result["strategies"]
        )
        + "</tr>"
        for i, week in enumerate(result["weeks"])
    )
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Selectivity replay</title>
<style>body{{font-family:sans-serif;max-width:900px;margin:1em auto}}td,th{{padding:2px 8px;text-align:right}}
td:first-child,th:first-child{{text-align:left}}table{{border-collapse:collapse}}tr:nth-child(even){{background:#f4f4f4}}
</style></head><body><h1>Selectivity replay, week by week</h1>
<p>{html.escape(table(result).splitlines()[0])}. Rules: rule set {html.escape(result["rules_version"])}.</p>
<table><thead><tr><th>strategy</th><th>inspected</th><th>violations found</th><th>precision</th><th>recall</th>
<th>exploration hit rate</th></tr></thead><tbody>{rows}</tbody></table>
{_svg(result, "precision", "Precision per week (violations among the inspected); dashed: end of warm-up")}
{_svg(result, "recall", "Recall per week (violations found / all violations of the week)")}
<h2>Per week: precision / recall</h2><table><thead><tr><th>week</th>{weekly_head}</tr></thead>
<tbody>{weekly}</tbody></table></body></html>
"""
