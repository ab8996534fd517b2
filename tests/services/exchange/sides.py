"""Fixtures of the message types' tests (imported by their modules): one side of the border (the app on a test
database), a partner to receive messages from (by calling the types' inbound functions, as the transport does),
and readers of our outbox."""

from __future__ import annotations

import copy
import datetime as dt
import itertools
import uuid
from typing import Any

import jsonschema_rs
import pytest
from sqlalchemy import select

from services.declarations.assessment import VN_TZ
from services.declarations.tariff import DEMO_RATES, post_rate
from services.exchange.messages import MESSAGE_TYPES
from services.exchange.registry import Inbound, Outbound
from services.kernel.database import unit_of_work, utcnow
from services.kernel.outbox import Event, OutboxEvent

PARTNER = "cn-hekou"
_keys = itertools.count()


class Side:
    """Our administration in a test: file, read, receive from the partner, and see what we would send."""

    def __init__(self, runtime: Any, client: Any, keys: Any) -> None:
        self.runtime, self.client = runtime, client
        with unit_of_work(runtime.sessions) as session:
            for currency, rate in DEMO_RATES.items():
                post_rate(session, currency=currency, day=dt.datetime.now(VN_TZ).date(), vnd_per_unit=rate,
                          source="t", actor="t")  # fmt: skip
        self.officers = [keys.make("officer")]
        for headers in self.officers:
            assert client.put("/api/v1/review/duty", json={"on_duty": True}, headers=headers).status_code == 200
        self.trader = keys.make("trader", "Lao Cai Fruit Import JSC")
        self.issuer = keys.make("origin_issuer")
        self.admin = keys.make("admin")

    def file(self, body: dict[str, Any]) -> dict[str, Any]:
        """File and submit; the declaration as an officer sees it."""
        resp = self.client.post("/api/v1/declarations?submit=true", json=body,
                                headers={**self.trader, "Idempotency-Key": f"x-{next(_keys)}"})  # fmt: skip
        assert resp.status_code == 201, resp.text
        return self.read(resp.json()["id"])

    def read(self, decl_id: str) -> dict[str, Any]:
        resp = self.client.get(f"/api/v1/declarations/{decl_id}", headers=self.officers[0])
        assert resp.status_code == 200, resp.text
        return resp.json()

    def receive(self, type_: str, payload: dict[str, Any], correlation_id: str,
                created_at: dt.datetime | None = None) -> list[dict[str, str]]:  # fmt: skip
        """What the transport does with a verified, schema-valid message of the partner: the type's inbound in
        the transaction that stores it; then the relay publishes what it emitted."""
        validate(type_, payload)
        message = Inbound(message_id=str(uuid.uuid4()), sender=PARTNER, type=type_, correlation_id=correlation_id,
                          created_at=created_at or utcnow(), payload=payload)  # fmt: skip
        with unit_of_work(self.runtime.sessions) as session:
            warnings = MESSAGE_TYPES[type_].inbound(session, message)
        self.runtime.relay.drain()
        return warnings

    def events(self, type_: str) -> list[Event]:
        """Our events of `type_`, oldest first."""
        with self.runtime.read_sessions() as session:
            rows = session.scalars(select(OutboxEvent).where(OutboxEvent.type == type_).order_by(OutboxEvent.seq))
            return [Event(id=r.id, type=r.type, subject=r.subject, payload=r.payload, occurred_at=r.occurred_at)
                    for r in rows]  # fmt: skip

    def sent(self, type_: str) -> list[Outbound]:
        """The messages of `type_` our events would send (every outbound of every event), each schema-valid."""
        self.runtime.relay.drain()
        with self.runtime.read_sessions() as session:
            rows = list(session.scalars(select(OutboxEvent).order_by(OutboxEvent.seq)))
        out = []
        for r in rows:
            event = Event(id=r.id, type=r.type, subject=r.subject, payload=r.payload, occurred_at=r.occurred_at)
            for t in MESSAGE_TYPES.values():
                for message in t.outbound(event) if t.outbound else []:
                    validate(message.type, message.payload)
                    if message.type == type_:
                        out.append(message)
        return out


def validate(type_: str, payload: dict[str, Any]) -> None:
    """Fail with the schema's words when `payload` is not a valid `type_` message payload."""
    validator = jsonschema_rs.validator_for(MESSAGE_TYPES[type_].schema)
    errors = [f"{e.instance_path}: {e.message}" for e in validator.iter_errors(payload)]
    assert not errors, errors


@pytest.fixture(name="side")
def side_fixture(runtime, client, keys) -> Side:
    return Side(runtime, client, keys)


