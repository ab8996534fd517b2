"""What customs does with the partner's data: Form E claims verified against the certificates the exporting side
sent, mirror checks of the same consignment in either order, with the rule set's tolerances, on both sides."""

from __future__ import annotations

import copy
import datetime as dt
from decimal import Decimal

from tests.services.exchange.sides import certificate, pre_arrival


def hits(decl) -> dict[str, dict]:
    return {h["rule"]: h for h in decl["risk"]["reasons"]}


def test_form_e_claim_is_verified_against_the_received_certificate(side, import_body) -> None:
    side.receive("originCertificate", certificate(), "E263600001234567")
    decl = side.file(import_body)
    assert decl["duties"]["origin_check"]["status"] == "verified"
    assert decl["duties"]["lines"][0]["import_basis"] == "ACFTA"
    assert decl["duties"]["form_e_applied"] is True
    assert "origin_unverified" not in hits(decl)


def test_form_e_not_received_is_not_found_and_pays_mfn(side, import_body) -> None:
    decl = side.file(import_body)
    check = decl["duties"]["origin_check"]
    assert check["status"] == "not_found"
    assert "no Form E E263600001234567" in check["reasons"][0]
    assert decl["duties"]["lines"][0]["import_basis"] == "MFN"
    assert hits(decl)["origin_unverified"]["evidence"]["status"] == "not_found"


def test_form_e_mismatch_goods_quantity_and_validity(side, import_body) -> None:
    side.receive("originCertificate", certificate("E26HS0000001", hs="080550"), "E26HS0000001")
    side.receive("originCertificate", certificate("E26QT0000001", quantity="20000"), "E26QT0000001")
    side.receive("originCertificate", certificate("E26OLD000001", issued=dt.date(2025, 10, 1),
                                                  valid=dt.date(2026, 10, 1)), "E26OLD000001")  # fmt: skip

    def claim(number: str, issued: str = "2026-11-20") -> dict:
        body = copy.deepcopy(import_body)
        body["preferential_origin"] = {"form_e_number": number, "issued_on": issued}
        return side.file(body)

    goods = claim("E26HS0000001")["duties"]["origin_check"]
    assert goods["status"] == "mismatch"
    assert goods["reasons"] == ["HS 081090 is not on the certificate"]
    first = claim("E26QT0000001")  # 12,000 of the 20,000 kg certified
    assert first["duties"]["origin_check"]["status"] == "verified"
    second = claim("E26QT0000001")["duties"]["origin_check"]  # 12,000 more: only 8,000 remain
    assert second["status"] == "mismatch"
    assert second["reasons"] == ["HS 081090: 12000 KGM declared, 8000 remain of 20000 certified"]
    old = claim("E26OLD000001", issued="2025-10-01")
    assert old["duties"]["origin_check"]["status"] == "mismatch"
    assert "certificate valid 2025-10-01 to 2026-10-01" in old["duties"]["origin_check"]["reasons"][0]
    assert old["duties"]["lines"][0]["import_basis"] == "MFN"


def test_a_cancelled_declaration_gives_its_quantity_back(side, import_body) -> None:
    side.receive("originCertificate", certificate(quantity="12000"), "E263600001234567")
    first = side.file(import_body)
    assert first["duties"]["origin_check"]["status"] == "verified"
    resp = side.client.post(f"/api/v1/declarations/{first['id']}/cancel", json={"reason": "wrong truck"},
                            headers=side.trader)  # fmt: skip
    assert resp.status_code == 200, resp.text
    assert side.file(import_body)["duties"]["origin_check"]["status"] == "verified"


def test_certificate_arriving_after_the_declaration_reassesses_it(side, import_body) -> None:
    decl = side.file(import_body)
    assert decl["status"] == "submitted"
    assert decl["duties"]["origin_check"]["status"] == "not_found"
    side.receive("originCertificate", certificate(), "E263600001234567")
    after = side.read(decl["id"])
    assert after["duties"]["origin_check"]["status"] == "verified"
    assert after["duties"]["lines"][0]["import_basis"] == "ACFTA"


def test_mirror_check_partner_data_first(side, import_body) -> None:
    side.receive("preArrival", pre_arrival(gross="13500"), "HK-2026-000042")  # +3.8 % against our 13,000
    decl = side.file(import_body)
    hit = hits(decl)["mirror_discrepancy"]
    assert hit["evidence"] == [{"code": "gross_mass", "hs6": "081090", "detail": "gross mass differs by more than 2 %",
                                "ours": "13000", "theirs": "13500"}]  # fmt: skip
    # Shared with the exporting side, which flags its own declaration too.
    [sent] = side.sent("controlResult")
    assert sent.correlation_id == "HK-2026-000042"
    assert sent.payload["outcomeCode"] == "mirrorDiscrepancy"
    assert sent.payload["findings"][0]["code"] == "mirror_discrepancy"


