"""Officer workflow over HTTP: channels, rotation, decisions, documents, payments, compliance, rule sets, rates."""

from __future__ import annotations

import copy
import itertools
from typing import Any

import pytest

from services.kernel.database import unit_of_work

_keys = itertools.count()


def file(gate: dict[str, Any], body: dict[str, Any], *, who: str = "trader") -> dict[str, Any]:
    """File and submit; returns the declaration as an officer sees it (with its risk assessment)."""
    resp = gate["client"].post(
        "/api/v1/declarations?submit=true",
        json=body,
        headers={**gate[who], "Idempotency-Key": f"review-{next(_keys)}"},
    )
    assert resp.status_code == 201, resp.text
    assert "risk" not in resp.json()  # the trader's view
    seen = gate["client"].get(f"/api/v1/declarations/{resp.json()['id']}", headers=gate["officers"][0])
    assert seen.status_code == 200, seen.text
    return seen.json()


def red_body(declaration_body: dict[str, Any]) -> dict[str, Any]:
    """Iron ore export: minerals (40) + new trader (25) + Form E absent -> yellow at least; C class pushes red."""
    body = copy.deepcopy(declaration_body)
    body["kind"], body["procedure_code"] = "export", "B11"
    body["consignor"], body["consignee"] = body["consignee"], body["consignor"]
    body["preferential_origin"] = None
    body["items"][0].update(hs_code="26011110", description="Iron ore, non-agglomerated", origin="VN")
    return body


def key_id(headers: dict[str, str]) -> str:
    """The key id of a test key (`sg_<id>_<secret>`): what assignments name."""
    return headers["Authorization"].removeprefix("Bearer sg_").split("_")[0]


def assignee(gate, decl_id: str) -> dict[str, str]:
    """The headers of the officer the declaration is assigned to."""
    decl = gate["client"].get(f"/api/v1/declarations/{decl_id}", headers=gate["supervisor"]).json()
    return next(h for h in gate["officers"] if key_id(h) == decl["assigned_officer"])


def decide(gate, decl_id: str, outcome: str, officer: dict[str, str] | None = None, **extra) -> Any:
    """Decide as the assignee (or `officer`), on the version just read: If-Match carries its ETag."""
    headers = officer or assignee(gate, decl_id)
    etag = gate["client"].get(f"/api/v1/declarations/{decl_id}", headers=headers).headers["ETag"]
    return gate["client"].post(
        f"/api/v1/declarations/{decl_id}/decisions",
        json={"outcome": outcome, "reason": "checked by officer", **extra},
        headers={**headers, "If-Match": etag},
    )


def pay(gate, decl_id: str, reference: str, amount: int, *, who: str = "trader") -> Any:
    return gate["client"].post(
        f"/api/v1/declarations/{decl_id}/payments",
        json={"bank_reference": reference, "amount_vnd": amount},
        headers=gate[who],
    )


def confirm(gate, payment_id: str, *, who: str = "treasury") -> Any:
    return gate["client"].post(f"/api/v1/payments/{payment_id}/confirm", headers=gate[who])


def queued(gate, declaration_body) -> dict[str, Any]:
    """A declaration in the review queue (a new trader's fruit import goes yellow)."""
    decl = file(gate, declaration_body)
    assert decl["channel"] in ("yellow", "red"), decl["risk"]
    assert decl["status"] == "submitted"
    return decl


def test_new_trader_fruit_import_is_yellow_with_duties_and_reasons(gate, declaration_body):
    decl = queued(gate, declaration_body)
    assert decl["risk"]["rule_set_version"] == "2026.12.5"
    assert {r["rule"] for r in decl["risk"]["reasons"]} >= {"fresh_fruit_phyto", "new_trader"}
    assert all({"rule", "weight", "detail"} <= r.keys() for r in decl["risk"]["reasons"])
    line = decl["duties"]["lines"][0]
    # The Form E claim is not verified (no certificate received from the exporting side): MFN 30 %, not ACFTA.
    assert decl["duties"]["origin_check"]["status"] == "not_found"
    assert "origin_unverified" in {r["rule"] for r in decl["risk"]["reasons"]}
    assert (line["import_basis"], line["value_vnd"], line["import_duty_vnd"]) == ("MFN", 243_840_000, 73_152_000)
    assert decl["duties_due_vnd"] == 73_152_000 + 15_849_600
    assert decl["assigned_officer"] is not None


