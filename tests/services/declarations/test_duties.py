"""Duty assessment against hand-computed examples: ACFTA vs MFN, VAT on value plus duty, export duty, rounding."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from services.declarations.duties import Rates, assess, form_e_valid, vnd

DAY = dt.date(2026, 11, 28)
TARIFF = {
    "08109020": Rates("08109020", mfn=Decimal(30), acfta=Decimal(0), vat=Decimal(5), export=Decimal(0)),
    "84314990": Rates("84314990", mfn=Decimal(3), acfta=Decimal(0), vat=Decimal(10), export=Decimal(0)),
    "26011110": Rates("26011110", mfn=Decimal(0), acfta=None, vat=Decimal(10), export=Decimal(40)),
}
FX = {"USD": Decimal("25400"), "CNY": Decimal("3560.5")}


def body(kind: str = "import", *, form_e: str | None = "2026-11-20", items: list[dict] | None = None) -> dict:
    doc = {
        "kind": kind,
        "items": items or [{"hs_code": "08109020", "origin": "CN", "customs_value": "9600.00", "currency": "USD"}],
    }
    if form_e:
        doc["preferential_origin"] = {"form_e_number": "E1", "issued_on": form_e}
    return doc


def test_acfta_rate_applies_to_chinese_origin_with_valid_form_e():
    bill = assess(body(), registration_date=DAY, tariff=TARIFF, fx=FX)
    line = bill.lines[0]
    # 9,600 USD x 25,400 = 243,840,000 VND; ACFTA 0 %; VAT 5 % of 243,840,000 = 12,192,000.
    assert line.value_vnd == 243_840_000
    assert (line.import_basis, line.import_duty_vnd, line.vat_vnd) == ("ACFTA", 0, 12_192_000)
    assert bill.total_vnd == 12_192_000
    assert bill.form_e_applied
    assert bill.assessed


def test_mfn_applies_without_form_e():
    bill = assess(body(form_e=None), registration_date=DAY, tariff=TARIFF, fx=FX)
    line = bill.lines[0]
    # MFN 30 % of 243,840,000 = 73,152,000; VAT 5 % of (243,840,000 + 73,152,000) = 15,849,600.
    assert (line.import_basis, line.import_duty_vnd, line.vat_vnd) == ("MFN", 73_152_000, 15_849_600)
    assert bill.total_vnd == 89_001_600


def test_mfn_applies_to_non_chinese_line_even_with_form_e():
    items = [{"hs_code": "08109020", "origin": "TH", "customs_value": "100", "currency": "USD"}]
    line = assess(body(items=items), registration_date=DAY, tariff=TARIFF, fx=FX).lines[0]
    # 100 x 25,400 = 2,540,000; MFN 30 % = 762,000; VAT 5 % of 3,302,000 = 165,100.
    assert (line.import_basis, line.import_duty_vnd, line.vat_vnd) == ("MFN", 762_000, 165_100)


def test_at_hekou_a_form_e_certifies_vietnamese_origin():
    """The importing side is China: a Form E received there certifies goods of Vietnamese origin (the partner's)."""
    vietnamese = [{"hs_code": "08109020", "origin": "VN", "customs_value": "9600.00", "currency": "USD"}]
    line = assess(body(items=vietnamese), registration_date=DAY, tariff=TARIFF, fx=FX, form_e_origin="VN").lines[0]
    assert (line.import_basis, line.import_duty_vnd) == ("ACFTA", 0)
    # Chinese goods imported into China under a Form E get no preference.
    line = assess(body(), registration_date=DAY, tariff=TARIFF, fx=FX, form_e_origin="VN").lines[0]
    assert line.import_basis == "MFN"


def test_expired_or_future_form_e_is_not_applied():
    assert not form_e_valid(body(form_e="2025-11-27"), DAY)  # 366 days old
    assert form_e_valid(body(form_e="2025-11-28"), DAY)  # exactly 12 months
    assert not form_e_valid(body(form_e="2026-11-29"), DAY)  # issued after registration
    bill = assess(body(form_e="2025-01-01"), registration_date=DAY, tariff=TARIFF, fx=FX)
    assert bill.lines[0].import_basis == "MFN"
    assert not bill.form_e_applied


def test_export_duty_and_no_vat_on_exports():
    items = [{"hs_code": "26011110", "origin": "VN", "customs_value": "1234.57", "currency": "USD"}]
    line = assess(body("export", form_e=None, items=items), registration_date=DAY, tariff=TARIFF, fx=FX).lines[0]
    # 1,234.57 x 25,400 = 31,358,078; 40 % = 12,543,231.2 -> 12,543,231.
    assert line.value_vnd == 31_358_078
    assert (line.export_duty_vnd, line.vat_vnd, line.import_duty_vnd) == (12_543_231, 0, 0)


def test_rounding_is_per_line_half_up_then_summed():
    items = [
        {"hs_code": "84314990", "origin": "CN", "customs_value": "0.05", "currency": "CNY"},
        {"hs_code": "84314990", "origin": "CN", "customs_value": "0.05", "currency": "CNY"},
    ]
    bill = assess(body(form_e=None, items=items), registration_date=DAY, tariff=TARIFF, fx=FX)
    # Each line: 0.05 x 3,560.5 = 178.025 -> 178; MFN 3 % = 5.34 -> 5; VAT 10 % of 183 = 18.3 -> 18.
    assert [(x.value_vnd, x.import_duty_vnd, x.vat_vnd) for x in bill.lines] == [(178, 5, 18), (178, 5, 18)]
    assert bill.total_vnd == 46
    assert vnd(Decimal("2.5")) == 3
    assert vnd(Decimal("-2.5")) == -3


def test_vnd_lines_need_no_rate_and_missing_rates_are_reported_not_guessed():
    items = [
        {"hs_code": "08109020", "origin": "CN", "customs_value": "1000000", "currency": "VND"},
        {"hs_code": "08109020", "origin": "CN", "customs_value": "10", "currency": "EUR"},
        {"hs_code": "99999999", "origin": "CN", "customs_value": "10", "currency": "USD"},
    ]
    bill = assess(body(items=items), registration_date=DAY, tariff=TARIFF, fx=FX)
    assert bill.lines[0].value_vnd == 1_000_000
    assert not bill.lines[0].problems
    assert "no exchange rate for EUR" in bill.lines[1].problems[0]
    assert "not in the tariff" in bill.lines[2].problems[0]
    assert not bill.assessed
