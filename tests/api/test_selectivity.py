"""Selectivity: the random draw is the declaration's own (amendments never re-draw it), an amendment never lowers
the channel, and a trader never sees how its declaration was selected — not in the API, its webhooks or its
ledger bundle — while officers see everything. On SQLite and PostgreSQL, through the HTTP API."""

from __future__ import annotations

import base64
import copy
import datetime as dt
import json
import re
import uuid
from typing import Any

import pytest

from ledger.bundle import verify_bundle
from services.declarations.assessment import VN_TZ
from services.declarations.selectivity import commitment_of
from services.declarations.tariff import DEMO_RATES, post_rate
from services.kernel.database import unit_of_work
from tests.services.webhooks.test_webhooks import Receiver
from tests.support import wait_for

BASE = "/api/v1/declarations"
# Rule ids nobody would write by chance: finding one in a trader's JSON is a leak.
COIN = """version: 't.coin'
seed: 11
thresholds: {yellow: 30, red: 75}
random_selection: {yellow: 0.5}
rules:
  - {id: zq_fruit_watch, type: hs_watchlist, prefixes: ['08'], weight: 35, reason: fruit}
"""
PLAIN = """version: 't.plain'
seed: 12
thresholds: {yellow: 30, red: 75}
rules:
  - {id: zq_fruit_watch, type: hs_watchlist, prefixes: ['08'], weight: 35, reason: fruit}
  - {id: zq_ore_watch, type: hs_watchlist, prefixes: ['26'], weight: 80, reason: ore}
"""
RULE_IDS = ("zq_fruit_watch", "zq_ore_watch", "random_yellow", "random_red", "channel_kept")


@pytest.fixture
def gate(settings: Any, runtime: Any, keys: Any, declaration_body: dict[str, Any], monkeypatch: pytest.MonkeyPatch):
    """The platform with quick webhook retries and checkpoints taken by the test; a trader, two officers on duty,
    an admin, and today's exchange rates."""
    from fastapi.testclient import TestClient

    from api.app import create_app

    for name in ("SMARTGATE_CHAIN_RPC_URL", "SMARTGATE_LEDGER_SIGNING_KEY", "SMARTGATE_LEDGER_ORIGIN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SMARTGATE_LEDGER_CHECKPOINT_SECONDS", "3600")
    monkeypatch.setenv("SMARTGATE_LEDGER_CHECKPOINT_ENTRIES", "1000000")
    monkeypatch.setenv("SMARTGATE_WEBHOOK_RETRY_SECONDS", "[0.05, 0.05]")
    monkeypatch.setenv("SMARTGATE_WEBHOOK_POLL_SECONDS", "0.05")
    monkeypatch.setenv("SMARTGATE_WEBHOOK_TIMEOUT_SECONDS", "5")
    with unit_of_work(runtime.sessions) as session:
        for currency, rate in DEMO_RATES.items():
            post_rate(session, currency=currency, day=dt.datetime.now(VN_TZ).date(), vnd_per_unit=rate, source="t",
                      actor="t")  # fmt: skip
    with TestClient(create_app(settings, runtime=runtime)) as client:
        officers = [keys.make("officer"), keys.make("officer")]
        for headers in officers:
            assert client.put("/api/v1/review/duty", json={"on_duty": True}, headers=headers).status_code == 200
        gate = Gate(client, runtime, keys.make("trader", "Selectivity Co"), officers, keys.make("admin"),
                    declaration_body)  # fmt: skip
        gate.supervisor, gate.treasury = keys.make("supervisor"), keys.make("treasury")
        yield gate


