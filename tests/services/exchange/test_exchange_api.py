"""The exchange's own API (public key, schemas, partners, delivery states, retry) and the `smartgate exchange` CLI,
on one side whose partner is down."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from services.exchange import service
from services.kernel.auth import Role, create_key
from services.kernel.database import unit_of_work
from tests.services.exchange.conftest import Side

BASE = "/api/v1/exchange"


def key(side: Side, role: str) -> dict[str, str]:
    with unit_of_work(side.runtime.sessions) as session:
        _, clear = create_key(session, secret_key=side.settings.secret_key, role=Role(role))
    return {"Authorization": f"Bearer {clear}"}


def test_our_key_and_the_schemas_are_public(pair: tuple[Side, Side]) -> None:
    vn, _ = pair
    published = httpx.get(vn.url + BASE + "/public-key", timeout=5).json()
    assert published == {"administration": "vn-kimthanh", "keys": [vn.ex.signer.public_jwk()]}
    index = httpx.get(vn.url + BASE + "/schemas", timeout=5).json()
    assert [s["name"] for s in index["schemas"]] == ["envelope.v1", "controlResult.v1", "receipt.v1"]
    envelope = httpx.get(vn.url + BASE + "/schemas/envelope.v1.json", timeout=5)
    assert envelope.headers["content-type"].startswith("application/schema+json")
    assert envelope.json()["required"][:2] == ["messageId", "correlationId"]
    assert httpx.get(vn.url + BASE + "/schemas/receipt.v1.json", timeout=5).json()["properties"]["status"]
    missing = httpx.get(vn.url + BASE + "/schemas/nothing.v9.json", timeout=5)
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")


def test_partners_are_registered_by_an_admin_and_read_by_staff(pair: tuple[Side, Side]) -> None:
    vn, cn = pair
    body = {"code": "cn-other", "name": "Another side", "baseUrl": "http://127.0.0.1:9", "keys": [
        {"kty": "OKP", "crv": "Ed25519", "x": cn.ex.signer.public_jwk()["x"], "kid": "cn-other-1"}]}  # fmt: skip
    officer = key(vn, "officer")
    assert httpx.post(vn.url + BASE + "/partners", json=body, headers=officer, timeout=5).status_code == 403
    admin = key(vn, "admin")
    made = httpx.post(vn.url + BASE + "/partners", json=body, headers=admin, timeout=5)
    assert made.status_code == 201
    assert made.json()["keys"] == body["keys"]
    again = httpx.post(vn.url + BASE + "/partners", json={**body, "name": "Renamed"}, headers=admin, timeout=5)
    assert again.status_code == 200
    assert again.json()["name"] == "Renamed"
    clash = {**body, "code": "cn-third", "keys": [{**body["keys"][0], "kid": cn.ex.signer.kid}]}
    taken = httpx.post(vn.url + BASE + "/partners", json=clash, headers=admin, timeout=5)
    assert taken.status_code == 409
    assert taken.json()["code"] == "exchange.partner_kid"
    private = {**body, "keys": [{**body["keys"][0], "d": "secret"}]}
    refused = httpx.post(vn.url + BASE + "/partners", json=private, headers=admin, timeout=5)
    assert refused.status_code == 422
    assert refused.json()["code"] == "exchange.partner_keys"
    ourselves = httpx.post(vn.url + BASE + "/partners", json={**body, "code": "vn-kimthanh"}, headers=admin,
                           timeout=5)  # fmt: skip
    assert ourselves.status_code == 422
    listed = httpx.get(vn.url + BASE + "/partners", headers=officer, timeout=5).json()["items"]
    assert [p["code"] for p in listed] == ["cn-hekou", "cn-other"]


def test_delivery_states_are_queryable_and_a_message_can_be_pushed_again(pair_factory: Any) -> None:
    vn, cn = pair_factory(serve_cn=False)
    (message_id,) = vn.queue("VN-H", "state")
    vn.push(rounds=1)
    officer = key(vn, "officer")
    page = httpx.get(vn.url + BASE + "/messages", params={"direction": "out"}, headers=officer, timeout=5).json()
    (item,) = page["items"]
    assert (item["messageId"], item["state"], item["attempts"]) == (message_id, "retrying", 1)
    assert "ConnectError" in item["lastError"]
    one = httpx.get(vn.url + BASE + f"/messages/{message_id}", headers=officer, timeout=5).json()
    assert one["jws"].count(".") == 2
    assert one["receipt"] is None
    assert httpx.post(vn.url + BASE + f"/messages/{message_id}/retry", headers=officer, timeout=5).status_code == 403
    engineer = key(vn, "engineer")
    again = httpx.post(vn.url + BASE + f"/messages/{message_id}/retry", headers=engineer, timeout=5)
    assert again.status_code == 202
    cn.start()
    vn.push()
    done = httpx.get(vn.url + BASE + f"/messages/{message_id}", headers=officer, timeout=5).json()
    assert (done["state"], done["receiptStatus"]) == ("acknowledged", "accepted")
    finished = httpx.post(vn.url + BASE + f"/messages/{message_id}/retry", headers=engineer, timeout=5)
    assert finished.status_code == 409
    assert finished.json()["code"] == "exchange.retry_acknowledged"
    received = httpx.get(cn.url + BASE + "/messages", params={"direction": "in"}, headers=key(cn, "officer"),
                         timeout=5).json()["items"]  # fmt: skip
    assert [(m["messageId"], m["state"]) for m in received] == [(message_id, "accepted")]


@pytest.fixture
def cli(pair_factory: Any, monkeypatch: pytest.MonkeyPatch) -> tuple[Side, Side, CliRunner]:
    vn, cn = pair_factory(serve_cn=False)
    for name, value in {"SMARTGATE_DATABASE_URL": vn.settings.resolved_database_url, "SMARTGATE_ENVIRONMENT": "test",
                        "SMARTGATE_SECRET_KEY": vn.settings.secret_key, "SMARTGATE_VAR_DIR": str(vn.settings.var_dir),
                        "SMARTGATE_ADMINISTRATION": "vn-kimthanh"}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    return vn, cn, CliRunner()


def test_the_cli_shows_and_repairs_the_state(cli: tuple[Side, Side, CliRunner]) -> None:
    from api.cli import app

    vn, cn, runner = cli
    vn.queue("VN-I", "one")
    vn.push(rounds=1)
    shown = runner.invoke(app, ["exchange", "status"])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["partners"] == {"cn-hekou": {"out.retrying": 1}}
    listed = json.loads(runner.invoke(app, ["exchange", "messages", "--direction", "out"]).output)
    assert [m["state"] for m in listed] == ["retrying"]
    partners = json.loads(runner.invoke(app, ["exchange", "partners", "list"]).output)
    assert [p["code"] for p in partners] == ["cn-hekou"]
    assert json.loads(runner.invoke(app, ["exchange", "public-key"]).output)["keys"] == [vn.ex.signer.public_jwk()]
    retried = runner.invoke(app, ["exchange", "retry"])
    assert json.loads(retried.output) == {"retried": 1}
    unknown = runner.invoke(app, ["exchange", "retry", "no-such-message"])
    assert unknown.exit_code == 2
    assert unknown.output.strip() == "smartgate: error: exchange message no-such-message not found"
    bad = runner.invoke(app, ["exchange", "partners", "add", "cn-x", "--url", "ftp://x", "--key", "{}"])
    assert bad.exit_code == 2
    assert bad.output.strip().count("\n") == 0
    keygen = runner.invoke(app, ["exchange", "keygen", "--code", "cn-hekou"])
    assert keygen.output.startswith("cn-hekou-")
    with unit_of_work(vn.runtime.read_sessions) as session:
        (row,) = service.list_messages(session)
        assert row.state == "retrying"