def test_green_declaration_clears_automatically_and_releases_on_payment(gate, declaration_body):
    for _ in range(4):  # become an established trader
        file(gate, declaration_body)
    general = copy.deepcopy(declaration_body)
    general["items"][0].update(hs_code="84314990", description="Parts of excavators")
    decl = None
    for _ in range(10):  # the minimum random rate may still pick one; another filing will be green
        decl = file(gate, general)
        if decl["channel"] == "green":
            break
    assert decl is not None
    assert decl["status"] == "cleared", decl["risk"]
    paid = pay(gate, decl["id"], "VCB-GREEN-1", decl["duties_due_vnd"])
    assert paid.status_code == 201
    assert (paid.json()["status"], paid.json()["declaration_status"]) == ("claimed", "cleared")
    confirmed = confirm(gate, paid.json()["id"])
    assert confirmed.status_code == 200
    assert confirmed.json()["declaration_status"] == "released"


def test_rotation_gives_consecutive_declarations_to_different_officers(gate, declaration_body):
    first, second = queued(gate, declaration_body), queued(gate, declaration_body)
    assert first["assigned_officer"] != second["assigned_officer"]


def test_queue_is_oldest_first_and_filters_by_assignee(gate, declaration_body):
    a, b = queued(gate, declaration_body), queued(gate, declaration_body)
    client = gate["client"]
    queue = client.get("/api/v1/review/queue", headers=gate["officers"][0]).json()
    assert [d["id"] for d in queue][:2] == [a["id"], b["id"]]
    mine = client.get("/api/v1/review/queue?assigned=me", headers=gate["officers"][0]).json()
    assert len(mine) == 1
    assert mine[0]["allowed_actions"] == ["clear", "request_documents", "inspect", "reject"]


def test_request_documents_then_upload_returns_to_review_then_clear_and_pay(gate, declaration_body):
    decl = queued(gate, declaration_body)
    client = gate["client"]
    resp = decide(gate, decl["id"], "request_documents")
    assert resp.status_code == 200
    assert resp.json()["status"] == "awaiting_documents"
    upload = client.post(
        f"/api/v1/declarations/{decl['id']}/documents",
        files={"file": ("phyto.pdf", b"%PDF-1.7 phytosanitary certificate", "application/pdf")},
        headers=gate["trader"],
    )
    assert upload.status_code == 201
    doc = upload.json()
    assert doc["sha256"] == __import__("hashlib").sha256(b"%PDF-1.7 phytosanitary certificate").hexdigest()
    got = client.get(f"/api/v1/declarations/{decl['id']}/documents/{doc['id']}", headers=gate["officers"][0])
    assert got.content == b"%PDF-1.7 phytosanitary certificate"
    assert client.get(f"/api/v1/declarations/{decl['id']}", headers=gate["trader"]).json()["status"] == "submitted"
    assert decide(gate, decl["id"], "clear").json()["status"] == "cleared"
    short = pay(gate, decl["id"], "BIDV-0001", decl["duties_due_vnd"] - 1)
    assert confirm(gate, short.json()["id"]).json()["declaration_status"] == "cleared"  # not paid in full yet
    rest = pay(gate, decl["id"], "BIDV-0002", 1)
    done = confirm(gate, rest.json()["id"]).json()
    assert done["declaration_status"] == "released"
    assert done["paid_vnd"] == decl["duties_due_vnd"]
    assert pay(gate, decl["id"], "BIDV-0002", 1).status_code == 409


