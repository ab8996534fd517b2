"""ISO 6346 helpers: check digit, validation, bounded position-aware repair, one-substitution test."""

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ocr import iso6346
from ocr.parse import status_of
from ocr.synth import random_code


@pytest.mark.parametrize("code", ["CSQU3054383", "MSCU1234566", "TGHU9628382", "MAEU4682502"])
def test_known_codes_are_valid(code: str) -> None:
    assert iso6346.is_valid(code)
    assert iso6346.calc_check_digit(code[:10]) == code[10]


def test_wrong_check_digit_and_shape_are_invalid() -> None:
    assert not iso6346.is_valid("CSQU3054384")
    assert not iso6346.is_valid("CSQA3054383")  # category must be U, J or Z
    assert not iso6346.is_valid("CSQU305438")


def test_clean_read_is_verified_without_changes() -> None:
    rep = iso6346.repair("CSQU 305438 3")
    assert rep == iso6346.Repair("CSQU3054383", 0, True)
    assert status_of(rep) == "verified"


def test_confusions_are_repaired_by_position_only() -> None:
    # O in the serial becomes 0; 5 in the owner code becomes S; each counts as one change.
    rep = iso6346.repair("C5QU3O54383")
    assert rep is not None
    assert (rep.code, rep.changes, status_of(rep)) == ("CSQU3054383", 2, "corrected")


def test_repair_is_bounded() -> None:
    assert iso6346.repair("C5QU3O5438B") is None  # three substitutions needed


def test_missing_check_digit_is_computed_not_verified() -> None:
    rep = iso6346.repair("CSQU305438")
    assert rep is not None
    assert not rep.check_read
    assert status_of(rep) == "check_digit_computed"
    assert rep.code == "CSQU3054383"


def test_wrong_check_digit_fails_and_is_never_forced() -> None:
    # A misread serial digit (8 read as 3): repair must not hunt for a substitution that makes it validate.
    rep = iso6346.repair("CSQU3054333")
    assert rep is not None
    assert rep.code == "CSQU3054333"
    assert status_of(rep) == "failed"


def test_category_accepts_only_u_j_z_or_a_2() -> None:
    assert iso6346.repair("CSQ23054383") is not None  # 2 -> Z
    assert iso6346.repair("CSQA3054383") is None


@given(st.integers(min_value=0, max_value=2**32), st.integers(min_value=4, max_value=10))
def test_a_wrong_digit_is_never_verified_or_corrected(seed: int, pos: int) -> None:
    """One wrong digit in the serial or check digit always fails: repair never searches for a passing variant."""
    rng = random.Random(seed)
    code = random_code(rng)
    wrong = rng.choice([c for c in "0123456789" if c != code[pos]])
    misread = code[:pos] + wrong + code[pos + 1 :]
    rep = iso6346.repair(misread)
    assert rep is not None
    assert (rep.code, rep.changes, status_of(rep)) == (misread, 0, "failed")


@given(st.integers(min_value=0, max_value=2**32), st.integers(min_value=0, max_value=2))
def test_a_wrong_letter_is_left_as_read(seed: int, pos: int) -> None:
    """A letter read as another letter is not touched by repair (only class-changing confusions are fixed).

    ISO 6346 itself cannot catch every such misread (letter values 11 apart, e.g. F/P, A/K, weigh the same), so
    an officer still compares the plate with the declaration; repair just never adds to that risk.
    """
    rng = random.Random(seed)
    code = random_code(rng)
    wrong = rng.choice([c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ" if c != code[pos]])
    misread = code[:pos] + wrong + code[pos + 1 :]
    rep = iso6346.repair(misread)
    assert rep is not None
    assert (rep.code, rep.changes) == (misread, 0)


def test_differs_by_one_substitution() -> None:
    assert iso6346.differs_by_one_substitution("MSCU1234566", "MSCU1234586")
    assert not iso6346.differs_by_one_substitution("MSCU1234566", "MSCU1234566")
    assert not iso6346.differs_by_one_substitution("MSCU1234566", "MSCU1234588")
    assert not iso6346.differs_by_one_substitution("MSCU1234566", "MSCU123456")


def test_size_type_shape() -> None:
    assert iso6346.is_size_type("45G1")
    assert iso6346.is_size_type("22U1")
    assert not iso6346.is_size_type("TARE")
    assert not iso6346.is_size_type("4561")