@pytest.fixture
def import_body(declaration_body) -> dict[str, Any]:
    """Lychees from China into Viet Nam, claiming Form E, naming the partner's export declaration."""
    body = copy.deepcopy(declaration_body)
    body["partner_reference"] = "HK-2026-000042"
    return body


@pytest.fixture
def export_body(declaration_body) -> dict[str, Any]:
    """Lychees from Viet Nam to China, with the Form E issued for them."""
    body = copy.deepcopy(declaration_body)
    body["kind"], body["procedure_code"] = "export", "B11"
    body["consignor"], body["consignee"] = body["consignee"], body["consignor"]
    body["items"][0]["origin"] = "VN"
    return body


def pre_arrival(number: str = "HK-2026-000042", **line: Any) -> dict[str, Any]:
    """The partner's pre-arrival notice of the EXAMPLE consignment (its export), with changes to its line."""
    item = {"hs": "081090", "quantity": "12000", "gross": "13000", "value": "9600.00", "currency": "USD",
            "origin": "CN"} | line  # fmt: skip
    return {
        "declaration": {
            "id": number,
            "typeCode": "EX",
            "procedureCode": "0110",
            "version": 1,
            "exitOffice": {"id": "HEKOU"},
        },
        "consignor": {
            "id": "91110000600037341L",
            "name": "Yunnan Hekou Fruit Trading Co., Ltd.",
            "address": {"line": "No. 8 Binlang Road, Hekou", "countryCode": "CN"},
        },
        "consignee": {
            "id": "0100233488",
            "name": "Cong ty TNHH Thuong mai Lao Cai",
            "address": {"line": "So 1 Duong Hoang Lien, Lao Cai", "countryCode": "VN"},
        },
        "goodsShipment": {
            "totalGrossMassMeasure": {"value": item["gross"], "unitCode": "KGM"},
            "governmentAgencyGoodsItem": [
                {
                    "sequenceNumeric": 1,
                    "commodity": {
                        "description": "Fresh lychees",
                        "classification": {
                            "id": item["hs"],
                            "identificationTypeCode": "HS",
                            "nationalTariffCode": None,
                        },
                    },
                    "origin": {"countryCode": item["origin"]},
                    "goodsMeasure": {
                        "tariffQuantity": {"value": item["quantity"], "unitCode": "KGM"},
                        "grossMassMeasure": {"value": item["gross"], "unitCode": "KGM"},
                    },
                    "customsValueAmount": {"value": item["value"], "currencyId": item["currency"]},
                }
            ],
        },
        "transportEquipment": [{"id": "CSQU3054383", "seal": [{"id": "CN1234567"}]}],
        "borderTransportMeans": {
            "id": "24C-123.45",
            "identificationTypeCode": "plate",
            "modeCode": "3",
            "trailerId": None,
        },
        "additionalDocument": [{"id": "E263600001234567", "typeCode": "861"}],
        "expectedCrossing": {"dateTime": "2026-11-28T08:30:00+07:00", "borderLocation": {"id": "HEKOU"}},
    }


def certificate(number: str = "E263600001234567", *, quantity: str = "20000", hs: str = "081090",
                issued: dt.date | None = None, valid: dt.date | None = None) -> dict[str, Any]:  # fmt: skip
    """A Form E the partner (the exporting side) issued for lychees."""
    issued = issued or dt.date(2026, 11, 20)
    return {
        "id": number, "typeCode": "ACFTA-E", "issueDate": issued.isoformat(),
        "validityEndDate": (valid or issued + dt.timedelta(days=365)).isoformat(),
        "issuingAuthority": {"id": PARTNER, "name": "Hekou Customs District"},
        "exporter": {"id": "91110000600037341L", "name": "Yunnan Hekou Fruit Trading Co., Ltd.",
                     "address": {"line": "No. 8 Binlang Road, Hekou", "countryCode": "CN"}},
        "importer": {"id": "0100233488", "name": "Cong ty TNHH Thuong mai Lao Cai",
                     "address": {"line": "So 1 Duong Hoang Lien, Lao Cai", "countryCode": "VN"}},
        "importingCountryCode": "VN",
        "governmentAgencyGoodsItem": [{
            "sequenceNumeric": 1,
            "commodity": {"description": "Fresh lychees", "classification": {"id": hs, "identificationTypeCode": "HS",
                                                                              "nationalTariffCode": None}},
            "goodsMeasure": {"tariffQuantity": {"value": quantity, "unitCode": "KGM"},
                             "grossMassMeasure": {"value": quantity, "unitCode": "KGM"}},
            "originCriterion": "WO",
        }],
    }  # fmt: skip