class Gate:
    """Files, amends and reads declarations as the trader and as an officer."""

    def __init__(self, client: Any, runtime: Any, trader: dict[str, str], officers: list[dict[str, str]],
                 admin: dict[str, str], body: dict[str, Any]) -> None:  # fmt: skip
        self.client, self.runtime, self.trader, self.officers, self.admin = client, runtime, trader, officers, admin
        self.officer = officers[0]
        self.body = body
        self.supervisor: dict[str, str] = {}
        self.treasury: dict[str, str] = {}

    def rule_set(self, text: str) -> None:
        """Store and activate a rule set."""
        assert self.client.post("/api/v1/risk/rule-sets", json={"yaml": text}, headers=self.admin).status_code == 201
        version = re.search(r"version: '([^']+)'", text).group(1)  # type: ignore[union-attr]
        assert self.client.post(f"/api/v1/risk/rule-sets/{version}/activate", headers=self.admin).status_code == 200

    def goods(self, hs_code: str, description: str = "Parts of excavators") -> dict[str, Any]:
        """The example body with one goods line changed."""
        body = copy.deepcopy(self.body)
        body["items"][0].update(hs_code=hs_code, description=description)
        return body

    def file(self, body: dict[str, Any]) -> dict[str, Any]:
        resp = self.client.post(f"{BASE}?submit=true", json=body,
                                headers={**self.trader, "Idempotency-Key": uuid.uuid4().hex})  # fmt: skip
        assert resp.status_code == 201, resp.text
        found: dict[str, Any] = resp.json()
        return found

    def amend(self, decl_id: str, body: dict[str, Any]) -> dict[str, Any]:
        etag = self.client.get(f"{BASE}/{decl_id}", headers=self.trader).json()["etag"]
        resp = self.client.post(f"{BASE}/{decl_id}/amend", json=body, headers={**self.trader, "If-Match": etag})
        assert resp.status_code == 200, resp.text
        found: dict[str, Any] = resp.json()
        return found

    def seen(self, decl_id: str) -> dict[str, Any]:
        """The officer's view."""
        resp = self.client.get(f"{BASE}/{decl_id}", headers=self.officer)
        assert resp.status_code == 200, resp.text
        found: dict[str, Any] = resp.json()
        return found

    def decide(self, decl_id: str, outcome: str, reason: str) -> dict[str, Any]:
        """The assigned officer decides on the version it read."""
        seen = self.seen(decl_id)
        officer = next(h for h in self.officers if h["Authorization"].split("_")[1] == seen["assigned_officer"])
        resp = self.client.post(f"{BASE}/{decl_id}/decisions", json={"outcome": outcome, "reason": reason},
                                headers={**officer, "If-Match": seen["etag"]})  # fmt: skip
        assert resp.status_code == 200, resp.text
        found: dict[str, Any] = resp.json()
        return found

    def queue(self) -> list[str]:
        return [d["id"] for d in self.client.get("/api/v1/review/queue", headers=self.officer).json()]

    def actions(self, decl_id: str) -> list[str]:
        history = self.client.get(f"{BASE}/{decl_id}/history", headers=self.officer).json()
        return [t["action"] for t in history["transitions"]]


def randomly_selected(decl: dict[str, Any]) -> bool:
    return "random_yellow" in {r["rule"] for r in decl["risk"]["reasons"]}


# ------------------------------------------------------------------------------------------------ the draw


def test_amending_never_redraws_the_random_selection(gate: Gate) -> None:
    gate.rule_set(COIN)  # half of all declarations drawn yellow, whatever their goods
    parts = gate.goods("84314990")
    filed: list[dict[str, Any]] = []
    # File until both outcomes of the draw are seen (each filing is a fair coin: 40 all alike is 2^-39).
    for _ in range(40):
        filed.append(gate.seen(gate.file(parts)["id"]))
        if len({randomly_selected(d) for d in filed}) == 2:
            break
    draws = [d["risk"]["random_draw"] for d in filed]
    assert len(set(draws)) == len(draws)  # each declaration has its own draw
    selected = next(d for d in filed if randomly_selected(d))
    passed = next(d for d in filed if not randomly_selected(d))
    assert (selected["channel"], selected["status"]) == ("yellow", "submitted")
    assert (passed["channel"], passed["status"]) == ("green", "cleared")
    for n in range(20):
        # The attack the audit found: one more "." in the description re-ran the draw.
        body = gate.goods("84314990", "Parts of excavators" + "." * (n + 1))
        for before in (selected, passed):
            gate.amend(before["id"], body)
            after = gate.seen(before["id"])
            assert after["version"] == n + 2
            assert after["risk"]["random_draw"] == before["risk"]["random_draw"]
            assert randomly_selected(after) == randomly_selected(before)
            assert after["channel"] == before["channel"]
    assert gate.seen(selected["id"])["status"] == "submitted"  # still waiting for an officer
    assert "clear" not in gate.actions(selected["id"])
    # The green one was cleared again by the platform after each amendment (green stays green).
    assert gate.seen(passed["id"])["status"] == "cleared"


# ------------------------------------------------------------------------------------------------ amendments


