"""The trace check of export declarations on both backends: each rule fires on planted data and stays quiet on
clean data; a declaration naming pallets is not cleared before the check answers; failures are risk hits with
evidence; earlier declarations use up what they declared; cancelling releases it."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import pytest

from tests.support import wait_for

FARM, HOUSE, FARM_B = "8930001000001", "8930001000018", "8930001000025"
GTIN = "8930001000018"
CLEARED = ("cleared", "released")  # no export duty on fruit: cleared and released at once
P1, P2, P3 = "089300010000000018", "089300010000000025", "089300010000000032"
# Only the trace rule, no random selection: a clean declaration is green, each failure raises it.
RULES = """version: "2026.12.90"
description: trace check only
seed: 1
thresholds: {yellow: 30, red: 75}
random_selection: {red: 0, yellow: 0}
rules:
  - id: trace_check
    type: trace_check
    weight: 40
    weights: {trace_pre_harvest: 75, trace_registration: 75}
    reason: the goods' pallets and lots do not agree with the farm diaries and packing records
"""


class World:
    """A farm (registered for China), a packhouse (registered), a second farm (no GACC registration), keys."""

    def __init__(self, client: Any, keys: Any, runtime: Any) -> None:
        self.client, self.runtime = client, runtime
        self.farm = keys.make("producer", org="HTX Bắc Hà")
        self.house = keys.make("packhouse", org="Đóng gói Lào Cai")
        self.trader = keys.make("trader", org="Xuất khẩu Lào Cai")
        self.officer = keys.make("officer")
        admin = keys.make("admin")
        sites = [
            (FARM, self.farm, {"kind": "farm", "name": "Vùng trồng 12", "vn_code": "VN-LCOR-0012",
                               "cn_registration": "VNLC-2026-0012", "crops": ["lychee"]}),
            (FARM_B, self.farm, {"kind": "farm", "name": "Vùng trồng 13", "vn_code": "VN-LCOR-0013"}),
            (HOUSE, self.house, {"kind": "packhouse", "name": "Nhà đóng gói", "vn_code": "VN-LCPH-003",
                                 "cn_registration": "VNPH-2026-0003"}),
        ]  # fmt: skip
        for gln, headers, site in sites:
            assert client.put(f"/api/v1/epcis/sites/{gln}", json=site, headers=headers).status_code == 201
        assert client.post("/api/v1/risk/rule-sets", json={"yaml": RULES}, headers=admin).status_code == 201
        assert client.post("/api/v1/risk/rule-sets/2026.12.90/activate", headers=admin).status_code == 200
        self.filed = 0

    def diary(self, entry: dict[str, Any], *, site: str = FARM) -> None:
        headers = self.house if entry["kind"] == "packing" else self.farm
        made = self.client.post("/api/v1/epcis/diary", json={"site_gln": site, **entry}, headers=headers)
        assert made.status_code == 201, made.text

    def harvest(self, lot: str, kg: str, at: str = "2026-06-10T06:30:00+07:00", site: str = FARM) -> None:
        self.diary({"kind": "harvest", "at": at, "gtin": GTIN, "lot": lot, "quantity_kg": kg, "area_ha": "2"},
                   site=site)  # fmt: skip

    def pack(self, sscc: str, lots: dict[str, str], at: str = "2026-06-11T09:00:00+07:00") -> None:
        self.diary({"kind": "packing", "at": at, "sscc": sscc,
                    "lots": [{"gtin": GTIN, "lot": lot, "quantity_kg": kg} for lot, kg in lots.items()]},
                   site=HOUSE)  # fmt: skip

    def body(self, base: dict[str, Any], kg: str, *, ssccs: Sequence[str] = (), lots: Sequence[str] = (),
             to: str = "CN", hs: str = "08109020") -> dict[str, Any]:  # fmt: skip
        body = copy.deepcopy(base)
        body.update(kind="export", procedure_code="B11")
        body.pop("preferential_origin", None)
        body["consignor"], body["consignee"] = body["consignee"], body["consignor"]
        body["consignee"]["country"] = to
        item = body["items"][0]
        # In VND: duties need no exchange rate (unassessed duties are never green).
        item.update(hs_code=hs, origin="VN", quantity=kg, net_mass_kg=kg, gross_mass_kg=kg, currency="VND",
                    customs_value="250000000")  # fmt: skip
        item["trace"] = {"gtin": GTIN, "ssccs": list(ssccs), "lots": list(lots)}
        body["total_net_mass_kg"] = body["total_gross_mass_kg"] = kg
        return body

    def file(self, body: dict[str, Any]) -> dict[str, Any]:
        """File and submit; wait until the trace check has answered; the officer's view."""
        self.filed += 1
        headers = {**self.trader, "Idempotency-Key": f"trace-{self.filed}"}
        made = self.client.post("/api/v1/declarations?submit=true", json=body, headers=headers)
        assert made.status_code == 201, made.text
        decl_id = made.json()["id"]

        def answered() -> bool:
            self.runtime.relay.drain()
            return bool((self.view(decl_id)["risk"] or {}).get("trace"))

        assert wait_for(answered)
        return self.view(decl_id)

    def view(self, decl_id: str) -> dict[str, Any]:
        return self.client.get(f"/api/v1/declarations/{decl_id}", headers=self.officer).json()


