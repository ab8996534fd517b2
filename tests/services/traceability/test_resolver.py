"""The buyer's view (issue 15 §4) on both backends: GS1 Digital Link resolution of a seeded lychee trace (farm diary →
packing → inspection → shipping → declaration and gate exit) as JSON and as the public page, bad identifiers, what is
never public, and the trace bundle verifying offline and failing when tampered with."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import pytest

from ledger import bundle as ledger_bundle
from ledger.verify import VerificationError
from services.traceability import hashing
from tests.support import wait_for

FARM, HOUSE, GATE = "8930001000001", "8930001000018", "8930001000025"
GTIN, LOT, SSCC = "08930001000018", "LC2026A", "089300010000000179"
DECLARATION = "305123456789"
# What must never reach a buyer: a declared value, duties, the trader's tax id (put where a careless capturer
# might put them: extension fields of an event naming the pallet).
SECRETS = ("987654321.5", "123456789012", "0109876543", "sg:customsValue", "sg:taxId")
HTML = {"Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8"}
JSON = {"Accept": "application/json"}


def seed(client: Any, keys: Any) -> dict[str, Any]:
    """A lychee lot from planting to the gate, through the diary API and one captured gate event."""
    farm = keys.make("producer", org="HTX Vải thiều Bắc Hà")
    house = keys.make("packhouse", org="Đóng gói Lào Cai")
    inspector = keys.make("inspector")
    sites = [
        (farm, FARM, {"kind": "farm", "name": "HTX Vải thiều Bắc Hà, vùng trồng 12", "vn_code": "VN-LCOR-0012",
                      "cn_registration": "VNLC-2026-0012", "province": "Lào Cai", "area_ha": "4.5"}),
        (house, HOUSE, {"kind": "packhouse", "name": "Nhà đóng gói Bắc Hà", "vn_code": "VN-LCPH-003",
                        "cn_registration": "VNLCPH-003"}),
    ]  # fmt: skip
    for headers, gln, site in sites:
        assert client.put(f"/api/v1/epcis/sites/{gln}", json=site, headers=headers).status_code == 201
    entries = [
        (farm, FARM, {"kind": "planting", "at": "2026-01-05T07:00:00+07:00", "crop": "lychee", "area_ha": "2.5"}),
        (farm, FARM, {"kind": "fertilising", "at": "2026-03-01T07:00:00+07:00", "product": "NPK 16-16-8",
                      "quantity_kg": "120"}),
        (farm, FARM, {"kind": "spraying", "at": "2026-05-20T07:00:00+07:00", "product": "Ridomil Gold",
                      "active_ingredient": "metalaxyl-M", "pre_harvest_interval_days": 14}),
        (farm, FARM, {"kind": "harvest", "at": "2026-06-10T06:30:00+07:00", "gtin": GTIN, "lot": LOT,
                      "quantity_kg": "1250.5", "area_ha": "2.5"}),
        (house, HOUSE, {"kind": "packing", "at": "2026-06-11T09:00:00+07:00", "sscc": SSCC,
                        "lots": [{"gtin": GTIN, "lot": LOT, "quantity_kg": "980"}]}),
        (inspector, HOUSE, {"kind": "inspection", "at": "2026-06-11T15:00:00+07:00", "ssccs": [SSCC],
                            "certificate": "VN-PC-2026-0001"}),
        (house, HOUSE, {"kind": "shipping", "at": "2026-06-12T10:00:00+07:00", "ssccs": [SSCC]}),
    ]  # fmt: skip
    for headers, gln, entry in entries:
        made = client.post("/api/v1/epcis/diary", json={**entry, "site_gln": gln}, headers=headers)
        assert made.status_code == 201, made.text
    # The gate: the pallet leaves under its export declaration (what §3 records); with confidential extensions.
    departing = {
        "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld",
                     {"sg": "https://smartgate.example/epcis/"}],
        "type": "ObjectEvent", "eventTime": "2026-06-12T16:00:00+07:00", "eventTimeZoneOffset": "+07:00",
        "action": "OBSERVE", "epcList": [f"https://id.gs1.org/00/{SSCC}"], "bizStep": "departing",
        "disposition": "in_transit", "readPoint": {"id": f"https://id.gs1.org/414/{GATE}"},
        "bizTransactionList": [
            {"type": "https://smartgate.example/epcis/btt/customsDeclaration",
             "bizTransaction": f"https://smartgate.example/epcis/declaration/{DECLARATION}"},
            {"type": "inv", "bizTransaction": "urn:epcglobal:cbv:bt:8930001000001:123456789012"},
        ],
        "sg:customsValue": 987654321.5, "sg:taxId": "0109876543",
    }  # fmt: skip
    made = client.post("/api/v1/epcis/events", json=departing, headers=inspector)
    assert made.status_code == 201, made.text
    return {"farm": farm, "house": house, "inspector": inspector}


def _all_verified(client: Any) -> bool:
    got = client.get(f"/00/{SSCC}", headers=JSON)
    return got.status_code == 200 and got.json()["verified"]


def test_a_pallet_resolves_to_its_verified_trace_as_json_and_as_a_page(client: Any, keys: Any) -> None:
    seed(client, keys)
    assert wait_for(lambda: _all_verified(client), 60)
    got = client.get(f"/00/{SSCC}?linkType=all&17=270101", headers=JSON)  # GS1 DL query attributes are ignored
    assert got.status_code == 200
    assert got.headers["content-type"].startswith("application/json")
    assert "Accept" in got.headers["vary"]
    assert got.headers["access-control-allow-origin"] == "*"
    trace = got.json()
    assert trace["id"] == f"https://id.gs1.org/00/{SSCC}"
    assert [(f["gln"], f["growing_area_code"], f["cn_registration"]) for f in trace["farms"]] == [
        (FARM, "VN-LCOR-0012", "VNLC-2026-0012")
    ]
    assert [d["step"] for d in trace["diary"]] == ["planting", "fertilising", "spraying"]
    spray = trace["diary"][2]
    assert (spray["pre_harvest_interval_days"], spray["interval_respected"]) == (14, True)
    assert spray["harvest_allowed_from"] == "2026-06-03T00:00:00.000Z"
    assert [(h["lot"], h["quantity_kg"]) for h in trace["harvests"]] == [(LOT, 1250.5)]
    assert [(p["packhouse_gln"], p["packing_house_code"], p["ssccs"]) for p in trace["packing"]] == [
        (HOUSE, "VN-LCPH-003", [SSCC])
    ]
    assert [(i["certificate"], i["conformant"]) for i in trace["inspections"]] == [("VN-PC-2026-0001", True)]
    assert [d["number"] for d in trace["declarations"]] == [DECLARATION]
    assert [g["location_gln"] for g in trace["gate_exits"]] == [GATE]
    # Every fact's event is in the ledger, verified against one signed checkpoint.
    assert len(trace["events"]) == 8
    assert {e["verification"]["status"] for e in trace["events"]} == {"verified"}
    size = trace["checkpoint"]["tree_size"]
    assert {e["verification"]["tree_size"] for e in trace["events"]} == {size}
    assert trace["checkpoint"]["key"] == client.get("/api/v1/ledger/public-key").text.strip()
    assert trace["checkpoint"]["witnesses"] == []  # none configured here; cosigners are named when present
    # ... and the client can check it itself: the bundles verify and name the events' hashes.
    for bundle in trace["ledger_bundles"]:
        report = ledger_bundle.verify_bundle(bundle)
        assert report.tree_size == size
    named = {json.loads(base64.b64decode(b["entries"][0]["payload"]))["event_hash"] for b in trace["ledger_bundles"]}
    assert named == {e["event_hash"] for e in trace["events"]}

    ld = client.get(f"/00/{SSCC}", headers={"Accept": "application/ld+json"})
    assert ld.headers["content-type"].startswith("application/ld+json")
    assert "@context" in ld.json()

    page = client.get(f"/00/{SSCC}", headers=HTML)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["content-language"] == "vi"
    assert "script-src" not in page.headers["content-security-policy"]  # default-src 'none': no script at all
    text = page.text
    for shown in ("Nguồn gốc hàng hóa", "HTX Vải thiều Bắc Hà", FARM, "VN-LCOR-0012", "VN-LCPH-003",
                  "VN-PC-2026-0001", DECLARATION, "đã xác minh với sổ cái", "thời gian cách ly 14 ngày"):  # fmt: skip
        assert shown in text, shown
    assert text.count('data-status="verified"') >= 8
    assert "<script" not in text
    chinese = client.get(f"/00/{SSCC}", headers={**HTML, "Accept-Language": "zh-CN,zh;q=0.9"})
    assert chinese.headers["content-language"] == "zh-Hans"
    assert "已通过账本验证" in chinese.text
    assert "植物检疫证书" in chinese.text
    english = client.get(f"/00/{SSCC}?lang=en", headers={**HTML, "Accept-Language": "zh-CN"})
    assert "verified against the log" in english.text
    assert "Phytosanitary certificate" in english.text


def test_lots_and_products_resolve_too(client: Any, keys: Any) -> None:
    seed(client, keys)
    assert wait_for(lambda: _all_verified(client), 60)
    lot = client.get(f"/01/{GTIN}/10/{LOT}", headers=JSON).json()
    assert lot["kind"] == "lot"
    assert [p["ssccs"] for p in lot["packing"]] == [[SSCC]]
    assert [i["certificate"] for i in lot["inspections"]] == ["VN-PC-2026-0001"]
    assert lot["verified"] is True
    # GTIN-13 in the path is the same product as its GTIN-14
    short = client.get(f"/01/{GTIN[1:]}/10/{LOT}", headers=JSON).json()
    assert short["id"] == lot["id"]
    product = client.get(f"/01/{GTIN}", headers=JSON).json()
    assert product["kind"] == "product"
    assert [(x["lot"], x["path"]) for x in product["lots"]] == [(LOT, f"/01/{GTIN}/10/{LOT}")]
    page = client.get(f"/01/{GTIN}", headers=HTML)
    assert f'href="/01/{GTIN}/10/{LOT}"' in page.text


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/00/089300010000000178", 400, "trace.bad_identifier"),  # wrong check digit
        ("/00/08930001", 400, "trace.bad_identifier"),
        ("/00/0893000100000001x9", 400, "trace.bad_identifier"),
        ("/01/08930001000017/10/LC2026A", 400, "trace.bad_identifier"),  # wrong check digit
        ("/01/089300010000/10/LC2026A", 400, "trace.bad_identifier"),  # 12 digits, wrong check digit
        ("/01/08930001000018/10/" + "L" * 21, 400, "trace.bad_identifier"),  # lot longer than AI 10 allows
        ("/00/089300010000000186", 404, "trace.not_found"),  # valid, never seen
        ("/01/08930001000025/10/X1", 404, "trace.not_found"),
        ("/01/08930001000025", 404, "trace.not_found"),
    ],
)
def test_bad_and_unknown_identifiers_are_problems(client: Any, path: str, status: int, code: str) -> None:
    for headers in (JSON, HTML):
        got = client.get(path, headers=headers)
        assert got.status_code == status, got.text
        assert got.headers["content-type"] == "application/problem+json"
        assert got.json()["code"] == code


def test_an_unacceptable_media_type_is_a_406(client: Any) -> None:
    got = client.get(f"/00/{SSCC}", headers={"Accept": "image/png"})
    assert got.status_code == 406
    assert got.json()["code"] == "trace.not_acceptable"


def test_commercial_and_trader_fields_are_never_public(client: Any, keys: Any) -> None:
    seed(client, keys)
    assert wait_for(lambda: _all_verified(client), 60)
    for path in (f"/00/{SSCC}", f"/01/{GTIN}/10/{LOT}", f"/01/{GTIN}"):
        for headers in (JSON, HTML, {"Accept": "application/ld+json"}):
            text = client.get(path, headers=headers).text
            for secret in SECRETS:
                assert secret not in text, (path, headers, secret)
    # The ledger's public bundles are of EPCIS events only: a declaration's or any other subject is not served.
    assert client.get("/api/v1/ledger/public-bundles", params={"subject": "DECL-1"}).status_code == 404
    too_many = [("subject", f"epcis:{i}") for i in range(201)]
    assert client.get("/api/v1/ledger/public-bundles", params=too_many).status_code == 422


def test_the_trace_bundle_verifies_offline_and_fails_when_tampered(client: Any, keys: Any, runtime: Any) -> None:
    from api.trace import TraceBundleError, build_trace_bundle

    seed(client, keys)
    assert wait_for(lambda: _all_verified(client), 60)
    prov = runtime.extras["provenance"]
    bundle = build_trace_bundle(runtime.sessions, prov, SSCC)
    assert bundle["format"] == ledger_bundle.TRACE_FORMAT
    report = ledger_bundle.verify_trace_bundle(bundle, event_hash=hashing.event_hash)
    # The batch builder (four queries in all) writes what the one-subject builder writes, signature too (unless an
    # anchor of the checkpoint landed in between: the anchoring runs in the background).
    for item in bundle["events"]:
        alone = ledger_bundle.build_bundle(
            prov.read_engine, item["bundle"]["subject"], prov.signer, size=report.tree_size
        )
        if alone["anchors"] == item["bundle"]["anchors"]:
            assert item["bundle"] == alone
        else:
            unanchored = {k: v for k, v in alone.items() if k not in ("anchors", "signature")}
            assert {k: v for k, v in item["bundle"].items() if k not in ("anchors", "signature")} == unanchored
    assert report.key == f"https://id.gs1.org/00/{SSCC}"
    assert len(report.events) == 8
    assert report.hashes_recomputed
    assert ledger_bundle.verify_trace_bundle(json.dumps(bundle).encode()).tree_size == report.tree_size

    def tampered(change: Any) -> dict[str, Any]:
        copied = copy.deepcopy(bundle)
        change(copied)
        return copied

    def harvest(b: dict[str, Any]) -> dict[str, Any]:
        return next(e for e in b["events"] if e["event"].get("bizStep") == "commissioning")

    edits = {
        "a harvest quantity": lambda b: harvest(b)["event"]["quantityList"][0].update(quantity=99999),
        "an event's hash": lambda b: harvest(b).update(event_hash="ni:///sha-256;" + "0" * 64 + "?ver=CBV2.0"),
        "an inclusion proof": lambda b: (
            b["events"][0]["bundle"]["entries"][0]["inclusion_proof"].reverse()
            or b["events"][0]["bundle"]["entries"][0]["inclusion_proof"].append(base64.b64encode(b"x" * 32).decode())
        ),
        "a dropped event": lambda b: b["events"].pop(),
        "the pallet": lambda b: b.update(key="https://id.gs1.org/00/089300010000000186"),
    }
    for what, change in edits.items():
        edited = tampered(change)
        try:
            ledger_bundle.verify_trace_bundle(edited, event_hash=hashing.event_hash)
        except VerificationError:
            continue
        pytest.fail(f"{what} was not caught")
    with pytest.raises(TraceBundleError, match="no trace"):
        build_trace_bundle(runtime.sessions, prov, "089300010000000186")


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, settings: Any) -> None:
    """The CLI reads the same settings as the app under test, from the environment."""
    monkeypatch.setenv("SMARTGATE_ENVIRONMENT", settings.environment)
    monkeypatch.setenv("SMARTGATE_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("SMARTGATE_VAR_DIR", str(settings.var_dir))
    monkeypatch.setenv("SMARTGATE_SECRET_KEY", settings.secret_key)


def test_smartgate_trace_bundle_then_ledger_verify_bundle(client: Any, keys: Any, cli_env: None, tmp_path: Any) -> None:
    from typer.testing import CliRunner

    from api.cli import app

    seed(client, keys)
    assert wait_for(lambda: _all_verified(client), 60)
    out = tmp_path / "pallet.json"
    made = CliRunner().invoke(app, ["trace", "bundle", SSCC, "--out", str(out)])
    assert made.exit_code == 0, made.output
    checked = CliRunner().invoke(app, ["ledger", "verify-bundle", str(out)])
    assert checked.exit_code == 0, checked.output
    assert checked.stdout.startswith(f"OK: trace of https://id.gs1.org/00/{SSCC}: 8 events")
    assert "hashes:     recomputed from each event (CBV 2.0)" in checked.stdout

    document = json.loads(out.read_text())
    for item in document["events"]:
        if item["event"].get("bizStep") == "commissioning":
            item["event"]["quantityList"][0]["quantity"] = 99999
    out.write_text(json.dumps(document))
    tampered = CliRunner().invoke(app, ["ledger", "verify-bundle", str(out)])
    assert tampered.exit_code == 1
    assert tampered.stderr.startswith("error: trace bundle does NOT verify: ")
    assert len(tampered.stderr.strip().splitlines()) == 1

    for sscc, code, says in (
        ("089300010000000178", 2, "invalid SSCC"),
        ("12", 2, "invalid SSCC"),
        ("089300010000000186", 1, "no trace of /00/089300010000000186"),
    ):
        refused = CliRunner().invoke(app, ["trace", "bundle", sscc])
        assert refused.exit_code == code, refused.output
        assert refused.stderr.startswith(f"smartgate: error: {says}")
        assert len(refused.stderr.strip().splitlines()) == 1


def test_the_migration_indexes_the_classes_of_events_stored_before_it(tmp_path: Any) -> None:
    """Events captured before revision tb001 have no class rows; the migration adds them (SQLite: a data step)."""
    from sqlalchemy import create_engine, text

    from services.kernel.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, revision="t0001")
    body = {"type": "ObjectEvent", "quantityList": [{"epcClass": f"urn:epc:class:lgtin:8930001.000001.{LOT}"}]}
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO epcis_events (id, event_id, event_hash, event_type, event_time, record_time, "
                    "recorded_by, ledger_event_id, body) VALUES ('e1', 'x', 'h', 'ObjectEvent', "
                    "'2026-06-10 00:00:00', '2026-06-10 00:00:00', 'producer:k', 'l1', :body)"
                ),
                {"body": json.dumps(body)},
            )
        upgrade(url)
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT event_pk, epc, role FROM epcis_event_epcs")).all()
    finally:
        engine.dispose()
    assert [tuple(r) for r in rows] == [("e1", f"https://id.gs1.org/01/{GTIN}/10/{LOT}", "class")]


def test_a_changed_event_is_shown_as_not_verified(client: Any, keys: Any, runtime: Any) -> None:
    """The repository's tables are not append-only: an operator who edits a stored event (more kilograms) gets a
    page that says the record does NOT verify, not a page that vouches for it."""
    from sqlalchemy import select

    from services.kernel.database import unit_of_work
    from services.traceability.models import EpcisEvent

    seed(client, keys)
    assert wait_for(lambda: _all_verified(client), 60)
    with unit_of_work(runtime.sessions) as session:
        harvest = session.scalars(select(EpcisEvent).where(EpcisEvent.biz_step == "commissioning")).one()
        body = copy.deepcopy(harvest.body)
        body["quantityList"][0]["quantity"] = 9999
        harvest.body = body
        digest = harvest.event_hash
    trace = client.get(f"/00/{SSCC}", headers=JSON).json()
    assert trace["verified"] is False
    failed = [e for e in trace["events"] if e["verification"]["status"] != "verified"]
    assert [(e["event_hash"], e["verification"]["status"]) for e in failed] == [(digest, "failed")]
    assert "no longer hashes" in failed[0]["verification"]["reason"]
    page = client.get(f"/00/{SSCC}", headers=HTML).text
    assert 'data-status="failed"' in page
    assert "KHÔNG khớp với sổ cái" in page
    assert 'id="summary" data-status="partial"' in page


def test_without_the_ledger_the_trace_is_a_503_not_an_unverified_page(
    client: Any, keys: Any, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A traceability process without the provenance service: no ledger URL, or one that does not answer."""
    from fastapi.testclient import TestClient

    from api.app import create_app
    from benchmarks._harness import free_port

    seed(client, keys)
    alone = settings.model_copy(update={"services": "traceability"})
    for url, code in ((None, "trace.no_ledger"), (f"http://127.0.0.1:{free_port()}", "trace.ledger_unavailable")):
        if url:
            monkeypatch.setenv("SMARTGATE_TRACE_LEDGER_URL", url)
        app = create_app(alone)
        with TestClient(app) as own:
            for headers in (JSON, HTML):
                got = own.get(f"/00/{SSCC}", headers=headers)
                assert got.status_code == 503, got.text
                assert got.json()["code"] == code
        app.state.runtime.close()