def test_a_yellow_amended_to_innocuous_goods_stays_yellow_and_in_review(gate: Gate) -> None:
    gate.rule_set(PLAIN)  # no random selection: fruit is yellow, ore red, anything else green
    decl = gate.file(gate.goods("08109020", "Fresh lychees"))
    assert (decl["channel"], decl["status"]) == ("yellow", "submitted")
    amended = gate.amend(decl["id"], gate.goods("84314990"))
    assert (amended["channel"], amended["status"]) == ("yellow", "submitted")
    seen = gate.seen(decl["id"])
    assert seen["risk"]["score"] == 0  # the new goods alone would be green
    assert "channel_kept" in {r["rule"] for r in seen["risk"]["reasons"]}
    assert decl["id"] in gate.queue()
    assert "clear" not in gate.actions(decl["id"])
    # Asked for documents, the trader amends instead: back to review, still yellow.
    gate.decide(decl["id"], "request_documents", "phytosanitary certificate, please")
    amended = gate.amend(decl["id"], gate.goods("84314990", "Parts of excavators, used"))
    assert (amended["channel"], amended["status"]) == ("yellow", "submitted")
    assert decl["id"] in gate.queue()
    # Only an officer's decision clears it.
    assert gate.decide(decl["id"], "clear", "documents in order")["status"] == "cleared"


def test_new_goods_raise_the_channel_of_yellow_and_green_declarations(gate: Gate) -> None:
    gate.rule_set(PLAIN)
    yellow = gate.file(gate.goods("08109020", "Fresh lychees"))
    assert gate.amend(yellow["id"], gate.goods("26011110", "Iron ore"))["channel"] == "red"
    green = gate.file(gate.goods("84314990"))
    assert (green["channel"], green["status"]) == ("green", "cleared")
    # Amended after clearance, before release: assessed again, and fruit needs review.
    amended = gate.amend(green["id"], gate.goods("08109020", "Fresh lychees"))
    assert (amended["channel"], amended["status"]) == ("yellow", "submitted")
    assert green["id"] in gate.queue()


# ------------------------------------------------------------------------------------------------ confidentiality


def _leaks(text: str, officer_ids: list[str]) -> list[str]:
    """What a trader must not find in `text`: selection internals and officers' key ids."""
    needles = ['"risk"', '"score"', '"weight"', '"reasons"', '"rules"', "random_draw", "rule_set_version",
               '"assigned_officer"', "officer:", "supervisor:", "treasury:", *RULE_IDS, *officer_ids]  # fmt: skip
    return [n for n in needles if n in text]


