"""Arrival-slot booking: booked trucks come inside their slot, slots hold what they say, no-shows never come, and
booking with capacity matched to the gate's throughput cuts the wait."""

from __future__ import annotations

import numpy as np
import pytest

from simulator.gate import GateSource, compile_gate
from simulator.load import offered_load
from simulator.runner import compare, run_replications
from simulator.scenario import ScenarioError, load_raw, parse_scenario

BOOK = {"share": 1.0, "slot_minutes": 60, "capacity_per_slot": 55, "no_show": 0.0}


def _with(raw: dict, booking: dict) -> dict:
    return {**raw, "booking": booking}


@pytest.mark.parametrize(
    ("booking", "message"),
    [
        ({**BOOK, "share": 1.5}, "booking.share: Input should be less than or equal to 1"),
        ({**BOOK, "slot_minutes": 0}, "booking.slot_minutes: Input should be greater than or equal to 1"),
        ({**BOOK, "capacity_per_slot": 0}, "booking.capacity_per_slot: Input should be greater than or equal to 1"),
        ({**BOOK, "no_show": -0.1}, "booking.no_show: Input should be greater than or equal to 0"),
        ({**BOOK, "slot_minutes": 900}, "booking.slot_minutes: 900 is longer than the goods hours (07:00–19:00)"),
        ({**BOOK, "slots": 3}, "booking.slots: Extra inputs are not permitted"),
    ],
)
def test_booking_is_validated_with_its_path(booking: dict, message: str) -> None:
    with pytest.raises(ScenarioError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_scenario(_with(load_raw("tet-peak"), booking), "tet-peak")


def test_booked_trucks_arrive_in_their_slots_and_no_show_trucks_never_do() -> None:
    raw = _with(load_raw("tet-peak"), {"share": 1.0, "slot_minutes": 30, "capacity_per_slot": 30, "no_show": 0.1})
    gate = compile_gate(parse_scenario(raw))
    plain = GateSource(compile_gate(parse_scenario(load_raw("tet-peak"))), 9, 0)
    src = GateSource(gate, 9, 0)
    for day in range(3):
        b = src(day)
        t = np.asarray(b.arrival_min) - day * 1440.0
        assert np.all(np.diff(b.arrival_min) >= 0)
        # Every truck found a slot (24 slots × 30 > demand): all arrive in goods hours, at most 30 per slot.
        assert t.min() >= 7 * 60
        assert t.max() < 19 * 60
        assert np.bincount(((t - 420) // 30).astype(int)).max() <= 30
        # About 10 % booked no-shows: fewer trucks than without booking, the same demand otherwise.
        n, n0 = len(b.arrival_min), len(plain(day).arrival_min)
        assert 0.85 * n0 < n < 0.95 * n0
    assert offered_load(gate)["document_check"].arrivals_per_day == pytest.approx(600 * 0.9, rel=0.01)


def test_slots_go_first_come_first_served_and_the_rest_come_unbooked() -> None:
    # 12 one-hour slots of 10 and ~600 trucks: the 120 that would come first get the slots (the ~20 who would
    # wait at the closed gate before 07:00 among them); the others keep their own arrival times.
    raw = _with(load_raw("tet-peak"), {"share": 1.0, "slot_minutes": 60, "capacity_per_slot": 10})
    b = GateSource(compile_gate(parse_scenario(raw)), 4, 0)(0)
    base = GateSource(compile_gate(parse_scenario(load_raw("tet-peak"))), 4, 0)(0)
    hours = np.bincount((np.asarray(b.arrival_min) // 60).astype(int), minlength=24)
    base_hours = np.bincount((np.asarray(base.arrival_min) // 60).astype(int), minlength=24)
    assert len(b.arrival_min) == len(base.arrival_min)  # nobody dropped without no-shows
    assert base_hours[6] > 10
    assert hours[6] == 0
    # Late in the day the slots are long gone: the same trucks at the same times.
    late = [t for t in base.arrival_min if t >= 17 * 60]
    assert [t for t in b.arrival_min if t >= 17 * 60 and t in set(late)] == late


def test_booking_matched_to_throughput_cuts_the_wait() -> None:
    """tet-peak: ~600 trucks a day in 12 goods hours; slots of 55 an hour (a little above the 50 an hour it clears)
    take the peak hours' queue at the entry lanes away, and with it part of every truck's time in the gate."""
    raw = load_raw("tet-peak")
    kw = {"seed": 7, "replications": 8, "days": 6, "workers": 1}
    without = run_replications(raw, **kw)
    booked = run_replications(_with(raw, BOOK), **kw)
    diff = compare(without, booked)
    assert diff["demand_per_day"]["mean"] == 0  # the same trucks
    assert diff["wait_min.entry_gate.inbound"]["ci_high"] < 0
    assert diff["time_in_system_min.all.mean"]["ci_high"] < 0
