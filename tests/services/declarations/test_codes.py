"""Property tests of the identifier checks (ISO 6346, Vietnamese MST, Chinese USCC) against python-stdnum."""

from __future__ import annotations

import string

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from pydantic import ValidationError
from stdnum import iso6346
from stdnum.cn import uscc
from stdnum.vn import mst

from services.declarations import codes
from services.declarations.schemas import Container

LETTERS = string.ascii_uppercase
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"

owner_codes = st.text(LETTERS, min_size=3, max_size=3)
categories = st.sampled_from("UJZ")
serials = st.text(string.digits, min_size=6, max_size=6)


@st.composite
def container_numbers(draw: st.DrawFn) -> str:
    """A valid ISO 6346 container number (check digit computed by stdnum)."""
    stem = draw(owner_codes) + draw(categories) + draw(serials)
    return stem + iso6346.calc_check_digit(stem)


@given(container_numbers())
def test_valid_container_numbers_pass(number: str) -> None:
    assert codes.check_container_number(number) is None


@given(container_numbers(), st.sampled_from(string.digits))
def test_any_other_check_digit_is_a_check_digit_error(number: str, digit: str) -> None:
    assume(digit != number[-1])
    assert codes.check_container_number(number[:-1] + digit) == "iso6346.check_digit"


@given(
    st.text(LETTERS, min_size=3, max_size=3), st.sampled_from(LETTERS), st.text(string.digits, min_size=7, max_size=7)
)
def test_container_check_agrees_with_stdnum(owner: str, category: str, digits: str) -> None:
    """For every well-shaped candidate, our verdict is stdnum's (restricted to the U/J/Z categories of ISO 6346)."""
    number = owner + category + digits
    ours = codes.check_container_number(number) is None
    assert ours == (iso6346.is_valid(number) and category in "UJZ")


@given(st.text(string.ascii_letters + string.digits + " -", max_size=14))
def test_container_check_never_accepts_what_stdnum_rejects(text: str) -> None:
    if codes.check_container_number(text) is None:
        assert iso6346.is_valid(text)


@given(container_numbers())
def test_container_model_normalises_spacing_and_case(number: str) -> None:
    spaced = f"{number[:4].lower()} {number[4:10]} {number[10]}"
    assert Container(number=spaced).number == number


@given(container_numbers(), st.sampled_from(string.digits))
def test_container_model_reports_the_check_digit_code(number: str, digit: str) -> None:
    assume(digit != number[-1])
    with pytest.raises(ValidationError) as info:
        Container(number=number[:-1] + digit)
    assert [e["type"] for e in info.value.errors()] == ["iso6346.check_digit"]


# --- Vietnamese MST -------------------------------------------------------------------------------------------


@st.composite
def mst_numbers(draw: st.DrawFn) -> str:
    """A valid 10-digit MST, or a 10-3 branch number."""
    stem = draw(st.text(string.digits, min_size=9, max_size=9))
    assume(stem[2:9] != "0000000")
    check = mst.calc_check_digit(stem)
    assume(len(check) == 1)  # a weighted sum ≡ 0 (mod 11) gives "10": no valid MST has that stem
    number = stem + check
    if draw(st.booleans()):
        branch = draw(st.text(string.digits, min_size=3, max_size=3))
        assume(branch != "000")
        number += "-" + branch
    return number


@given(mst_numbers())
def test_valid_mst_pass(number: str) -> None:
    assert codes.check_vn_tax_id(number) is None


@given(mst_numbers(), st.sampled_from(string.digits))
def test_mst_with_another_check_digit_fails(number: str, digit: str) -> None:
    assume(digit != number[9])
    assert codes.check_vn_tax_id(number[:9] + digit + number[10:]) == "vn_mst.check_digit"


@given(st.from_regex(r"\A\d{10}(-\d{3})?\Z"))
def test_mst_check_agrees_with_stdnum(number: str) -> None:
    assert (codes.check_vn_tax_id(number) is None) == mst.is_valid(number)


@given(st.text(string.digits + "-. ", max_size=16))
def test_mst_rejects_other_shapes(text: str) -> None:
    """Only 'dddddddddd' or 'dddddddddd-ddd' are accepted, even where stdnum would tolerate separators."""
    if codes.check_vn_tax_id(text) is None:
        assert mst.is_valid(text)
        assert len(text) in (10, 14)
        assert text[:10].isdigit()


# --- Chinese unified social credit code -------------------------------------------------------------------------


@st.composite
def uscc_numbers(draw: st.DrawFn) -> str:
    """A valid 18-character USCC (GB 32100-2015), check character computed by stdnum."""
    stem = draw(st.text(string.digits, min_size=8, max_size=8)) + draw(st.text(USCC_ALPHABET, min_size=9, max_size=9))
    return stem + uscc.calc_check_digit(stem)


@given(uscc_numbers())
def test_valid_uscc_pass(number: str) -> None:
    assert codes.check_cn_tax_id(number) is None


@given(uscc_numbers(), st.sampled_from(USCC_ALPHABET))
def test_uscc_with_another_check_character_fails(number: str, char: str) -> None:
    assume(char != number[-1])
    assert codes.check_cn_tax_id(number[:-1] + char) == "cn_uscc.check_character"


@given(st.text(USCC_ALPHABET, min_size=18, max_size=18))
def test_uscc_check_agrees_with_stdnum(number: str) -> None:
    assert (codes.check_cn_tax_id(number) is None) == uscc.is_valid(number)


@given(st.text(string.ascii_letters + string.digits + " -", max_size=20))
def test_uscc_never_accepts_what_stdnum_rejects(text: str) -> None:
    if codes.check_cn_tax_id(text) is None:
        assert uscc.is_valid(text)
        assert len(text) == 18


@pytest.mark.parametrize(
    ("check", "value", "code"),
    [
        (codes.check_container_number, "CSQU305438", "iso6346.format"),
        (codes.check_container_number, "CSQR3054383", "iso6346.format"),
        (codes.check_container_number, "CSQU3054384", "iso6346.check_digit"),
        (codes.check_vn_tax_id, "010023348", "vn_mst.format"),
        (codes.check_vn_tax_id, "0100233489", "vn_mst.check_digit"),
        (codes.check_vn_tax_id, "0100233488-000", "vn_mst.format"),
        (codes.check_vn_tax_id, "0100000000", "vn_mst.format"),
        (codes.check_cn_tax_id, "91110000600037341", "cn_uscc.format"),
        (codes.check_cn_tax_id, "91110000600037341I", "cn_uscc.format"),
        (codes.check_cn_tax_id, "A1110000600037341L", "cn_uscc.format"),
        (codes.check_cn_tax_id, "91110000600037341M", "cn_uscc.check_character"),
    ],
)
def test_error_codes_name_the_problem(check, value: str, code: str) -> None:
    assert check(value) == code


def test_code_lists_hold_what_the_example_uses() -> None:
    assert {"VN", "CN"} <= codes.countries()
    assert {"USD", "VND", "CNY"} <= codes.currencies()
    assert codes.IMPORT_PROCEDURES.isdisjoint(codes.EXPORT_PROCEDURES)
