"""The EPCIS 2.0 interface end to end on both backends: capture, validation, query, paging, hashes in the ledger."""

from __future__ import annotations

import base64
import json
import random
from typing import Any
from urllib.parse import quote

from sqlalchemy import func, select

from services.kernel.database import unit_of_work
from services.kernel.outbox import OutboxEvent
from services.traceability import hashing
from services.traceability.models import EpcisEvent
from tests.services.traceability.generate import CONTEXT, document, event
from tests.support import wait_for

HARVEST = {
    "type": "ObjectEvent",
    "eventTime": "2026-06-10T06:30:00+07:00",
    "eventTimeZoneOffset": "+07:00",
    "action": "ADD",
    "epcList": [],
    "quantityList": [{"epcClass": "https://id.gs1.org/01/08930001000018/10/LC2026A", "quantity": 1250.5, "uom": "KGM"}],
    "bizStep": "commissioning",
    "disposition": "active",
    "readPoint": {"id": "https://id.gs1.org/414/8930001000001"},
    "bizLocation": {"id": "urn:epc:id:sgln:8930001.00000.0"},
    "ilmd": {"sg:growingArea": "VN-LC-001", "sg:areaHa": 2.5},
}
SHIP = {
    "type": "ObjectEvent",
    "eventTime": "2026-06-12T10:00:00+07:00",
    "eventTimeZoneOffset": "+07:00",
    "action": "OBSERVE",
    "epcList": ["urn:epc:id:sscc:8930001.0000000017"],
    "bizStep": "https://ref.gs1.org/cbv/BizStep-shipping",
    "disposition": "in_transit",
    "bizLocation": {"id": "https://id.gs1.org/414/8930001000001"},
}


