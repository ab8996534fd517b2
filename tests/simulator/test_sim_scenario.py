"""Scenario files: shipped ones load and cite a source (or `assumed`) for every value; bad ones fail by path."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulator.scenario import (
    ScenarioError,
    load_raw,
    load_scenario,
    parse_scenario,
    parse_set,
    set_path,
    shipped_scenarios,
    unsourced_paths,
)

SHIPPED = ("baseline-2025", "tet-peak", "jan-2021-cap", "smart-gate-2030", "scanner-outage")


def test_every_required_scenario_is_shipped() -> None:
    assert {p.stem for p in shipped_scenarios()} >= set(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_scenario_is_valid_and_every_value_has_a_source(name: str) -> None:
    raw = load_raw(name)
    scenario = parse_scenario(raw, name)
    assert scenario.name == name
    assert unsourced_paths(raw) == []


def test_shipped_demand_matches_the_published_figures() -> None:
    def per_day(name: str, direction: str | None = None) -> float:
        s = load_scenario(name)
        return s.demand_multiplier * sum(
            c.trucks_per_day for c in s.classes.values() if direction in (None, c.direction)
        )

    assert per_day("baseline-2025") == pytest.approx(390)
    assert per_day("baseline-2025", "export") == pytest.approx(100)
    assert per_day("baseline-2025", "import") == pytest.approx(290)
    assert per_day("tet-peak") == pytest.approx(600, rel=0.01)
    assert per_day("smart-gate-2030") == pytest.approx(780)
    assert load_scenario("jan-2021-cap").acceptance_cap_per_day == {"fruit": 125}
    s = load_scenario("smart-gate-2030")
    assert (s.stages.entry_gate.mode, s.stages.document_check.auto_green, s.stages.xray.servers) == ("ocr", True, 2)


def _base() -> dict:
    return load_raw("baseline-2025")


@pytest.mark.parametrize(
    ("edit", "path", "fragment"),
    [
        (lambda r: r["stages"]["xray"].update(scaners=2), "stages.xray.scaners", "Extra inputs"),
        (
            lambda r: r["classes"]["import_general"].update(trucks_per_day=-5),
            "classes.import_general.trucks_per_day",
            "greater than or equal to 0",
        ),
        (lambda r: r["stages"].pop("weighbridge"), "stages.weighbridge", "Field required"),
        (lambda r: r["stages"]["xray"].update(servers=0), "stages.xray.servers", "greater than or equal to 1"),
        (lambda r: r["profiles"].update(daytime=[1, 2, 3]), "profiles", "24 hourly values"),
        (
            lambda r: r["classes"]["export_fruit"].update(profile="night"),
            "classes.export_fruit.profile",
            "unknown profile",
        ),
        (lambda r: r.update(channels={"green": 0.5, "yellow": 0.2, "red": 0.1}), "channels", "must be 1"),
        (lambda r: r["sources"].update({"stages.xray.speed": "assumed"}), "sources.stages.xray.speed", "no such path"),
    ],
)
def test_bad_scenario_error_names_the_path(edit, path: str, fragment: str) -> None:  # type: ignore[no-untyped-def]
    raw = _base()
    edit(raw)
    with pytest.raises(ScenarioError) as e:
        parse_scenario(raw, "bad.yaml")
    assert str(e.value).startswith("bad.yaml: ")
    assert path in str(e.value)
    assert fragment in str(e.value)


def test_extends_merges_over_the_base(tmp_path: Path) -> None:
    f = tmp_path / "mine.yaml"
    f.write_text("extends: baseline-2025\nname: mine\nstages:\n  xray: {servers: 3}\n", encoding="utf-8")
    s = load_scenario(f)
    assert s.name == "mine"
    assert s.stages.xray.servers == 3
    assert s.stages.xray.mtbf_hours == load_scenario("baseline-2025").stages.xray.mtbf_hours


def test_unreadable_and_invalid_yaml_are_scenario_errors(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="cannot read"):
        load_raw(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n", encoding="utf-8")
    with pytest.raises(ScenarioError, match="not valid YAML"):
        load_raw(bad)


def test_unsourced_values_are_reported() -> None:
    raw = _base()
    del raw["sources"]["yard.capacity_trucks"]
    assert unsourced_paths(raw) == ["yard.capacity_trucks"]


def test_set_path_and_parse_set() -> None:
    path, values = parse_set("stages.xray.servers=1,2,3")
    assert (path, values) == ("stages.xray.servers", [1, 2, 3])
    raw = _base()
    changed = set_path(raw, path, 2)
    assert changed["stages"]["xray"]["servers"] == 2
    assert raw["stages"]["xray"]["servers"] == 1  # the original is untouched
    with pytest.raises(ScenarioError, match="no such path"):
        set_path(raw, "stages.laser.servers", 1)
    with pytest.raises(ScenarioError, match="PATH=V1"):
        parse_set("stages.xray.servers")