@pytest.fixture
def world(client: Any, keys: Any, runtime: Any) -> World:
    return World(client, keys, runtime)


def _hits(decl: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["rule"]: r for r in decl["risk"]["reasons"] if r["rule"].startswith("trace_")}


def test_clean_lots_pass_and_a_pending_check_holds_clearance(world: World, declaration_body: dict) -> None:
    world.diary({"kind": "spraying", "at": "2026-05-20T07:00:00+07:00", "product": "Ridomil Gold",
                 "active_ingredient": "metalaxyl-M", "pre_harvest_interval_days": 14})  # fmt: skip
    world.harvest("LC2026A", "1000")
    world.pack(P1, {"LC2026A": "900"})
    headers = {**world.trader, "Idempotency-Key": "pending"}
    made = world.client.post("/api/v1/declarations?submit=true", json=world.body(declaration_body, "800",
                             ssccs=[P1]), headers=headers)  # fmt: skip
    assert made.status_code == 201, made.text
    # Green by the rules, but not cleared before the trace check answers.
    assert made.json()["status"] == "submitted"
    first = world.view(made.json()["id"])
    assert "trace_pending" in {r["rule"] for r in first["risk"]["reasons"]}

    def cleared() -> bool:
        world.runtime.relay.drain()
        return world.view(made.json()["id"])["status"] in CLEARED

    assert wait_for(cleared)
    decl = world.view(made.json()["id"])
    assert decl["channel"] == "green"
    assert _hits(decl) == {}
    trace = decl["risk"]["trace"]
    assert trace["failures"] == []
    assert trace["flags"] == []
    assert trace["pallets"] == [P1]
    assert trace["version"] == 1


def test_quantity_against_packed_and_earlier_declarations(world: World, declaration_body: dict) -> None:
    world.harvest("LC2026A", "1000")
    world.pack(P1, {"LC2026A": "600"})
    world.pack(P2, {"LC2026A": "400"})
    first = world.file(world.body(declaration_body, "700", lots=["LC2026A"]))
    assert first["status"] in CLEARED
    assert _hits(first) == {}
    # 1,000 kg packed, 700 used by the first declaration: 400 more is 100 too many.
    second = world.file(world.body(declaration_body, "400", ssccs=[P1, P2]))
    hit = _hits(second)["trace_quantity"]
    assert second["channel"] == "yellow"
    assert second["status"] == "submitted"
    assert hit["weight"] == 40
    assert hit["evidence"][0]["available_kg"] == "300"
    assert hit["evidence"][0]["used_by"] == [first["number"]]
    assert "line 1: declares 400 kg" in hit["detail"]
    # Cancelling the first declaration releases what it drew on.
    # The second still holds the 300 kg it could draw on; cancelling it releases them.
    assert _hits(world.file(world.body(declaration_body, "300", ssccs=[P1, P2])))["trace_quantity"]
    cancel = world.client.post(f"/api/v1/declarations/{second['id']}/cancel", json={"reason": "wrong truck"},
                               headers=world.trader)  # fmt: skip
    assert cancel.status_code == 200, cancel.text
    world.runtime.relay.drain()
    assert _hits(world.file(world.body(declaration_body, "300", ssccs=[P1, P2]))) == {}