def _events(client: Any, headers: dict[str, str], **params: Any) -> tuple[list[dict[str, Any]], Any]:
    response = client.get("/api/v1/epcis/events", params=params, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/ld+json")
    return response.json()["epcisBody"]["queryResults"]["resultsBody"]["eventList"], response


def test_capture_query_and_hashes_in_the_ledger(client: Any, keys: Any, runtime: Any) -> None:
    farm = keys.make("producer", org="HTX Bắc Hà")
    officer = keys.make("officer")
    response = client.post("/api/v1/epcis/capture", json=document([HARVEST, SHIP]), headers=farm)
    assert response.status_code == 202, response.text
    job = client.get(response.headers["Location"], headers=farm).json()
    assert job["status"] == "accepted"
    assert job["success"] is True
    assert job["eventCount"] == 2

    shipped, _ = _events(client, officer, EQ_bizStep="shipping")
    assert len(shipped) == 1
    expected = hashing.event_hash(SHIP, CONTEXT)
    assert shipped[0]["eventID"] == expected  # no eventID given: the CBV 2.0 hash is the id
    assert _events(client, officer, EQ_bizStep="urn:epcglobal:cbv:bizstep:shipping")[0] == shipped
    # MATCH_epc in any notation of the same SSCC; EQ_bizLocation with an SGLN URN or its Digital Link
    assert _events(client, officer, MATCH_epc="https://id.gs1.org/00/089300010000000179")[0] == shipped
    assert len(_events(client, officer, EQ_bizLocation="urn:epc:id:sgln:8930001.00000.0")[0]) == 2
    assert len(_events(client, officer, EQ_disposition="active|in_transit")[0]) == 2
    window = {"GE_eventTime": "2026-06-10T00:00:00+07:00", "LT_eventTime": "2026-06-11T00:00:00+07:00"}
    assert [e["bizStep"] for e in _events(client, officer, **window)[0]] == ["commissioning"]

    one = client.get(f"/api/v1/epcis/events/{quote(expected, safe='')}", headers=officer)
    assert one.status_code == 200
    assert one.headers["EPCIS-Event-Hash"] == expected
    by_digest = client.get(f"/api/v1/epcis/events/{expected.split(';')[1].split('?')[0]}", headers=officer)
    assert by_digest.json() == one.json()
    assert hashing.event_hash(one.json()) == expected  # what is served hashes to what is stored

    with unit_of_work(runtime.sessions) as session:
        rows = session.scalars(select(OutboxEvent).where(OutboxEvent.type == "epcis.event_captured")).all()
        assert sorted(r.payload["event_hash"] for r in rows) == sorted([expected, hashing.event_hash(HARVEST, CONTEXT)])
    # The provenance service appends them: the event's ledger subject has its entry.
    subject = one.headers["Link"].split("/subjects/")[1].split("/bundle")[0]

    def in_ledger() -> bool:
        entries = client.get("/api/v1/ledger/entries", headers=officer).json()["entries"]
        return any(e.get("subject") == subject for e in entries)

    assert wait_for(in_ledger, 30)
    # ... and its bundle: the entry with the event hash, its inclusion proof and the signed checkpoint.
    bundle_url = one.headers["Link"].split(">")[0].lstrip("<")

    def bundled() -> bool:
        return client.get(bundle_url, headers=officer).status_code == 200

    assert wait_for(bundled, 60)
    bundle = client.get(bundle_url, headers=officer).json()
    payloads = [json.loads(base64.b64decode(e["payload"])) for e in bundle["entries"]]
    assert [p["event_hash"] for p in payloads] == [expected]


def test_an_invalid_document_is_refused_whole_with_pointers(client: Any, keys: Any, runtime: Any) -> None:
    farm = keys.make("producer", org="HTX Bắc Hà")
    bad_step = dict(SHIP, bizStep="https://ref.gs1.org/cbv/BizStep-harvesting")
    bad_gtin = dict(HARVEST, quantityList=[{"epcClass": "https://id.gs1.org/01/08930001000017/10/X", "quantity": 1}])
    no_time = {k: v for k, v in SHIP.items() if k != "eventTime"}
    for events, where in (
        ([HARVEST, bad_step], "/epcisBody/eventList/1/bizStep"),
        ([bad_gtin, SHIP], "/epcisBody/eventList/0/quantityList/0/epcClass"),
        ([HARVEST, no_time], "/epcisBody/eventList/1"),
    ):
        response = client.post("/api/v1/epcis/capture", json=document(events), headers=farm)
        assert response.status_code == 400, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert where in [e["pointer"] for e in response.json()["errors"]]
    with unit_of_work(runtime.sessions) as session:
        assert session.scalar(select(func.count()).select_from(EpcisEvent)) == 0


def test_single_events_duplicates_and_conflicts(client: Any, keys: Any) -> None:
    house = keys.make("packhouse", org="Đóng gói Lào Cai")
    event_with_id = dict(SHIP, eventID="urn:uuid:6d9c2a58-3c2b-4a55-9e1e-1a2b3c4d5e6f", **{"@context": CONTEXT})
    first = client.post("/api/v1/epcis/events", json=event_with_id, headers=house)
    assert first.status_code == 201, first.text
    assert first.headers["Location"] == "/api/v1/epcis/events/" + quote(event_with_id["eventID"], safe="")
    assert first.headers["EPCIS-Event-Hash"] == hashing.event_hash(SHIP)
    again = client.post("/api/v1/epcis/events", json=event_with_id, headers=house)
    assert again.status_code == 200
    assert again.json()["eventID"] == event_with_id["eventID"]
    changed = dict(event_with_id, disposition="damaged")
    assert client.post("/api/v1/epcis/events", json=changed, headers=house).status_code == 409
    job = client.post("/api/v1/epcis/capture", json=document([HARVEST, changed]), headers=house)
    assert job.status_code == 202
    status = client.get(job.headers["Location"], headers=house).json()
    assert status["status"] == "rejected"
    assert status["errors"][0]["pointer"] == "/epcisBody/eventList/1/eventID"
    assert _events(client, house, EQ_bizStep="commissioning")[0] == []  # nothing of the rejected document


def test_roles(client: Any, keys: Any) -> None:
    trader = keys.make("trader", org="Lao Cai Fruit Export JSC")
    inspector = keys.make("inspector")
    assert client.post("/api/v1/epcis/capture", json=document([HARVEST]), headers=trader).status_code == 403
    assert client.post("/api/v1/epcis/capture", json=document([HARVEST]), headers=inspector).status_code == 202
    assert client.get("/api/v1/epcis/events", params={"EQ_foo": "x"}, headers=inspector).status_code == 400
    assert client.get("/api/v1/epcis/events").status_code == 401


def test_a_document_of_1000_events_captured_and_paged_back(client: Any, keys: Any) -> None:
    farm = keys.make("producer", org="HTX Bắc Hà")
    rng = random.Random(15)
    events = [event(rng) for _ in range(1000)]
    response = client.post("/api/v1/epcis/capture", json=document(events), headers=farm)
    assert response.status_code == 202, response.text
    job = client.get(response.headers["Location"], headers=farm).json()
    assert job["eventCount"] + job["duplicateCount"] == 1000
    seen: list[str] = []
    params: dict[str, Any] = {"perPage": 150}
    while True:
        page, raw = _events(client, farm, **params)
        seen.extend(e["eventID"] for e in page)
        token = raw.headers.get("GS1-Next-Page-Token")
        if not token:
            break
        assert 'rel="next"' in raw.headers["Link"]
        params = {"perPage": 150, "nextPageToken": token}
    assert len(seen) == len(set(seen)) == job["eventCount"]
    expected = {e.get("eventID") or hashing.event_hash(e, CONTEXT) for e in events}
    assert set(seen) == expected


def test_farms_and_packhouses_with_their_codes(client: Any, keys: Any) -> None:
    farm = keys.make("producer", org="HTX Bắc Hà")
    other_farm = keys.make("producer", org="HTX Mường Khương")
    house = keys.make("packhouse", org="Đóng gói Lào Cai")
    site = {"kind": "farm", "name": "Vùng trồng 12", "vn_code": "vn-lcor-0012", "cn_registration": "VNLC-2026-0012",
            "province": "Lào Cai", "area_ha": "4.5", "crops": ["lychee"]}  # fmt: skip
    made = client.put("/api/v1/epcis/sites/8930001000001", json=site, headers=farm)
    assert made.status_code == 201, made.text
    assert made.json()["vn_code"] == "VN-LCOR-0012"
    assert made.json()["id"] == "https://id.gs1.org/414/8930001000001"
    assert client.put("/api/v1/epcis/sites/8930001000001", json=site, headers=farm).status_code == 200
    assert client.put("/api/v1/epcis/sites/8930001000001", json=site, headers=other_farm).status_code == 403
    assert client.put("/api/v1/epcis/sites/8930001000002", json=site, headers=farm).status_code == 422  # check digit
    assert client.put("/api/v1/epcis/sites/8930001000018", json=site, headers=house).status_code == 403  # a farm
    bad = client.put("/api/v1/epcis/sites/8930001000018", json=dict(site, vn_code="LC-12"), headers=farm)
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["pointer"] == "/vn_code"
    listed = client.get("/api/v1/epcis/sites", params={"kind": "farm"}, headers=house).json()["items"]
    assert [s["gln"] for s in listed] == ["8930001000001"]


def test_the_diary_from_planting_to_shipping(client: Any, keys: Any) -> None:
    farm = keys.make("producer", org="HTX Bắc Hà")
    house = keys.make("packhouse", org="Đóng gói Lào Cai")
    inspector = keys.make("inspector")
    farm_site = {"kind": "farm", "name": "Vùng trồng 12", "vn_code": "VN-LCOR-0012", "area_ha": "4.5"}
    house_site = {"kind": "packhouse", "name": "Nhà đóng gói Bắc Hà", "vn_code": "VN-LCPH-003"}
    assert client.put("/api/v1/epcis/sites/8930001000001", json=farm_site, headers=farm).status_code == 201
    assert client.put("/api/v1/epcis/sites/8930001000018", json=house_site, headers=house).status_code == 201
    sscc = "089300010000000179"
    entries = [
        (farm, {"kind": "planting", "at": "2026-01-05T07:00:00+07:00", "crop": "lychee", "area_ha": "2.5"}),
        (farm, {"kind": "fertilising", "at": "2026-03-01T07:00:00+07:00", "product": "NPK 16-16-8",
                "quantity_kg": "120"}),
        (farm, {"kind": "spraying", "at": "2026-05-20T07:00:00+07:00", "product": "Ridomil Gold",
                "active_ingredient": "metalaxyl-M", "pre_harvest_interval_days": 14}),
        (farm, {"kind": "harvest", "at": "2026-06-10T06:30:00+07:00", "gtin": "8930001000018", "lot": "LC2026A",
                "quantity_kg": "1250.5", "area_ha": "2.5"}),
    ]  # fmt: skip
    for headers, entry in entries:
        made = client.post("/api/v1/epcis/diary", json={**entry, "site_gln": "8930001000001"}, headers=headers)
        assert made.status_code == 201, made.text
    pack = {"kind": "packing", "at": "2026-06-11T09:00:00+07:00", "site_gln": "8930001000018", "sscc": sscc,
            "lots": [{"gtin": "08930001000018", "lot": "LC2026A", "quantity_kg": "980"}]}  # fmt: skip
    packed = client.post("/api/v1/epcis/diary", json=pack, headers=house)
    assert packed.status_code == 201, packed.text
    assert packed.json()["type"] == "TransformationEvent"
    assert packed.json()["outputEPCList"] == [f"https://id.gs1.org/00/{sscc}"]
    inspect = {"kind": "inspection", "at": "2026-06-11T15:00:00+07:00", "site_gln": "8930001000018",
               "ssccs": [sscc], "certificate": "VN-PC-2026-0001"}  # fmt: skip
    assert client.post("/api/v1/epcis/diary", json=inspect, headers=inspector).status_code == 201
    ship = {"kind": "shipping", "at": "2026-06-12T10:00:00+07:00", "site_gln": "8930001000018", "ssccs": [sscc]}
    assert client.post("/api/v1/epcis/diary", json=ship, headers=house).status_code == 201

    # The pallet's story, by its SSCC in any notation: packed (output), inspected, shipped.
    story, _ = _events(client, inspector, MATCH_anyEPC="urn:epc:id:sscc:8930001.0000000017")
    assert [e.get("bizStep") for e in story] == ["packing", "inspecting", "shipping"]
    assert story[1]["bizTransactionList"][0]["type"] == "cert"
    spraying, _ = _events(client, farm, EQ_bizStep="https://smartgate.example/epcis/bizstep/spraying")
    assert spraying[0]["sg:preHarvestIntervalDays"] == 14
    harvest, _ = _events(client, farm, EQ_bizStep="commissioning")
    assert harvest[0]["ilmd"] == {"sg:growingArea": "VN-LCOR-0012", "sg:harvestAreaHa": 2.5}

    # Who records what, where.
    assert (
        client.post("/api/v1/epcis/diary", json={**ship, "site_gln": "8930001000018"}, headers=farm).status_code == 403
    )
    wrong_site = {**entries[3][1], "site_gln": "8930001000018"}
    assert client.post("/api/v1/epcis/diary", json=wrong_site, headers=farm).status_code == 422  # a packhouse
    unknown = {**entries[3][1], "site_gln": "8930001000025"}
    assert client.post("/api/v1/epcis/diary", json=unknown, headers=farm).status_code == 422
    bad_gtin = {**entries[3][1], "site_gln": "8930001000001", "gtin": "8930001000019"}
    assert client.post("/api/v1/epcis/diary", json=bad_gtin, headers=farm).status_code == 422
    future = {**entries[3][1], "site_gln": "8930001000001", "at": "2099-01-01T00:00:00+07:00"}
    assert client.post("/api/v1/epcis/diary", json=future, headers=farm).status_code == 422