def test_a_harvest_inside_the_pre_harvest_interval_and_a_lot_on_two_pallets(client: Any, keys: Any) -> None:
    made = seed(client, keys)
    other = "089300010000000186"
    again = {"kind": "packing", "at": "2026-06-11T11:00:00+07:00", "site_gln": HOUSE, "sscc": other,
             "lots": [{"gtin": GTIN, "lot": LOT, "quantity_kg": "200"}]}  # fmt: skip
    assert client.post("/api/v1/epcis/diary", json=again, headers=made["house"]).status_code == 201
    # A second farm's lot, harvested 9 days after a spraying whose interval is 30 days.
    farm2 = keys.make("producer", org="HTX Mường Khương")
    site = {"kind": "farm", "name": "Vùng trồng 7", "vn_code": "VN-LCOR-0007"}
    assert client.put("/api/v1/epcis/sites/8930001000032", json=site, headers=farm2).status_code == 201
    for entry in (
        {"kind": "spraying", "at": "2026-06-01T07:00:00+07:00", "product": "Confidor 100SL",
         "active_ingredient": "imidacloprid", "pre_harvest_interval_days": 30},
        {"kind": "harvest", "at": "2026-06-10T07:00:00+07:00", "gtin": GTIN, "lot": "MK2026B", "quantity_kg": "800",
         "area_ha": "1.5"},
    ):  # fmt: skip
        got = client.post("/api/v1/epcis/diary", json={**entry, "site_gln": "8930001000032"}, headers=farm2)
        assert got.status_code == 201, got.text
    assert wait_for(lambda: _all_verified(client), 60)

    first = client.get(f"/00/{SSCC}", headers=JSON).json()
    assert len(first["events"]) == 8  # the lot's packing onto the other pallet is that pallet's story
    second = client.get(f"/00/{other}", headers=JSON).json()
    assert [p["ssccs"] for p in second["packing"]] == [[other]]
    assert [f["gln"] for f in second["farms"]] == [FARM]
    lot = client.get(f"/01/{GTIN}/10/{LOT}", headers=JSON).json()
    assert sorted(s for p in lot["packing"] for s in p["ssccs"]) == sorted([SSCC, other])

    def early() -> bool:
        got = client.get(f"/01/{GTIN}/10/MK2026B", headers=JSON)
        return got.status_code == 200 and got.json()["verified"]

    assert wait_for(early, 60)
    sprayed = client.get(f"/01/{GTIN}/10/MK2026B", headers=JSON).json()["diary"]
    assert [(d["step"], d["interval_respected"], d["harvest_allowed_from"]) for d in sprayed] == [
        ("spraying", False, "2026-07-01T00:00:00.000Z")
    ]
    assert "KHÔNG được tuân thủ" in client.get(f"/01/{GTIN}/10/MK2026B", headers=HTML).text
    product = client.get(f"/01/{GTIN}", headers=JSON).json()
    assert {x["lot"] for x in product["lots"]} == {LOT, "MK2026B"}
