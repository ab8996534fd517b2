"""How the active learned model joins the rules (the rule set's `model:` block) and how exploration draws: pure
functions of the risk engine, no database."""

from __future__ import annotations

import pytest

from services.declarations.risk import RiskInput, RuleSetError, evaluate, exploration_rate, parse_rule_set

RULES = """version: 't.comb'
seed: 5
target: {green: 60, yellow: 35, red: 5}
thresholds: {yellow: 30, red: 75}
model: {threshold: 0.5, weight: 10, select: yellow, red_at: 0.9, exploration: 0.1}
rules:
  - {id: ore, type: hs_watchlist, prefixes: ['26'], weight: 80}
"""
SPEC = parse_rule_set(RULES)


def data(p: float | None, hs: str = "84314990", n: int = 1) -> RiskInput:
    return RiskInput(declaration_id=f"d-{n}", body_sha256="0" * 64,
                     body={"kind": "import", "items": [{"hs_code": hs, "origin": "CN"}]}, prior_declarations=50,
                     compliance_class="B", model_probability=p,
                     model_version="m1" if p is not None else None)  # fmt: skip


def test_threshold_weight_select_and_red_at() -> None:
    low = evaluate(SPEC, data(0.2), draw_key=b"k")
    assert (low.score, low.model_selected, low.rules_channel) == (0, False, "green")
    mid = evaluate(SPEC, data(0.6), draw_key=b"k")
    assert (mid.channel, mid.score, mid.model_selected) == ("yellow", 10, True)  # select: yellow, score 10 < 30
    assert next(r for r in mid.reasons if r["rule"] == "model")["weight"] == 10
    high = evaluate(SPEC, data(0.95), draw_key=b"k")
    assert high.channel == "red"
    ore = evaluate(SPEC, data(0.1, hs="26011110"), draw_key=b"k")
    assert (ore.channel, ore.rules_channel) == ("red", "red")  # the model never lowers the rules' channel
    # Without an active model the block changes nothing.
    assert evaluate(SPEC, data(None), draw_key=b"k").channel == "green"


def test_exploration_rate_gives_the_share_of_inspections() -> None:
    rate = exploration_rate(SPEC)
    # 40 % selected by target; exploring `rate` of the 60 % green makes 10 % of all inspections exploratory.
    explored = 0.6 * rate
    assert explored / (0.4 + explored) == pytest.approx(0.10)
    no_target = SPEC.model_copy(update={"target": {}})
    assert exploration_rate(no_target) == pytest.approx(0.10)


def test_exploration_draws_among_unselected_only_and_depends_on_the_key() -> None:
    results = [evaluate(SPEC, data(0.1, n=n), draw_key=b"secret") for n in range(2000)]
    explored = [r for r in results if r.explored]
    assert abs(len(explored) / len(results) - exploration_rate(SPEC)) < 0.03
    assert all(r.channel == "yellow" and r.rules_channel == "green" for r in explored)
    # Never a selected declaration, never without an active model.
    assert not any(evaluate(SPEC, data(0.7, n=n), draw_key=b"secret").explored for n in range(300))
    assert not any(evaluate(SPEC, data(None, n=n), draw_key=b"secret").explored for n in range(300))
    # Another key, other draws: nobody without the key predicts them.
    other = [evaluate(SPEC, data(0.1, n=n), draw_key=b"other").explored for n in range(2000)]
    assert other != [r.explored for r in results]


def test_a_model_block_must_be_able_to_change_a_channel() -> None:
    with pytest.raises(RuleSetError, match="model"):
        parse_rule_set(RULES.replace("weight: 10, select: yellow, red_at: 0.9, ", ""))
    with pytest.raises(RuleSetError, match="red_at"):
        parse_rule_set(RULES.replace("red_at: 0.9", "red_at: 0.3"))
