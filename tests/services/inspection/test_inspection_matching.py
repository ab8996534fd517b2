"""The decision rules on plain data: candidate choice, QR keys, seals, several containers, reasons in order."""

from __future__ import annotations

from typing import Any

import pytest

from services.inspection.matching import Expected, decide, near_patterns, parse_qr, pick, split_barcodes

CODE = "CSQU3054383"
OTHER = "MSCU5605860"


def expected(status: str = "released", *, containers: Any = ((CODE, ("CN1",)),), number: str = "KT-2026-000001",
             order: int = 1, decl_id: str = "d1") -> Expected:  # fmt: skip
    return Expected(decl_id, number, status, tuple(containers), "24C-123.45", "a" * 64, order)


def read(*codes: tuple[str, str], barcodes: Any = ()) -> dict[str, Any]:
    return {"container_codes": [{"code": c, "status": s} for c, s in codes],
            "barcodes": [{"type": t, "data": d} for t, d in barcodes]}  # fmt: skip


def run(reads: list[dict[str, Any]], decls: list[Expected], direction: str = "out", **kw: Any) -> Any:
    exact: dict[str, list[Expected]] = {}
    for d in decls:
        for number in d.container_numbers:
            exact.setdefault(number, []).append(d)
    by_number = {d.number: d for d in decls if d.number}
    return decide(direction=direction, reads=reads, exact=exact, near={}, by_number=by_number, **kw)


def test_qr_payloads():
    assert parse_qr("SGDECL:KT-2026-000123") == parse_qr(" SGDECL:KT-2026-000123 ")
    key = parse_qr("SGDECL:KT-2026-000123;sha256=" + "b" * 64)
    assert key is not None
    assert (key.number, key.body_sha256) == ("KT-2026-000123", "b" * 64)
    assert parse_qr("https://example.com") is None
    assert parse_qr("SGDECL:KT-2026-000123;sha256=short") is None
    seals, keys = split_barcodes([{"type": "CODE128", "data": "cn-1234 567"}, {"type": "QRCODE", "data": "hello"}])
    assert (seals, keys) == (["CN1234567"], [])


def test_near_patterns_cover_each_position():
    patterns = near_patterns(CODE)
    assert len(patterns) == 11
    assert patterns[0] == "_SQU3054383"
    assert patterns[-1] == "CSQU305438_"


def test_released_beats_an_older_exited_declaration_and_dead_ones_never_match():
    old = expected("exited", decl_id="old", order=1)
    new = expected("released", decl_id="new", order=5)
    cancelled = expected("cancelled", decl_id="gone", order=9)
    assert pick([old, new, cancelled]) == new
    assert pick([cancelled]) is None
    assert pick([old, new], prefer_number="KT-2026-000001") in (old, new)


def test_proceed_needs_everything_right():
    outcome = run([read((CODE, "verified"), barcodes=[("CODE128", "CN1")])], [expected()], plate="24C12345")
    assert (outcome.decision, outcome.reasons, outcome.match_kind) == ("proceed", [], "exact")
    assert outcome.evidence["plate_matches"] is True
    assert not outcome.mismatch


@pytest.mark.parametrize(
    ("status", "direction", "reasons"),
    [
        ("released", "in", []),
        ("cleared", "in", []),
        ("submitted", "in", []),
        ("draft", "in", ["declaration_not_cleared"]),
        ("cleared", "out", ["declaration_not_cleared"]),
        ("exited", "out", ["declaration_not_cleared"]),
    ],
)
def test_status_needed_by_direction(status, direction, reasons):
    assert run([read((CODE, "verified"))], [expected(status)], direction).reasons == reasons


def test_a_second_verified_container_not_on_the_declaration_holds():
    outcome = run([read((CODE, "verified")), read((OTHER, "verified"))], [expected()])
    assert outcome.reasons == ["container_not_on_declaration"]
    assert outcome.evidence["undeclared_containers"] == [OTHER]
    assert outcome.mismatch


def test_two_containers_of_one_declaration_proceed():
    decl = expected(containers=((CODE, ()), (OTHER, ())))
    assert run([read((CODE, "verified")), read((OTHER, "verified"))], [decl]).decision == "proceed"


def test_qr_of_another_declaration_holds_and_reasons_come_in_fixed_order():
    mine = expected("cleared")
    theirs = expected(containers=((OTHER, ()),), number="KT-2026-000009", decl_id="d9")
    reads = [read((CODE, "corrected"), barcodes=[("QRCODE", "SGDECL:KT-2026-000009"), ("CODE128", "XX9")])]
    outcome = run(reads, [mine, theirs])
    assert outcome.declaration == mine
    assert outcome.reasons == ["declaration_not_cleared", "code_unverified", "container_not_on_declaration",
                               "seal_mismatch"]  # fmt: skip


def test_qr_prefers_its_declaration_when_a_container_is_on_two():
    a = expected(decl_id="a", number="KT-2026-000001", order=9)
    b = expected(decl_id="b", number="KT-2026-000002", order=1)
    reads = [read((CODE, "verified"), barcodes=[("QRCODE", "SGDECL:KT-2026-000002")])]
    outcome = run(reads, [a, b])
    assert (outcome.declaration, outcome.decision) == (b, "proceed")


def test_camera_only_reasons_are_not_mismatches():
    assert not run([read((CODE, "check_digit_computed"))], [expected()]).mismatch
    assert run([read()], [expected()]).reasons == ["no_code_read"]
    assert run([read((OTHER, "verified"))], [expected()]).reasons == ["no_declaration"]
