"""The message types: our events become schema-valid messages; what the partner sends reaches the declarations."""

from __future__ import annotations

import datetime as dt

import pytest

from services.exchange.messages import MESSAGE_TYPES
from services.exchange.registry import Rejected
from services.kernel.database import utcnow
from tests.services.exchange.sides import PARTNER, certificate, pre_arrival, validate


def test_every_type_has_a_draft_2020_12_schema_and_both_directions() -> None:
    assert set(MESSAGE_TYPES) == {"preArrival", "originCertificate", "crossing", "controlResult"}
    for name, t in MESSAGE_TYPES.items():
        assert t.schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert t.schema["$id"].endswith(f"/{name}.v1.json")
        assert t.version == 1
        assert t.outbound is not None
        assert t.inbound is not None
    validate("preArrival", pre_arrival())
    validate("originCertificate", certificate())
    bad = pre_arrival()
    bad["goodsShipment"]["governmentAgencyGoodsItem"][0]["goodsMeasure"]["grossMassMeasure"]["value"] = 13000.5
    with pytest.raises(AssertionError, match="grossMassMeasure"):  # a float, not a decimal string
        validate("preArrival", bad)


def test_a_registered_export_becomes_the_partners_pre_arrival_notice(side, export_body) -> None:
    decl = side.file(export_body)
    [message] = side.sent("preArrival")
    assert (message.correlation_id, message.recipient) == (decl["number"], None)
    p = message.payload
    assert p["declaration"] == {"id": decl["number"], "typeCode": "EX", "procedureCode": "B11", "version": 1,
                                "exitOffice": {"id": "KIMTHANH"}}  # fmt: skip
    assert p["consignor"] == {
        "id": "0100233488",
        "name": "Cong ty TNHH Thuong mai Lao Cai",
        "address": {"line": "So 1 Duong Hoang Lien, Lao Cai, Viet Nam", "countryCode": "VN"},
    }
    [item] = p["goodsShipment"]["governmentAgencyGoodsItem"]
    assert item["commodity"]["classification"] == {"id": "081090", "identificationTypeCode": "HS",
                                                   "nationalTariffCode": "08109020"}  # fmt: skip
    assert item["goodsMeasure"]["grossMassMeasure"] == {"value": "13000", "unitCode": "KGM"}
    assert item["customsValueAmount"] == {"value": "9600.00", "currencyId": "USD"}
    assert item["origin"] == {"countryCode": "VN"}
    assert p["transportEquipment"] == [{"id": "CSQU3054383", "seal": [{"id": "CN1234567"}]}]
    assert p["borderTransportMeans"]["id"] == "24C-123.45"
    assert p["additionalDocument"] == [{"id": "E263600001234567", "typeCode": "861"}]
    assert p["expectedCrossing"]["dateTime"] == "2026-11-28T08:30:00+07:00"


def test_imports_and_drafts_send_no_pre_arrival(side, import_body, export_body) -> None:
    side.file(import_body)
    resp = side.client.post("/api/v1/declarations", json=export_body,
                            headers={**side.trader, "Idempotency-Key": "draft-1"})  # fmt: skip
    assert resp.status_code == 201
    assert side.sent("preArrival") == []


def test_form_e_issued_here_is_sent_as_origin_certificate(side) -> None:
    body = {
        "number": "E26VN0000123", "issuing_authority": "Regional Import-Export Management Office, Lao Cai (MOIT)",
        "exporter": {"name": "Lao Cai Fruit Export JSC", "address": "Lao Cai", "country": "VN", "tax_id": "0100233488"},
        "importer": {"name": "Yunnan Hekou Fruit Trading Co., Ltd.", "address": "Hekou", "country": "CN"},
        "lines": [{"hs_code": "08109020", "description": "Fresh lychees", "quantity": "12000", "unit": "KGM",
                   "gross_mass_kg": "13000", "origin_criterion": "WO"}],
        "issue_date": dt.date.today().isoformat(),
    }  # fmt: skip
    assert side.client.post("/api/v1/exchange/origin-certificates", json=body, headers=side.trader).status_code == 403
    resp = side.client.post("/api/v1/exchange/origin-certificates", json=body, headers=side.issuer)
    assert resp.status_code == 201, resp.text
    assert resp.json()["valid_until"] == (dt.date.today() + dt.timedelta(days=365)).isoformat()
    again = side.client.post("/api/v1/exchange/origin-certificates", json=body, headers=side.issuer)
    assert (again.status_code, again.json()["code"]) == (409, "origin_certificate.duplicate")
    late = side.client.post("/api/v1/exchange/origin-certificates", headers=side.issuer,
                            json={**body, "number": "E26VN0000124", "valid_until": "2099-01-01"})  # fmt: skip
    assert late.status_code == 422
    [message] = side.sent("originCertificate")
    assert message.correlation_id == "E26VN0000123"
    [line] = message.payload["governmentAgencyGoodsItem"]
    assert line["commodity"]["classification"]["id"] == "081090"
    assert line["goodsMeasure"]["tariffQuantity"] == {"value": "12000", "unitCode": "KGM"}
    seen = side.client.get("/api/v1/exchange/origin-certificates/E26VN0000123", headers=side.officers[0]).json()
    assert [c["direction"] for c in seen["items"]] == ["issued"]