def test_unknown_pallet_other_product_and_unpacked_lot(world: World, declaration_body: dict) -> None:
    world.harvest("LC2026A", "1000")
    world.diary({"kind": "harvest", "at": "2026-06-10T06:30:00+07:00", "gtin": "8930001000025", "lot": "MG1",
                 "quantity_kg": "500", "area_ha": "1"})  # fmt: skip
    world.diary({"kind": "packing", "at": "2026-06-11T09:00:00+07:00", "sscc": P2,
                 "lots": [{"gtin": "8930001000025", "lot": "MG1", "quantity_kg": "500"}]}, site=HOUSE)  # fmt: skip
    decl = world.file(world.body(declaration_body, "100", ssccs=[P1, P2], lots=["LC2026A"]))
    hits = _hits(decl)
    assert set(hits) == {"trace_not_packed", "trace_product"}
    assert f"pallet {P1} has no packing record" in hits["trace_not_packed"]["detail"]
    assert "lot LC2026A of GTIN 08930001000018 was never packed" in hits["trace_not_packed"]["detail"]
    assert hits["trace_product"]["evidence"][0]["lots_on_pallet"] == ["08930001000025/MG1"]


def test_mass_balance_packed_more_than_harvested(world: World, declaration_body: dict) -> None:
    world.harvest("LC2026A", "500")
    world.pack(P1, {"LC2026A": "400"})
    world.pack(P2, {"LC2026A": "300"})  # 700 packed of 500 harvested
    world.pack(P3, {"LC2026X": "100"})  # never harvested
    decl = world.file(world.body(declaration_body, "300", ssccs=[P1, P3]))
    hit = _hits(decl)["trace_mass_balance"]
    assert "lot LC2026A: 700 kg packed, only 500 kg harvested" in hit["detail"]
    assert "lot LC2026X of GTIN 08930001000018 was packed but never harvested" in hit["detail"]
    assert {e["lot"] for e in hit["evidence"]} == {"LC2026A", "LC2026X"}


@pytest.mark.parametrize(("sprayed", "fires"), [("2026-06-01T07:00:00+07:00", True),
                                                ("2026-05-20T07:00:00+07:00", False)])  # fmt: skip
def test_pre_harvest_interval(world: World, declaration_body: dict, sprayed: str, fires: bool) -> None:
    world.diary({"kind": "spraying", "at": sprayed, "product": "Abatimec 3.6EC", "active_ingredient": "abamectin",
                 "pre_harvest_interval_days": 14})  # fmt: skip
    world.harvest("LC2026A", "1000")  # 2026-06-10: 9 days after 06-01 (too soon), 21 days after 05-20
    world.pack(P1, {"LC2026A": "900"})
    decl = world.file(world.body(declaration_body, "800", ssccs=[P1]))
    hits = _hits(decl)
    assert ("trace_pre_harvest" in hits) is fires
    if fires:
        assert decl["channel"] == "red"
        evidence = hits["trace_pre_harvest"]["evidence"][0]
        assert evidence["product"] == "Abatimec 3.6EC"
        assert evidence["pre_harvest_interval_days"] == 14
        assert "harvested 9.0 days after spraying Abatimec 3.6EC" in hits["trace_pre_harvest"]["detail"]
    else:
        assert decl["status"] in CLEARED


@pytest.mark.parametrize(("farm", "to", "hs", "fires"), [(FARM_B, "CN", "08109020", True),
                                                         (FARM, "CN", "08109020", False),
                                                         (FARM_B, "TH", "08109020", False),
                                                         (FARM_B, "CN", "20089990", False)])  # fmt: skip
def test_fresh_fruit_for_china_needs_registered_sites(
    world: World, declaration_body: dict, farm: str, to: str, hs: str, fires: bool
) -> None:
    world.harvest("LC2026A", "1000", site=farm)
    world.pack(P1, {"LC2026A": "900"})
    decl = world.file(world.body(declaration_body, "800", ssccs=[P1], to=to, hs=hs))
    hits = _hits(decl)
    assert ("trace_registration" in hits) is fires
    if fires:
        assert decl["channel"] == "red"
        evidence = hits["trace_registration"]["evidence"][0]
        assert evidence == {"gln": FARM_B, "kind": "farm", "vn_code": "VN-LCOR-0013", "cn_registration": None}


