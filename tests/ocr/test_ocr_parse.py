"""Finding codes in recognised lines: layouts, token alignment, no fake codes from weight plates."""

from ocr.parse import Line, find_codes, group_rows


def line(text: str, box: tuple[float, float, float, float], vertical: bool = False) -> Line:
    return Line(text, tuple(0.95 for _ in text), box, vertical)


def test_one_line_with_size_type() -> None:
    found = find_codes([line("MSCU 123456 6 45G1", (100, 50, 600, 100))])
    assert [(c.code, c.status, c.size_type) for c in found] == [("MSCU1234566", "verified", "45G1")]


def test_two_line_layout() -> None:
    lines = [
        line("MSCU", (100, 50, 220, 100)),
        line("123456 6", (100, 110, 330, 160)),
        line("22G1", (100, 175, 220, 225)),
    ]
    found = find_codes(lines)
    assert found[0].code == "MSCU1234566"
    assert found[0].layout == "two_line"
    assert found[0].size_type == "22G1"


def test_vertical_column_runs_into_size_type() -> None:
    found = find_codes([line("MSCU123456645G1", (20, 10, 60, 590), vertical=True)])
    assert (found[0].code, found[0].layout, found[0].size_type) == ("MSCU1234566", "vertical", "45G1")


def test_weight_plate_makes_no_codes() -> None:
    plate = [
        line("MAX GR0SS 30 480 KG", (100, 300, 400, 330)),
        line("67 200 LB", (100, 335, 250, 365)),
        line("TARE 2 200 KG", (100, 370, 300, 400)),
        line("4 850 LB", (100, 405, 250, 435)),
        line("NET 28 280 KG", (100, 440, 300, 470)),
        line("CU CAP 33 2 CU M", (100, 475, 330, 505)),
    ]
    assert find_codes(plate) == []


def test_breaks_only_where_stencils_have_them() -> None:
    # "MS CU123 4566" splits the owner code: not a stencil layout, so not a code.
    assert find_codes([line("MS CU123 4566", (0, 0, 500, 50))]) == []


def test_boxed_check_digit_detected_apart_is_joined() -> None:
    rows = group_rows(
        [line("MSCU", (100, 50, 220, 100)), line("123456", (240, 50, 420, 100)), line("6", (440, 60, 460, 90))]
    )
    assert [r.text for r in rows] == ["MSCU 123456 6"]
    assert find_codes(rows)[0].status == "verified"


def test_verified_ranks_before_failed() -> None:
    found = find_codes([line("MSCU 123456 6", (0, 0, 500, 50)), line("MSCU 123458 6", (0, 300, 500, 350))])
    assert [c.status for c in found] == ["verified", "failed"]