def test_mirror_check_partner_data_later_reassesses(side, import_body) -> None:
    decl = side.file(import_body)
    assert "mirror_discrepancy" not in hits(decl)
    side.receive("preArrival", pre_arrival(value="11000.00"), "HK-2026-000042")  # +14.6 % in value
    after = side.read(decl["id"])
    assert hits(after)["mirror_discrepancy"]["evidence"][0]["code"] == "value"
    # At filing only the unverified Form E was shared; now the value discrepancy is too.
    first, second = side.sent("controlResult")
    assert [f["code"] for f in first.payload["findings"]] == ["origin_unverified"]
    assert {f["code"] for f in second.payload["findings"]} == {"mirror_discrepancy", "origin_unverified"}


def test_tolerances_of_the_rule_set(side, import_body) -> None:
    side.receive("preArrival", pre_arrival(gross="13250", value="10000.00"), "HK-2026-000042")  # +1.9 %, +4.0 %
    assert "mirror_discrepancy" not in hits(side.file(import_body))
    side.receive("preArrival", pre_arrival("HK-2026-000043", hs="081010", origin="VN"), "HK-2026-000043")
    body = copy.deepcopy(import_body)
    body["partner_reference"] = "HK-2026-000043"
    codes = [e["code"] for e in hits(side.file(body))["mirror_discrepancy"]["evidence"]]
    assert codes == ["hs6", "hs6"]  # different HS6: nothing else to compare line by line


def test_the_exporting_side_flags_its_declaration_from_the_partners_findings(side, export_body) -> None:
    decl = side.file(export_body)
    assert "mirror_discrepancy" not in hits(decl)
    findings = [{"code": "mirror_discrepancy", "detail": "gross mass differs by more than 2 % (HS 081090)",
                 "line": None, "ours": "13500", "theirs": "13000"}]  # fmt: skip
    side.receive("controlResult", {"declaration": {"id": "VN-IMPORT-1", "typeCode": "IM"},
                                   "outcomeCode": "mirrorDiscrepancy", "findings": findings,
                                   "decidedBy": "system:mirror", "dateTime": "2026-12-03T10:00:00+00:00"},
                 decl["number"])  # fmt: skip
    after = side.read(decl["id"])
    assert after["status"] == "submitted"  # fresh fruit from a new trader: in review, assessed again
    [evidence] = hits(after)["mirror_discrepancy"]["evidence"]
    assert (evidence["ours"], evidence["theirs"], evidence["reported_by"]) == ("13000", "13500", "partner")
    mirror = side.client.get(f"/api/v1/review/declarations/{decl['id']}/partner", headers=side.officers[0]).json()
    assert mirror["controls"][0]["outcome"] == "mirrorDiscrepancy"


def test_partner_side_by_side_for_officers(side, import_body) -> None:
    side.receive("preArrival", pre_arrival(gross="14000"), "HK-2026-000042")
    decl = side.file(import_body)
    view = side.client.get(f"/api/v1/review/declarations/{decl['id']}/partner", headers=side.officers[0]).json()
    assert view["received"] is True
    [row] = view["rows"]
    mass = next(f for f in row["fields"] if f["name"] == "gross_mass_kg")
    assert (mass["ours"], mass["theirs"], mass["differs"]) == ("13000", "14000", True)
    quantity = next(f for f in row["fields"] if f["name"] == "quantity")
    assert quantity["differs"] is False
    assert side.client.get(f"/api/v1/review/declarations/{decl['id']}/partner", headers=side.trader).status_code == 403


def test_values_in_different_currencies_are_compared_in_vnd(side, import_body) -> None:
    from services.declarations.tariff import DEMO_RATES

    # The partner declared the same value in CNY: converted at our rates, within 5 %; ten times it is not.
    same = (Decimal("9600.00") * DEMO_RATES["USD"] / DEMO_RATES["CNY"]).quantize(Decimal("0.01"))
    side.receive("preArrival", pre_arrival(value=str(same), currency="CNY"), "HK-2026-000042")
    assert "mirror_discrepancy" not in hits(side.file(import_body))
    side.receive("preArrival", pre_arrival("HK-2026-000043", value=str(same * 10), currency="CNY"), "HK-2026-000043")
    body = copy.deepcopy(import_body)
    body["partner_reference"] = "HK-2026-000043"
    [finding] = hits(side.file(body))["mirror_discrepancy"]["evidence"]
    assert finding["code"] == "value"