def test_goods_trace_references_are_validated(client: Any, keys: Any, declaration_body: dict) -> None:
    trader = keys.make("trader", org="Xuất khẩu Lào Cai")
    bad = [
        {"gtin": "8930001000019", "ssccs": [P1]},  # GTIN check digit
        {"gtin": GTIN, "ssccs": ["089300010000000019"]},  # SSCC check digit
        {"gtin": GTIN, "ssccs": [], "lots": []},  # names nothing
        {"gtin": GTIN, "lots": ["lot with spaces"]},
    ]
    for n, trace in enumerate(bad):
        body = copy.deepcopy(declaration_body)
        body["items"][0]["trace"] = trace
        made = client.post("/api/v1/declarations", json=body, headers={**trader, "Idempotency-Key": f"bad-{n}"})
        assert made.status_code == 422, (trace, made.text)
        assert "application/problem+json" in made.headers["content-type"]


def test_an_anomaly_flag_reaches_officers_and_never_blocks(world: World, declaration_body: dict) -> None:
    world.harvest("LC2026A", "1000", at="2026-06-10T06:30:00+07:00")
    world.pack(P1, {"LC2026A": "900"}, at="2026-06-08T09:00:00+07:00")  # packed two days before its harvest
    decl = world.file(world.body(declaration_body, "800", ssccs=[P1]))
    assert _hits(decl) == {}  # no rule fails: the totals balance
    assert decl["status"] in CLEARED  # a flag alone changes no channel
    [flag] = decl["risk"]["trace"]["flags"]
    assert flag["code"] == "packhouse_output_exceeds_inputs"
    assert f"packing house {HOUSE} had packed 900 kg" in flag["detail"]
    assert flag["evidence"]["harvested_kg"] == 0


def test_officers_see_the_hits_evidence_and_flags_in_the_console(world: World, declaration_body: dict) -> None:
    from api.console.i18n import COOKIE

    world.diary({"kind": "spraying", "at": "2026-06-01T07:00:00+07:00", "product": "Abatimec 3.6EC",
                 "active_ingredient": "abamectin", "pre_harvest_interval_days": 14})  # fmt: skip
    world.harvest("LC2026A", "1000")
    world.pack(P1, {"LC2026A": "900"}, at="2026-06-08T09:00:00+07:00")  # before the harvest: a flag
    decl = world.file(world.body(declaration_body, "800", ssccs=[P1]))
    client = world.client
    client.cookies.set(COOKIE, "en")
    key = world.officer["Authorization"].removeprefix("Bearer ")
    assert client.post("/console/login", data={"key": key}, follow_redirects=False).status_code == 303
    page = client.get(f"/console/declarations/{decl['id']}")
    assert page.status_code == 200
    html = page.text
    assert "Trace check" in html
    assert "trace_pre_harvest" in html
    assert "harvested 9.0 days after spraying Abatimec 3.6EC" in html
    assert "pre_harvest_interval_days: 14" in html  # the evidence
    assert "packhouse_output_exceeds_inputs" in html
    assert "a flag never changes the channel" in html
    client.cookies.set(COOKIE, "vi")
    assert "Kiểm tra truy xuất nguồn gốc" in client.get(f"/console/declarations/{decl['id']}").text


def test_an_amendment_is_checked_again_and_the_old_answer_no_longer_counts(
    world: World, declaration_body: dict
) -> None:
    world.harvest("LC2026A", "1000")
    world.pack(P1, {"LC2026A": "900"})
    decl = world.file(world.body(declaration_body, "950", ssccs=[P1]))
    assert "trace_quantity" in _hits(decl)
    etag = world.client.get(f"/api/v1/declarations/{decl['id']}", headers=world.trader).headers["ETag"]
    amended = world.client.post(f"/api/v1/declarations/{decl['id']}/amend",
                                json=world.body(declaration_body, "850", ssccs=[P1]),
                                headers={**world.trader, "If-Match": etag})  # fmt: skip
    assert amended.status_code == 200, amended.text

    def checked_again() -> bool:
        world.runtime.relay.drain()
        return world.view(decl["id"])["risk"]["trace"]["version"] == 2

    assert wait_for(checked_again)
    after = world.view(decl["id"])
    assert after["risk"]["trace"]["failures"] == []
    assert _hits(after) == {}  # the first version's shortfall no longer counts
    assert after["channel"] == "yellow"  # but an amendment never lowers the channel
