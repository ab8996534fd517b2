"""The message types over the real transport: two administrations, each its own database and app, signed pushes."""

from __future__ import annotations

import datetime as dt

import httpx
from sqlalchemy import select

from services.declarations.assessment import VN_TZ
from services.declarations.models import PartnerCertificate, PartnerConsignment
from services.declarations.tariff import DEMO_RATES, post_rate
from services.exchange.messages import MESSAGE_TYPES
from services.kernel.auth import Role, create_key, get_or_create_organisation
from services.kernel.database import unit_of_work


def _trader(side) -> dict[str, str]:
    with unit_of_work(side.runtime.sessions) as session:
        for currency, rate in DEMO_RATES.items():
            post_rate(session, currency=currency, day=dt.datetime.now(VN_TZ).date(), vnd_per_unit=rate, source="t",
                      actor="t")  # fmt: skip
        org = get_or_create_organisation(session, name="Lao Cai Fruit Export JSC")
        _, key = create_key(session, secret_key=side.settings.secret_key, role=Role.trader, organisation=org)
        _, issuer = create_key(session, secret_key=side.settings.secret_key, role=Role.origin_issuer, organisation=None)
    return {"trader": key, "issuer": issuer}


def test_an_export_and_its_form_e_reach_the_partner(pair_factory, export_body) -> None:
    vn, cn = pair_factory()
    for side in (vn, cn):
        side.ex.types = dict(MESSAGE_TYPES)  # the real message types instead of the transport tests' own
    keys = _trader(vn)
    certificate = {
        "number": "E26VN0000123", "issuing_authority": "Regional Import-Export Management Office, Lao Cai (MOIT)",
        "exporter": {"name": "Lao Cai Fruit Export JSC", "address": "Lao Cai", "country": "VN", "tax_id": "0100233488"},
        "importer": {"name": "Yunnan Hekou Fruit Trading Co., Ltd.", "address": "Hekou", "country": "CN"},
        "lines": [{"hs_code": "081090", "description": "Fresh lychees", "quantity": "12000", "unit": "KGM",
                   "gross_mass_kg": "13000", "origin_criterion": "WO"}],
        "issue_date": dt.date.today().isoformat(),
    }  # fmt: skip
    with httpx.Client(base_url=vn.url, timeout=10) as client:
        issued = client.post("/api/v1/exchange/origin-certificates", json=certificate,
                             headers={"Authorization": f"Bearer {keys['issuer']}"})  # fmt: skip
        assert issued.status_code == 201, issued.text
        filed = client.post(
            "/api/v1/declarations?submit=true",
            json=export_body,
            headers={"Authorization": f"Bearer {keys['trader']}", "Idempotency-Key": "pair-1"},
        )
        assert filed.status_code == 201, filed.text
    number = filed.json()["number"]
    vn.runtime.relay.drain()
    vn.push()
    cn.runtime.relay.drain()
    sent = {m.type for m in vn.messages("out")}
    assert {"preArrival", "originCertificate"} <= sent
    with cn.runtime.read_sessions() as session:
        consignment = session.get(PartnerConsignment, number)
        assert consignment is not None
        assert consignment.sender == "vn-kimthanh"
        assert consignment.payload["goodsShipment"]["governmentAgencyGoodsItem"][0]["commodity"]["classification"][
            "id"] == "081090"  # fmt: skip
        [cert] = session.scalars(select(PartnerCertificate)).all()
        assert (cert.number, cert.sender) == ("E26VN0000123", "vn-kimthanh")