def test_inspection_result_is_recorded_and_violation_lowers_compliance(gate, declaration_body, runtime):
    decl = queued(gate, declaration_body)
    assert decide(gate, decl["id"], "inspect").json()["status"] == "inspection"
    resp = decide(gate, decl["id"], "reject", violation=True, reason="undeclared durian under lychee cartons")
    assert resp.status_code == 200
    assert resp.json()["status"] == "rejected"
    history = gate["client"].get(f"/api/v1/declarations/{decl['id']}/history", headers=gate["trader"]).json()
    last = history["transitions"][-1]
    assert last["action"] == "reject"
    assert last["actor"] == "customs officer"  # the trader's history names the role, not the key
    assert "violation found" in last["reason"]
    assert "durian" in last["reason"]
    from services.declarations.models import TraderProfile

    with unit_of_work(runtime.read_sessions) as session:
        profile = session.get(TraderProfile, decl["organisation_id"])
        assert (profile.compliance_class, profile.violations) == ("C", 1)


def test_decisions_are_events_with_officer_and_reason(gate, declaration_body, runtime):
    decl = queued(gate, declaration_body)
    decide(gate, decl["id"], "inspect", reason="seal number differs from the manifest")
    from sqlalchemy import select

    from services.kernel.outbox import OutboxEvent

    with unit_of_work(runtime.read_sessions) as session:
        events = session.scalars(select(OutboxEvent).where(OutboxEvent.subject == decl["id"])).all()
    types = [e.type for e in events]
    assert types[:4] == ["declaration.created", "declaration.submitted", "declaration.assessed",
                         "declaration.inspection_ordered"]  # fmt: skip
    assert events[3].payload["actor"] == "customs officer"  # events reach the ledger: no officer key ids
    assert events[3].payload["reason"] == "seal number differs from the manifest"


@pytest.mark.parametrize(
    ("path", "outcome", "expected"),
    [
        ([], "clear", 200),
        ([], "request_documents", 200),
        ([], "inspect", 200),
        ([], "reject", 200),
        (["request_documents"], "inspect", 409),
        (["request_documents"], "request_documents", 409),
        (["request_documents"], "clear", 200),
        (["request_documents"], "reject", 200),
        (["inspect"], "request_documents", 409),
        (["inspect"], "inspect", 409),
        (["inspect"], "clear", 200),
        (["reject"], "clear", 409),
        (["clear"], "reject", 409),
        (["clear"], "clear", 409),
    ],
)
def test_every_decision_from_every_review_state(gate, declaration_body, path, outcome, expected):
    decl = queued(gate, declaration_body)
    for step in path:
        assert decide(gate, decl["id"], step).status_code == 200
    resp = decide(gate, decl["id"], outcome)
    assert resp.status_code == expected, resp.text
    if expected == 409:
        problem = resp.json()
        assert resp.headers["content-type"] == "application/problem+json"
        assert "current_status" in problem
        assert "allowed_actions" in problem


def test_reject_needs_a_reason(gate, declaration_body):
    decl = queued(gate, declaration_body)
    etag = gate["client"].get(f"/api/v1/declarations/{decl['id']}", headers=gate["supervisor"]).headers["ETag"]
    resp = gate["client"].post(
        f"/api/v1/declarations/{decl['id']}/decisions", json={"outcome": "reject"},
        headers={**assignee(gate, decl["id"]), "If-Match": etag},
    )  # fmt: skip
    assert resp.status_code == 422


def test_trader_cannot_decide_and_officer_cannot_file(gate, declaration_body):
    decl = queued(gate, declaration_body)
    client = gate["client"]
    resp = client.post(
        f"/api/v1/declarations/{decl['id']}/decisions", json={"outcome": "clear"}, headers=gate["trader"]
    )
    assert resp.status_code == 403
    resp = client.post(
        "/api/v1/declarations", json=declaration_body, headers={**gate["officers"][0], "Idempotency-Key": "o-1"}
    )
    assert resp.status_code == 403
    assert client.get("/api/v1/review/queue", headers=gate["trader"]).status_code == 403