def test_a_trader_never_sees_how_its_declaration_was_selected_and_officers_see_everything(gate: Gate) -> None:
    gate.rule_set(PLAIN)
    client, trader = gate.client, gate.trader
    receiver = Receiver()
    try:
        hook = client.post("/api/v1/webhooks", json={"url": receiver.url}, headers=trader)
        assert hook.status_code == 201, hook.text
        trader_json: list[str] = []
        created = gate.file(gate.goods("08109020", "Fresh lychees"))
        decl_id = created["id"]
        trader_json.append(json.dumps(created))
        trader_json.append(json.dumps(gate.amend(decl_id, gate.goods("08109020", "Fresh lychees, class I"))))
        officer_ids = [h["Authorization"].split("_")[1] for h in gate.officers]
        other = next(i for i in officer_ids if i != gate.seen(decl_id)["assigned_officer"])
        staff_ids = [*officer_ids, *(h["Authorization"].split("_")[1] for h in (gate.supervisor, gate.treasury))]
        moved = client.post(f"{BASE}/{decl_id}/assignment", json={"officer_key_id": other}, headers=gate.supervisor)
        assert moved.status_code == 200, moved.text
        gate.decide(decl_id, "request_documents", "phytosanitary certificate, please")
        asked = client.get(f"{BASE}/{decl_id}", headers=trader).json()
        assert set(asked["allowed_actions"]) == {"amend", "cancel", "provide_documents"}
        assert "upload the documents" in asked["next_step"]
        trader_json.append(json.dumps(asked))
        phyto = {"file": ("phyto.pdf", b"%PDF-1.7", "application/pdf")}
        upload = client.post(f"{BASE}/{decl_id}/documents", files=phyto, headers=trader)
        assert upload.status_code == 201
        gate.decide(decl_id, "clear", "certificate in order")
        due = gate.seen(decl_id)["duties_due_vnd"]
        assert due > 0
        paid = client.post(f"{BASE}/{decl_id}/payments", headers=trader,
                           json={"bank_reference": "VCB-SEL-1", "amount_vnd": due})  # fmt: skip
        assert paid.status_code == 201, paid.text
        assert paid.json()["status"] == "claimed"
        trader_json.append(paid.text)
        confirmed = client.post(f"/api/v1/payments/{paid.json()['id']}/confirm", headers=gate.treasury)
        assert confirmed.status_code == 200, confirmed.text
        assert client.get(f"{BASE}/{decl_id}", headers=trader).json()["status"] == "released"
        trader_json.append(client.get(f"{BASE}/{decl_id}/payments", headers=trader).text)

        # What the trader reads: its declaration, its list, its history.
        got = client.get(f"{BASE}/{decl_id}", headers=trader)
        assert got.json()["channel"] == "yellow"  # the channel it is told, and what it must do
        trader_json += [got.text, client.get(BASE, headers=trader).text]
        history = client.get(f"{BASE}/{decl_id}/history", headers=trader)
        assert "customs officer" in history.text
        assert "phytosanitary certificate, please" in history.text  # the officer's reason reaches the trader
        trader_json.append(history.text)

        # Its webhooks: every event, as sent and as logged.
        runtime = gate.runtime
        assert wait_for(lambda: (runtime.relay.drain(), receiver.events())[1]
                        and receiver.events()[-1]["type"] == "declaration.released", 30)  # fmt: skip
        types = [e["type"] for e in receiver.events()]
        assert {"declaration.assessed", "declaration.documents_requested", "declaration.paid"} <= set(types)
        requested = next(e for e in receiver.events() if e["type"] == "declaration.documents_requested")
        assert requested["data"]["reason"] == "phytosanitary certificate, please"
        trader_json += [r["body"].decode() for r in receiver.requests]
        log = client.get(f"/api/v1/webhooks/{hook.json()['id']}/deliveries", headers=trader)
        trader_json.append(log.text)

        # Its ledger bundle, payloads decoded.
        checkpointer = runtime.extras["provenance.checkpointer"]
        runtime.relay.drain()
        assert checkpointer.checkpoint_now().anchor_error is None
        bundle = client.get(f"/api/v1/ledger/subjects/{decl_id}/bundle", headers=trader)
        assert bundle.status_code == 200, bundle.text
        verify_bundle(bundle.content)  # still a valid bundle
        entries = bundle.json()["entries"]
        payloads = [json.loads(base64.b64decode(e["payload"])) for e in entries]
        leaves = [base64.b64decode(e["leaf"]).decode() for e in entries]
        assert any('"declaration.assigned"' in leaf for leaf in leaves)
        assert any(p.get("reassigned") for p in payloads)
        trader_json += [bundle.text, *leaves, *(json.dumps(p) for p in payloads)]

        for text in trader_json:
            assert _leaks(text, staff_ids) == [], text[:2000]

        # Officers see everything: the score, the rule hits, the draw, the officers and their key ids.
        seen = gate.seen(decl_id)
        assert seen["risk"]["score"] == 35
        assert "zq_fruit_watch" in json.dumps(seen["risk"])
        assert "random_draw" in seen["risk"]
        assert seen["assigned_officer"] == other
        officer_history = client.get(f"{BASE}/{decl_id}/history", headers=gate.officer).text
        assert f"officer:{other}" in officer_history
        assert "supervisor:" in officer_history  # the reassignment, with who made it
        listed = client.get(BASE, headers=gate.officer).json()["items"]
        assert next(d for d in listed if d["id"] == decl_id)["risk"]["score"] == 35

        # An auditor given the salt and the record proves each assessment was fixed when it was logged.
        assessments = client.get(f"{BASE}/{decl_id}/assessments", headers=gate.officer).json()
        assert [a["version"] for a in assessments] == [1, 2]
        committed = [p["assessment_sha256"] for p in payloads if "assessment_sha256" in p]
        assert committed == [commitment_of(a["record"], a["salt"]) for a in assessments]
        assert committed == [a["commitment"] for a in assessments]
        assert client.get(f"{BASE}/{decl_id}/assessments", headers=trader).status_code == 403
    finally:
        receiver.close()


def test_the_openapi_document_has_a_trader_view_and_an_officer_view(gate: Gate) -> None:
    schemas = gate.client.get("/openapi.json").json()["components"]["schemas"]
    assert "risk" not in schemas["TraderDeclaration"]["properties"]
    assert "assigned_officer" not in schemas["TraderDeclaration"]["properties"]
    assert {"risk", "assigned_officer"} <= schemas["OfficerDeclaration"]["properties"].keys()
