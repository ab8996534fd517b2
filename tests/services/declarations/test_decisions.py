"""Who decides, on which version, and who confirms a payment (audit issue 12, items 2 and 4), over HTTP."""

from __future__ import annotations

import copy
from typing import Any

from sqlalchemy import select

from services.declarations.models import Declaration
from services.kernel.database import unit_of_work
from services.kernel.outbox import OutboxEvent
from tests.services.declarations.test_review import (
    assignee,
    confirm,
    decide,
    key_id,
    pay,
    queued,
)

BASE = "/api/v1/declarations"


def read(gate, decl_id: str, who: dict[str, str]) -> Any:
    return gate["client"].get(f"{BASE}/{decl_id}", headers=who)


def post_decision(gate, decl_id: str, who: dict[str, str], if_match: str | None, outcome: str = "clear") -> Any:
    headers = {**who, **({"If-Match": if_match} if if_match is not None else {})}
    return gate["client"].post(f"{BASE}/{decl_id}/decisions", json={"outcome": outcome, "reason": "checked"},
                               headers=headers)  # fmt: skip


def assert_problem(resp: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = resp.json()
    if code:
        assert problem.get("code") == code, problem
    return problem


def unchanged(gate, decl: dict[str, Any], etag: str) -> None:
    """Still as it was read: same ETag, still waiting for a decision, no decision in its history."""
    now = read(gate, decl["id"], gate["supervisor"])
    assert now.headers["ETag"] == etag
    assert now.json()["status"] == "submitted"
    history = gate["client"].get(f"{BASE}/{decl['id']}/history", headers=gate["supervisor"]).json()
    assert [t["action"] for t in history["transitions"]] == ["create", "submit"]


def events(runtime, decl_id: str) -> list[OutboxEvent]:
    with unit_of_work(runtime.read_sessions) as session:
        return list(
            session.scalars(select(OutboxEvent).where(OutboxEvent.subject == decl_id).order_by(OutboxEvent.seq))
        )


# ---- If-Match: the decision applies to the version reviewed ----------------------------------------------------


def test_a_decision_without_if_match_is_428_and_changes_nothing(gate, declaration_body):
    decl = queued(gate, declaration_body)
    officer = assignee(gate, decl["id"])
    etag = read(gate, decl["id"], officer).headers["ETag"]
    assert_problem(post_decision(gate, decl["id"], officer, None), 428, "decision.if_match_required")
    assert_problem(post_decision(gate, decl["id"], officer, "*"), 428, "decision.if_match_required")
    unchanged(gate, decl, etag)


def test_a_stale_etag_is_412_and_changes_nothing(gate, declaration_body):
    decl = queued(gate, declaration_body)
    officer = assignee(gate, decl["id"])
    seen = read(gate, decl["id"], officer).headers["ETag"]
    # Someone acts on it after the officer read it: the treasury records a prepayment.
    assert pay(gate, decl["id"], "VCB-PRE-0001", 1000, who="treasury").status_code == 201
    current = read(gate, decl["id"], officer).headers["ETag"]
    assert current != seen
    problem = assert_problem(post_decision(gate, decl["id"], officer, seen), 412, "decision.stale")
    assert "current_etag" not in problem  # a new ETag comes from reading (reviewing) it again
    unchanged(gate, decl, current)
    assert post_decision(gate, decl["id"], officer, current).status_code == 200


def test_an_amendment_after_the_officer_read_it_makes_the_decision_412(gate, declaration_body):
    """The audit's case: the trader amends between review and decision; "clear" must not apply to the new body."""
    decl = queued(gate, declaration_body)
    officer = assignee(gate, decl["id"])
    reviewed = read(gate, decl["id"], officer)
    seen = reviewed.headers["ETag"]
    smaller = copy.deepcopy(declaration_body)
    smaller["items"][0].update(quantity="1", net_mass_kg="1", gross_mass_kg="1", customs_value="0.01")
    smaller["total_net_mass_kg"] = smaller["total_gross_mass_kg"] = "1"
    amended = gate["client"].post(f"{BASE}/{decl['id']}/amend", json=smaller,
                                  headers={**gate["trader"], "If-Match": reviewed.json()["etag"]})  # fmt: skip
    assert amended.status_code == 200, amended.text
    assert amended.json()["version"] == 2
    assert amended.headers["ETag"] != seen  # the version is in the ETag: an amendment always changes it
    before = read(gate, decl["id"], gate["supervisor"]).json()
    assert_problem(post_decision(gate, decl["id"], officer, seen), 412, "decision.stale")
    after = read(gate, decl["id"], gate["supervisor"]).json()
    assert after == before  # nothing changed
    history = gate["client"].get(f"{BASE}/{decl['id']}/history", headers=gate["supervisor"]).json()
    assert not any(t["actor"].startswith("officer:") for t in history["transitions"])


def test_a_document_uploaded_after_the_officer_read_it_makes_the_decision_412(gate, declaration_body):
    decl = queued(gate, declaration_body)
    officer = assignee(gate, decl["id"])
    seen = read(gate, decl["id"], officer).headers["ETag"]
    invoice = {"file": ("invoice.pdf", b"%PDF-1.7 a new invoice", "application/pdf")}
    upload = gate["client"].post(f"{BASE}/{decl['id']}/documents", headers=gate["trader"], files=invoice)
    assert upload.status_code == 201, upload.text
    assert_problem(post_decision(gate, decl["id"], officer, seen), 412, "decision.stale")
    unchanged(gate, decl, read(gate, decl["id"], officer).headers["ETag"])


def test_the_openapi_document_says_if_match_is_required(gate):
    op = gate["client"].get("/openapi.json").json()["paths"][f"{BASE}/{{declaration_id}}/decisions"]["post"]
    params = [p for p in op["parameters"] if p["name"] == "If-Match"]
    assert len(params) == 1
    assert (params[0]["in"], params[0]["required"]) == ("header", True)
    assert {"412", "428"} <= set(op["responses"])


# ---- who decides ---------------------------------------------------------------------------------------------


def test_only_the_assignee_or_a_supervisor_decides(gate, declaration_body, runtime):
    decl = queued(gate, declaration_body)
    mine = assignee(gate, decl["id"])
    other = next(h for h in gate["officers"] if h is not mine)
    etag = read(gate, decl["id"], other).headers["ETag"]
    assert_problem(post_decision(gate, decl["id"], other, etag), 403, "decision.not_assignee")
    assert_problem(post_decision(gate, decl["id"], gate["admin"], etag), 403)  # admins read, never decide
    assert_problem(post_decision(gate, decl["id"], gate["treasury"], etag), 403)
    unchanged(gate, decl, etag)
    done = post_decision(gate, decl["id"], gate["supervisor"], etag)
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "cleared"
    history = gate["client"].get(f"{BASE}/{decl['id']}/history", headers=gate["supervisor"]).json()
    assert history["transitions"][-1]["actor"] == f"supervisor:{key_id(gate['supervisor'])}"


def test_an_unassigned_declaration_is_taken_before_it_is_decided(gate, declaration_body):
    decl = queued(gate, declaration_body)
    url = f"{BASE}/{decl['id']}/assignment"
    client, officer = gate["client"], gate["officers"][0]
    back = client.post(url, json={"officer_key_id": None, "reason": "nobody on this shift"}, headers=gate["supervisor"])
    assert back.status_code == 200, back.text
    assert back.json()["assigned_officer"] is None
    assert_problem(post_decision(gate, decl["id"], officer, back.headers["ETag"]), 403, "decision.unassigned")
    taken = client.post(url, json={"officer_key_id": key_id(officer)}, headers=officer)
    assert taken.status_code == 200, taken.text
    assert taken.json()["assigned_officer"] == key_id(officer)
    colleague = gate["officers"][1]
    # An officer neither takes a colleague's file nor hands its own to a colleague of its choosing.
    grab = client.post(url, json={"officer_key_id": key_id(colleague)}, headers=colleague)
    assert_problem(grab, 403, "assignment.forbidden")
    steer = client.post(url, json={"officer_key_id": key_id(colleague)}, headers=officer)
    assert_problem(steer, 403, "assignment.forbidden")
    assert_problem(client.post(url, json={"officer_key_id": key_id(officer)}, headers=gate["admin"]), 403)
    assert post_decision(gate, decl["id"], officer, taken.headers["ETag"]).status_code == 200


def test_reassignment_is_recorded_in_the_history_and_as_an_event(gate, declaration_body, runtime):
    decl = queued(gate, declaration_body)
    before = decl["assigned_officer"]
    first = assignee(gate, decl["id"])
    other = next(h for h in gate["officers"] if h is not first)
    moved = gate["client"].post(f"{BASE}/{decl['id']}/assignment", headers=gate["supervisor"],
                                json={"officer_key_id": key_id(other), "reason": "conflict of interest"})  # fmt: skip
    assert moved.status_code == 200, moved.text
    history = gate["client"].get(f"{BASE}/{decl['id']}/history", headers=gate["supervisor"]).json()["transitions"]
    entry = history[-1]
    assert entry["action"] == "assign"
    assert entry["from_status"] == entry["to_status"] == "submitted"
    assert entry["actor"] == f"supervisor:{key_id(gate['supervisor'])}"
    assert entry["reason"] == f"assigned to {key_id(other)} (was {before}): conflict of interest"
    assigned = [e for e in events(runtime, decl["id"]) if e.type == "declaration.assigned"]
    # The event names no officer and gives no reason: the trader can read it in its ledger bundle.
    assert assigned[-1].payload == {"declaration_id": decl["id"], "reassigned": True, "actor": "customs supervisor"}
    # Customs' internal routing stays internal: the trader's view of the history leaves it out.
    trader_view = gate["client"].get(f"{BASE}/{decl['id']}/history", headers=gate["trader"]).json()["transitions"]
    assert "assign" not in [t["action"] for t in trader_view]
    # The previous assignee no longer decides it.
    etag = read(gate, decl["id"], first).headers["ETag"]
    assert_problem(post_decision(gate, decl["id"], first, etag), 403, "decision.not_assignee")
    assert post_decision(gate, decl["id"], other, etag).status_code == 200


# ---- payments: claimed by the trader, confirmed by the treasury ----------------------------------------------


def cleared(gate, declaration_body) -> dict[str, Any]:
    decl = queued(gate, declaration_body)
    resp = decide(gate, decl["id"], "clear")
    assert resp.json()["status"] == "cleared"
    assert resp.json()["duties_due_vnd"] > 0
    return resp.json()


def test_a_traders_payment_is_claimed_and_releases_nothing_until_the_treasury_confirms(gate, declaration_body, runtime):
    decl = cleared(gate, declaration_body)
    claim = pay(gate, decl["id"], "VCB-20261202-000001", decl["duties_due_vnd"])
    assert claim.status_code == 201, claim.text
    payment = claim.json()
    assert (payment["status"], payment["declaration_status"], payment["paid_vnd"]) == ("claimed", "cleared", 0)
    assert claim.headers["Location"] == f"/api/v1/payments/{payment['id']}"
    assert read(gate, decl["id"], gate["trader"]).json()["status"] == "cleared"
    assert not {"declaration.paid", "declaration.released"} & {e.type for e in events(runtime, decl["id"])}
    # Nobody but the treasury confirms: not the trader who claimed it, not customs, not an admin.
    for who in ("trader", "supervisor", "admin"):
        assert_problem(confirm(gate, payment["id"], who=who), 403)
    assert_problem(confirm(gate, payment["id"], who="trader"), 403)
    assert_problem(gate["client"].get("/api/v1/payments", headers=gate["trader"]), 403)
    worklist = gate["client"].get("/api/v1/payments?status=claimed", headers=gate["treasury"]).json()
    assert [p["id"] for p in worklist] == [payment["id"]]

    done = confirm(gate, payment["id"])
    assert done.status_code == 200, done.text
    assert (done.json()["status"], done.json()["declaration_status"]) == ("confirmed", "released")
    assert done.json()["decided_by"] == f"treasury:{key_id(gate['treasury'])}"
    types = [e.type for e in events(runtime, decl["id"])]
    assert types[-2:] == ["declaration.paid", "declaration.released"]  # the events follow the confirmation
    paid = [e for e in events(runtime, decl["id"]) if e.type == "declaration.paid"][0]
    assert paid.payload["actor"] == "State Treasury"  # by role: the trader reads this event
    assert paid.payload["recorded_by"].startswith("trader:")
    assert_problem(confirm(gate, payment["id"]), 409, "payment.not_claimed")
    listed = gate["client"].get(f"{BASE}/{decl['id']}/payments", headers=gate["trader"]).json()
    assert [p["status"] for p in listed] == ["confirmed"]


def test_the_treasury_rejects_a_claim_and_records_money_it_received_as_confirmed(gate, declaration_body, runtime):
    decl = cleared(gate, declaration_body)
    claim = pay(gate, decl["id"], "FAKE-0001", decl["duties_due_vnd"]).json()
    rejected = gate["client"].post(f"/api/v1/payments/{claim['id']}/reject", headers=gate["treasury"],
                                   json={"reason": "no credit with this reference"})  # fmt: skip
    assert rejected.status_code == 200, rejected.text
    assert (rejected.json()["status"], rejected.json()["reason"]) == ("rejected", "no credit with this reference")
    assert rejected.json()["paid_vnd"] == 0
    assert_problem(confirm(gate, claim["id"]), 409, "payment.not_claimed")
    assert read(gate, decl["id"], gate["trader"]).json()["status"] == "cleared"
    assert "declaration.payment_rejected" in {e.type for e in events(runtime, decl["id"])}
    # The treasury's own record of money received counts at once.
    direct = pay(gate, decl["id"], "KBNN-20261202-77", decl["duties_due_vnd"], who="treasury")
    assert direct.status_code == 201, direct.text
    assert (direct.json()["status"], direct.json()["declaration_status"]) == ("confirmed", "released")
    shown = gate["client"].get(f"/api/v1/payments/{claim['id']}", headers=gate["trader"])
    assert shown.json()["status"] == "rejected"
    assert_problem(gate["client"].get(f"/api/v1/payments/{claim['id']}", headers=gate["other"]), 404)


def test_money_fields_are_strict(gate, declaration_body, runtime):
    decl = cleared(gate, declaration_body)
    for amount in (True, 1.5, 1.0, "100", None, 0, -5):
        resp = gate["client"].post(f"{BASE}/{decl['id']}/payments", headers=gate["trader"],
                                   json={"bank_reference": f"STRICT-{amount!s}", "amount_vnd": amount})  # fmt: skip
        problem = assert_problem(resp, 422)
        assert [e["pointer"] for e in problem["errors"]] == ["/amount_vnd"], (amount, problem)
    assert gate["client"].get(f"{BASE}/{decl['id']}/payments", headers=gate["trader"]).json() == []
    body = copy.deepcopy(declaration_body)
    body["items"][0]["customs_value"] = True
    resp = gate["client"].post(f"{BASE}?submit=true", json=body, headers={**gate["trader"], "Idempotency-Key": "s-1"})
    assert "/items/0/customs_value" in [e["pointer"] for e in assert_problem(resp, 422)["errors"]]
    with unit_of_work(runtime.read_sessions) as session:
        assert session.get(Declaration, decl["id"]).paid_vnd == 0


# ---- races: decided by the database, not by timing ---------------------------------------------------------------


def test_racing_confirmations_and_a_rejection_count_one_payment_once(gate, declaration_body, runtime):
    from tests.api.test_concurrency import race

    decl = cleared(gate, declaration_body)
    claim = pay(gate, decl["id"], "VCB-RACE-0001", decl["duties_due_vnd"]).json()

    def act(i: int) -> Any:
        if i == 0:
            return gate["client"].post(f"/api/v1/payments/{claim['id']}/reject", headers=gate["treasury"],
                                       json={"reason": "racing the confirmations"})  # fmt: skip
        return confirm(gate, claim["id"])

    responses = race(4, act)
    assert sorted(r.status_code for r in responses) == [200, 409, 409, 409], [r.text for r in responses]
    winner = next(r.json() for r in responses if r.status_code == 200)
    with unit_of_work(runtime.read_sessions) as session:
        paid = session.get(Declaration, decl["id"]).paid_vnd
    assert paid == (decl["duties_due_vnd"] if winner["status"] == "confirmed" else 0)
    paid_events = [e for e in events(runtime, decl["id"]) if e.type == "declaration.paid"]
    assert len(paid_events) == (1 if winner["status"] == "confirmed" else 0)


def test_two_decisions_on_one_reviewed_version_apply_once(gate, declaration_body):
    from tests.api.test_concurrency import race

    decl = queued(gate, declaration_body)
    officer = assignee(gate, decl["id"])
    etag = read(gate, decl["id"], officer).headers["ETag"]
    who = [officer, gate["supervisor"]]
    outcomes = ["request_documents", "inspect"]
    responses = race(2, lambda i: post_decision(gate, decl["id"], who[i], etag, outcomes[i]))
    assert sorted(r.status_code for r in responses) == [200, 412], [r.text for r in responses]
    history = gate["client"].get(f"{BASE}/{decl['id']}/history", headers=gate["supervisor"]).json()
    assert [t["action"] for t in history["transitions"]][2:] in (["request_documents"], ["inspect"])


# ---- duties nobody could compute are never cleared nor released by the machine (review of issue 12) -----------

LENIENT = (
    "version: '2026.12.9'\nseed: 7\ntarget: {green: 100, yellow: 0, red: 0}\n"
    "thresholds: {yellow: 1000, red: 2000}\nrandom_selection: {red: 0, yellow: 0}\n"
    "rules:\n  - {id: fruit, type: hs_watchlist, prefixes: ['08'], weight: 5}\n"
)


def lenient_rules(gate) -> None:
    """A rule set that makes everything green (no unassessed-duties rule, no random selection)."""
    client, admin = gate["client"], gate["admin"]
    assert client.post("/api/v1/risk/rule-sets", json={"yaml": LENIENT}, headers=admin).status_code == 201
    assert client.post("/api/v1/risk/rule-sets/2026.12.9/activate", headers=admin).status_code == 200


def test_unassessed_duties_are_never_green_whatever_the_rule_set(gate, declaration_body):
    lenient_rules(gate)
    assessed = gate["client"].post(f"{BASE}?submit=true", json=declaration_body,
                                   headers={**gate["trader"], "Idempotency-Key": "lenient-1"})  # fmt: skip
    assert (assessed.json()["channel"], assessed.json()["status"]) == ("green", "cleared")  # the rule set works
    body = copy.deepcopy(declaration_body)
    body["items"][0]["currency"] = "GBP"  # no exchange rate for it: the bill cannot be computed
    filed = gate["client"].post(f"{BASE}?submit=true", json=body,
                                headers={**gate["trader"], "Idempotency-Key": "lenient-2"})  # fmt: skip
    assert filed.status_code == 201, filed.text
    assert (filed.json()["channel"], filed.json()["status"]) == ("yellow", "submitted")
    assert "risk" not in filed.json()
    assert "duties_unassessed_floor" not in filed.text  # confidential
    officer_view = read(gate, filed.json()["id"], gate["supervisor"]).json()
    assert officer_view["duties"]["assessed"] is False
    floor = next(r for r in officer_view["risk"]["reasons"] if r["rule"] == "duties_unassessed_floor")
    assert "GBP" in floor["detail"]


def test_an_officer_cannot_clear_duties_that_were_not_assessed(gate, declaration_body):
    lenient_rules(gate)
    body = copy.deepcopy(declaration_body)
    body["items"][0]["currency"] = "GBP"
    filed = gate["client"].post(f"{BASE}?submit=true", json=body,
                                headers={**gate["trader"], "Idempotency-Key": "lenient-3"})  # fmt: skip
    decl_id = filed.json()["id"]
    officer = assignee(gate, decl_id)
    etag = read(gate, decl_id, officer).headers["ETag"]
    problem = assert_problem(post_decision(gate, decl_id, officer, etag), 422, "decision.duties_unassessed")
    assert "GBP" in problem["detail"]
    assert read(gate, decl_id, officer).json()["status"] == "submitted"
    # The way on: documents requested, the trader amends to a currency with a rate, then it can be cleared and paid.
    assert post_decision(gate, decl_id, officer, etag, outcome="request_documents").status_code == 200
    trader_etag = read(gate, decl_id, gate["trader"]).json()["etag"]
    fixed = gate["client"].post(f"{BASE}/{decl_id}/amend", json=declaration_body,
                                headers={**gate["trader"], "If-Match": trader_etag})  # fmt: skip
    assert fixed.status_code == 200, fixed.text
    now = read(gate, decl_id, officer)
    assert now.json()["duties"]["assessed"] is True
    assert now.json()["channel"] == "yellow"  # an amendment never lowers the channel by itself
    cleared = post_decision(gate, decl_id, officer, now.headers["ETag"])
    assert cleared.status_code == 200, cleared.text
    paid = pay(gate, decl_id, "VCB-UNASSESSED-1", now.json()["duties_due_vnd"])
    assert confirm(gate, paid.json()["id"]).json()["declaration_status"] == "released"
