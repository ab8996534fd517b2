"""The e-production diary pages: sign in with a cooperative's key, record a harvest and a packing with plain forms
(no script), see the event's id and hash, or what to correct; forms from elsewhere are refused."""

from __future__ import annotations

import re
from typing import Any


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', page)
    assert found
    return found.group(1)


def _sign_in(client: Any, key: str) -> str:
    signed = client.post("/diary/login", data={"key": key}, follow_redirects=False)
    assert signed.status_code == 303, signed.text
    page = client.get("/diary")
    assert page.status_code == 200
    assert "script" not in page.text.lower()
    assert page.headers["content-security-policy"].startswith("default-src 'none'")
    return page.text


def test_a_cooperative_records_a_harvest_and_a_packhouse_its_packing(client: Any, keys: Any) -> None:
    farm = keys.make("producer", org="HTX Bắc Hà")
    house = keys.make("packhouse", org="Đóng gói Lào Cai")
    site = {"kind": "farm", "name": "Vùng trồng 12", "vn_code": "VN-LCOR-0012"}
    assert client.put("/api/v1/epcis/sites/8930001000001", json=site, headers=farm).status_code == 201
    packhouse = {"kind": "packhouse", "name": "Nhà đóng gói", "vn_code": "VN-LCPH-003"}
    assert client.put("/api/v1/epcis/sites/8930001000018", json=packhouse, headers=house).status_code == 201

    page = _sign_in(client, farm["Authorization"].split()[1])
    assert "Thu hoạch" in page
    assert "Vùng trồng 12 (VN-LCOR-0012)" in page
    harvest = {"csrf": _csrf(page), "site_gln": "8930001000001", "at": "2026-06-10T06:30",
               "gtin": "08930001000018", "lot": "LC2026A", "quantity_kg": "1250.5", "area_ha": "2.5"}  # fmt: skip
    done = client.post("/diary/harvest", data=harvest)
    assert done.status_code == 201, done.text
    assert "ni:///sha-256;" in done.text
    wrong = client.post("/diary/harvest", data={**harvest, "gtin": "08930001000019"})
    assert wrong.status_code == 422
    assert "/gtin" in wrong.text or "check digit" in wrong.text
    forged = client.post("/diary/harvest", data={**harvest, "csrf": "0" * 40})
    assert forged.status_code == 403
    assert client.post("/diary/logout", data={"csrf": _csrf(page)}, follow_redirects=False).status_code == 303
    assert client.get("/diary", follow_redirects=False).status_code == 303  # signed out

    page = _sign_in(client, house["Authorization"].split()[1])
    packing = {"csrf": _csrf(page), "site_gln": "8930001000018", "at": "2026-06-11T09:00", "sscc": "089300010000000179",
               "gtin": "08930001000018", "lot": "LC2026A", "quantity_kg": "980"}  # fmt: skip
    assert client.post("/diary/packing", data=packing).status_code == 201
    events = client.get("/api/v1/epcis/events", params={"EQ_bizStep": "packing"}, headers=house).json()
    packed = events["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
    assert packed[0]["eventTime"] == "2026-06-11T09:00:00+07:00"  # read in Vietnam's time


def test_keys_that_keep_no_diary_cannot_sign_in(client: Any, keys: Any) -> None:
    trader = keys.make("trader", org="Lao Cai Fruit Export JSC")
    refused = client.post("/diary/login", data={"key": trader["Authorization"].split()[1]}, follow_redirects=False)
    assert refused.status_code == 403
    assert client.post("/diary/login", data={"key": "sg_nope"}, follow_redirects=False).status_code == 401