def test_other_organisation_cannot_upload_or_pay(gate, declaration_body):
    decl = queued(gate, declaration_body)
    client = gate["client"]
    resp = client.post(
        f"/api/v1/declarations/{decl['id']}/documents", files={"file": ("x.pdf", b"x", "application/pdf")},
        headers=gate["other"],
    )  # fmt: skip
    assert resp.status_code == 404
    resp = client.post(
        f"/api/v1/declarations/{decl['id']}/payments", json={"bank_reference": "X-1000", "amount_vnd": 5},
        headers=gate["other"],
    )  # fmt: skip
    assert resp.status_code == 404


def test_reassignment(gate, declaration_body, runtime):
    decl = queued(gate, declaration_body)
    other = next(key_id(h) for h in gate["officers"] if key_id(h) != decl["assigned_officer"])
    url = f"/api/v1/declarations/{decl['id']}/assignment"
    resp = gate["client"].post(url, json={"officer_key_id": other, "reason": "load balancing"},
                               headers=gate["supervisor"])  # fmt: skip
    assert resp.status_code == 200
    assert resp.json()["assigned_officer"] == other
    bad = gate["client"].post(url, json={"officer_key_id": "nobody"}, headers=gate["supervisor"])
    assert bad.status_code == 422
    from services.declarations.models import Declaration

    with unit_of_work(runtime.read_sessions) as session:
        assert session.get(Declaration, decl["id"]).assigned_officer == other


def test_rule_set_lifecycle_dry_run_and_activation(gate, declaration_body):
    filed = [file(gate, declaration_body) for _ in range(3)]
    client, admin, officer = gate["client"], gate["admin"], gate["officers"][0]
    strict = (
        "version: '2026.12.1'\nseed: 7\ntarget: {green: 0, yellow: 0, red: 100}\n"
        "thresholds: {yellow: 1, red: 2}\n"
        "rules:\n  - {id: fruit, type: hs_watchlist, prefixes: ['08'], weight: 5}\n"
    )
    assert client.post("/api/v1/risk/rule-sets", json={"yaml": strict}, headers=officer).status_code == 403
    created = client.post("/api/v1/risk/rule-sets", json={"yaml": strict}, headers=admin)
    assert created.status_code == 201
    assert created.json()["active"] is False
    assert client.post("/api/v1/risk/rule-sets", json={"yaml": strict}, headers=admin).status_code == 409
    bad = client.post("/api/v1/risk/rule-sets", json={"yaml": strict.replace("red: 2", "red: 0")}, headers=admin)
    assert bad.status_code == 422
    assert "thresholds" in bad.json()["detail"]
    report = client.post("/api/v1/risk/rule-sets/2026.12.1/dry-run", headers=officer).json()
    assert report["declarations"] == 3
    assert report["split_percent"]["red"] == 100.0
    assert report["rules_fired"] == {"fruit": 3}
    # The default set's random selection (1 % red) can already have made one red: only the others change.
    assert report["channel_changes"] == sum(d["channel"] != "red" for d in filed)
    # The dry run changed nothing; activation switches new registrations to the new set.
    assert client.get("/api/v1/declarations", headers=admin).status_code == 200
    assert client.post("/api/v1/risk/rule-sets/2026.12.1/activate", headers=admin).json()["active"] is True
    decl = file(gate, declaration_body)
    assert decl["channel"] == "red"
    assert decl["risk"]["rule_set_version"] == "2026.12.1"
    listed = client.get("/api/v1/risk/rule-sets", headers=officer).json()
    assert [r["version"] for r in listed if r["active"]] == ["2026.12.1"]
    assert client.get("/api/v1/risk/rule-sets/2026.12.1", headers=officer).text == strict


def test_unknown_hs_code_or_missing_rate_flags_unassessed(gate, declaration_body):
    body = copy.deepcopy(declaration_body)
    body["items"][0]["currency"] = "GBP"
    decl = file(gate, body)
    assert decl["duties"]["assessed"] is False
    assert "unassessed_duties" in {r["rule"] for r in decl["risk"]["reasons"]}