def test_exit_at_our_gate_is_sent_as_crossing(side, export_body, runtime) -> None:
    from services.declarations import service
    from services.declarations.models import Declaration
    from services.kernel.database import unit_of_work

    decl = side.file(export_body)
    with unit_of_work(runtime.sessions) as session:
        row = session.get(Declaration, decl["id"])
        row.status = "released"  # the decisions and payments that lead here are tested elsewhere
        session.flush()
        service.transition(session, decl=row, action="exit", actor="gate:KT-OUT-1", reason="truck exited")
    [message] = side.sent("crossing")
    assert message.correlation_id == decl["number"]
    assert message.payload["crossingDirectionCode"] == "exit"
    assert message.payload["transportEquipment"] == [{"id": "CSQU3054383", "seal": [{"id": "CN1234567"}]}]
    # The partner's entry closes the journey: the cross-border time is measured.
    entry = dt.datetime.fromisoformat(message.payload["actualDateTime"]) + dt.timedelta(minutes=42)
    side.receive("crossing", {**message.payload, "crossingDirectionCode": "entry",
                              "actualDateTime": entry.isoformat(), "borderLocation": {"id": "HEKOU"}},
                 decl["number"])  # fmt: skip
    journey = side.client.get(f"/api/v1/review/journeys/{decl['number']}", headers=side.officers[0]).json()
    assert journey["closed"]
    assert journey["cross_border_seconds"] == 42 * 60
    assert [c["side"] for c in journey["crossings"]] == ["ours", "partner"]
    report = side.client.get("/api/v1/review/cross-border-times", headers=side.officers[0]).json()
    assert report["journeys"] == 1
    assert report["median_seconds"] == 42 * 60


def test_an_origin_certificate_with_impossible_dates_is_rejected(side) -> None:
    bad = certificate(valid=dt.date(2026, 1, 1))
    with pytest.raises(Rejected) as refused:
        side.receive("originCertificate", bad, bad["id"])
    assert refused.value.code == "originCertificate.validity"
    with pytest.raises(Rejected):
        side.receive("originCertificate", certificate(), "ANOTHER-ID")


def test_a_certificate_received_twice_with_new_content_warns(side) -> None:
    assert side.receive("originCertificate", certificate(), "E263600001234567") == []
    warnings = side.receive("originCertificate", certificate(quantity="30000"), "E263600001234567")
    assert [w["code"] for w in warnings] == ["originCertificate.replaced"]
    assert len(side.events("exchange.origin_certificate_received")) == 2


def test_received_messages_are_published_with_their_content(side) -> None:
    side.receive("preArrival", pre_arrival(), "HK-2026-000042", created_at=utcnow())
    [event] = side.events("exchange.pre_arrival_received")
    assert event.payload["sender"] == PARTNER
    assert event.payload["correlation_id"] == "HK-2026-000042"
    assert event.payload["payload"]["declaration"]["id"] == "HK-2026-000042"


def test_an_inspection_outcome_is_shared_as_control_result(side, import_body) -> None:
    decl = side.file(import_body)
    officer = side.officers[0]

    def decide(outcome: str, **extra: object) -> None:
        etag = side.client.get(f"/api/v1/declarations/{decl['id']}", headers=officer).headers["ETag"]
        resp = side.client.post(f"/api/v1/declarations/{decl['id']}/decisions", headers={**officer, "If-Match": etag},
                                json={"outcome": outcome, "reason": "seals and cartons checked", **extra})  # fmt: skip
        assert resp.status_code == 200, resp.text

    decide("inspect")
    decide("clear", violation=False)
    inspections = [m for m in side.sent("controlResult") if m.payload["outcomeCode"] != "mirrorDiscrepancy"]
    [message] = inspections
    assert message.correlation_id == "HK-2026-000042"
    assert message.payload["outcomeCode"] == "compliant"
    assert message.payload["decidedBy"] == "customs officer"
    assert message.payload["findings"][0]["code"] == "inspection"
    assert "inspection result: compliant" in message.payload["findings"][0]["detail"]


def test_an_amended_export_sends_its_new_version(side, export_body) -> None:
    decl = side.file(export_body)
    export_body["items"][0]["gross_mass_kg"] = "13100"
    export_body["total_gross_mass_kg"] = "13100"
    etag = side.client.get(f"/api/v1/declarations/{decl['id']}", headers=side.trader).headers["ETag"]
    resp = side.client.post(f"/api/v1/declarations/{decl['id']}/amend", json=export_body,
                           headers={**side.trader, "If-Match": etag})  # fmt: skip
    assert resp.status_code == 200, resp.text
    first, second = side.sent("preArrival")
    assert (first.payload["declaration"]["version"], second.payload["declaration"]["version"]) == (1, 2)
    assert second.payload["goodsShipment"]["totalGrossMassMeasure"]["value"] == "13100"