def test_exchange_rates_admin_only_and_rate_of_registration_date(gate):
    client = gate["client"]
    body = {"currency": "USD", "day": "2020-01-02", "vnd_per_unit": "23000", "source": "SBV"}
    assert client.post("/api/v1/exchange-rates", json=body, headers=gate["trader"]).status_code == 403
    assert client.post("/api/v1/exchange-rates", json=body, headers=gate["admin"]).status_code == 201
    rates = client.get("/api/v1/exchange-rates?day=2020-01-05", headers=gate["trader"]).json()
    assert rates == [{"currency": "USD", "day": "2020-01-02", "vnd_per_unit": "23000.000000", "source": "SBV"}]
    assert client.get("/api/v1/tariff/08109020", headers=gate["trader"]).json()["acfta_rate"] == "0.000"
    assert client.get("/api/v1/tariff/99999999", headers=gate["trader"]).status_code == 404


# ---- documents: downloads, names, storage (audit, issue 12) ----------------------------------------------------


def test_document_downloads_are_octet_stream_attachments_with_clean_names(gate, declaration_body):
    decl = queued(gate, declaration_body)
    client = gate["client"]
    assert decide(gate, decl["id"], "request_documents").status_code == 200
    evil = b"<html><script>alert(document.cookie)</script></html>"
    # A right-to-left override makes "Hóa đơn\u202elmth.pdf" read as "Hóa đơnfdp.html"; an isolate and a mark too.
    upload = client.post(
        f"/api/v1/declarations/{decl['id']}/documents",
        files={"file": ("Hóa đơn\u202elmth.pdf\u2066\u200f", evil, "text/html")},
        headers=gate["trader"],
    )
    assert upload.status_code == 201, upload.text
    doc = upload.json()
    assert doc["filename"] == "Hóa đơnlmth.pdf"
    listed = client.get(f"/api/v1/declarations/{decl['id']}/documents", headers=gate["officers"][0]).json()
    assert [d["filename"] for d in listed] == ["Hóa đơnlmth.pdf"]
    got = client.get(f"/api/v1/declarations/{decl['id']}/documents/{doc['id']}", headers=gate["officers"][0])
    assert got.status_code == 200
    assert got.content == evil
    assert got.headers["content-type"] == "application/octet-stream"  # never the trader's text/html
    assert got.headers["x-content-type-options"] == "nosniff"
    disposition = got.headers["content-disposition"]
    assert disposition.startswith("attachment; ")
    assert 'filename="Hoa onlmth.pdf"' in disposition  # the ASCII fallback
    assert "filename*=UTF-8''H%C3%B3a%20%C4%91%C6%A1nlmth.pdf" in disposition
    assert disposition.isascii()


def test_an_unwritable_documents_directory_is_503_and_records_nothing(gate, declaration_body, runtime):
    from tests.api.support import assert_problem
    from tests.support import leftovers, make_unwritable

    decl = queued(gate, declaration_body)
    client = gate["client"]
    assert decide(gate, decl["id"], "request_documents").status_code == 200
    make_unwritable(runtime.settings.var_dir / "documents")
    upload = client.post(
        f"/api/v1/declarations/{decl['id']}/documents",
        files={"file": ("phyto.pdf", b"%PDF-1.7 certificate", "application/pdf")},
        headers=gate["trader"],
    )
    problem = assert_problem(upload, 503)
    assert problem["code"] == "storage.unavailable"
    assert str(runtime.settings.var_dir) not in problem["detail"]  # the path is for the log, not the caller
    assert upload.headers["retry-after"]
    assert client.get(f"/api/v1/declarations/{decl['id']}/documents", headers=gate["trader"]).json() == []
    assert client.get(f"/api/v1/declarations/{decl['id']}", headers=gate["trader"]).json()["status"] == (
        "awaiting_documents"
    )
    assert leftovers(runtime.settings.var_dir) == []
