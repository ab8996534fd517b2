"""Bank references: unique among an organisation's live payments and confirmed once; a trader's claim never learns
whether another organisation used a reference, and the treasury's record of a reference wins over other claims."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import pytest
from alembic import command
from sqlalchemy import create_engine, select, text

from services.declarations.models import Declaration, Payment
from services.kernel.database import unit_of_work
from services.kernel.migrate import alembic_config
from tests.services.declarations.test_decisions import assert_problem, cleared, events
from tests.services.declarations.test_review import confirm, key_id, pay, red_body

BASE = "/api/v1/declarations"
_filings = itertools.count()


def cleared_of(gate, declaration_body, who: str) -> dict[str, Any]:
    """A cleared declaration of the organisation of `who` (an ore export: always reviewed), duties due."""
    if who == "trader":
        return cleared(gate, declaration_body)
    headers = {**gate[who], "Idempotency-Key": f"refs-{next(_filings)}"}
    filed = gate["client"].post(f"{BASE}?submit=true", json=red_body(declaration_body), headers=headers)
    assert filed.status_code == 201, filed.text
    decl_id = filed.json()["id"]
    etag = gate["client"].get(f"{BASE}/{decl_id}", headers=gate["supervisor"]).headers["ETag"]
    done = gate["client"].post(f"{BASE}/{decl_id}/decisions", json={"outcome": "clear", "reason": "checked"},
                               headers={**gate["supervisor"], "If-Match": etag})  # fmt: skip
    assert done.json()["status"] == "cleared", done.text
    if done.json()["duties_due_vnd"] == 0:
        pytest.skip("the ore export owes no duties under today's tariff")
    return done.json()


def reject(gate, payment_id: str, reason: str = "no credit with this reference") -> Any:
    return gate["client"].post(f"/api/v1/payments/{payment_id}/reject", json={"reason": reason},
                               headers=gate["treasury"])  # fmt: skip


def shape(resp: Any) -> tuple[int, set[str], str]:
    """What a trader can tell from the answer to its claim, the values of its own payment aside."""
    return resp.status_code, set(resp.json()), resp.json()["status"]


def test_a_rejected_reference_may_be_claimed_again(gate, declaration_body):
    decl = cleared(gate, declaration_body)
    first = pay(gate, decl["id"], "VCB-AGAIN-1", 1000).json()
    assert reject(gate, first["id"], "amount does not match the credit").status_code == 200
    again = pay(gate, decl["id"], "VCB-AGAIN-1", decl["duties_due_vnd"])
    assert again.status_code == 201, again.text
    assert confirm(gate, again.json()["id"]).json()["declaration_status"] == "released"


def test_an_organisation_repeating_a_live_reference_is_409_as_before(gate, declaration_body):
    decl = cleared(gate, declaration_body)
    assert pay(gate, decl["id"], "VCB-TWICE-1", 1000).status_code == 201
    problem = assert_problem(pay(gate, decl["id"], "VCB-TWICE-1", 1000), 409, "payment.duplicate")
    assert problem["detail"] == "bank reference VCB-TWICE-1 was already recorded"
    # On another declaration of the same organisation too, and after the treasury confirmed it.
    other = cleared(gate, declaration_body)
    assert_problem(pay(gate, other["id"], "VCB-TWICE-1", 1000), 409, "payment.duplicate")
    recorded = pay(gate, decl["id"], "KBNN-TWICE-2", 1000, who="treasury")
    assert recorded.status_code == 201, recorded.text
    problem = assert_problem(pay(gate, decl["id"], "KBNN-TWICE-2", 1000), 409, "payment.duplicate")
    assert problem["detail"] == "bank reference KBNN-TWICE-2 was already recorded"
    # The treasury is told which payment holds the reference, and what to do.
    claimed = pay(gate, decl["id"], "VCB-TWICE-3", 1000).json()
    told = assert_problem(pay(gate, decl["id"], "VCB-TWICE-3", 1000, who="treasury"), 409, "payment.duplicate")
    assert told["payment_id"] == claimed["id"]
    told = assert_problem(pay(gate, decl["id"], "KBNN-TWICE-2", 1000, who="treasury"), 409, "payment.duplicate")
    assert told["payment_id"] == recorded.json()["id"]


def test_a_squatted_reference_tells_the_owner_nothing_and_the_treasury_confirmation_wins(
    gate, declaration_body, runtime
):
    owner = cleared(gate, declaration_body)
    squatter = cleared_of(gate, declaration_body, "other")
    squat = pay(gate, squatter["id"], "VCB-20261203-000777", owner["duties_due_vnd"], who="other")
    assert squat.status_code == 201, squat.text
    # The owner's claim is answered like a claim of a reference nobody used: nothing says another one exists.
    claim = pay(gate, owner["id"], "VCB-20261203-000777", owner["duties_due_vnd"])
    fresh = pay(gate, owner["id"], "VCB-20261203-000778", 1)
    assert shape(claim) == shape(fresh) == (201, set(fresh.json()), "claimed")
    for other in ("Hekou", squatter["id"], squatter["organisation_id"], squat.json()["id"]):
        assert other not in claim.text
    assert reject(gate, fresh.json()["id"]).status_code == 200

    done = confirm(gate, claim.json()["id"])
    assert done.status_code == 200, done.text
    assert (done.json()["status"], done.json()["declaration_status"]) == ("confirmed", "released")
    lost = gate["client"].get(f"/api/v1/payments/{squat.json()['id']}", headers=gate["other"]).json()
    reason = "the treasury's record of bank reference VCB-20261203-000777 does not match this claim"
    assert (lost["status"], lost["reason"], lost["decided_by"]) == ("rejected", reason, "State Treasury")
    rejected = [e for e in events(runtime, squatter["id"]) if e.type == "declaration.payment_rejected"]
    assert [e.payload["reason"] for e in rejected] == [reason]
    assert rejected[0].payload["actor"] == "State Treasury"
    for other in (owner["organisation_id"], owner["id"], claim.json()["id"]):
        assert other not in str(rejected[0].payload)
    with unit_of_work(runtime.read_sessions) as session:
        assert session.get(Declaration, squatter["id"]).paid_vnd == 0


def test_the_treasury_record_of_a_reference_rejects_another_organisations_claim(gate, declaration_body, runtime):
    owner = cleared(gate, declaration_body)
    squatter = cleared_of(gate, declaration_body, "other")
    squat = pay(gate, squatter["id"], "KBNN-20261203-42", 5, who="other").json()
    recorded = pay(gate, owner["id"], "KBNN-20261203-42", owner["duties_due_vnd"], who="treasury")
    assert recorded.status_code == 201, recorded.text
    assert (recorded.json()["status"], recorded.json()["declaration_status"]) == ("confirmed", "released")
    lost = gate["client"].get(f"/api/v1/payments/{squat['id']}", headers=gate["treasury"]).json()
    assert (lost["status"], lost["decided_by"]) == ("rejected", f"treasury:{key_id(gate['treasury'])}")
    assert "declaration.payment_rejected" in {e.type for e in events(runtime, squatter["id"])}
    # Money counts once: the reference is confirmed, so the treasury records it for nobody else.
    assert_problem(pay(gate, squatter["id"], "KBNN-20261203-42", 5, who="treasury"), 409, "payment.duplicate")


def test_a_claim_of_a_reference_confirmed_elsewhere_waits_for_the_treasury(gate, declaration_body, runtime):
    owner = cleared(gate, declaration_body)
    late = cleared_of(gate, declaration_body, "other")
    assert pay(gate, owner["id"], "KBNN-LATE-1", owner["duties_due_vnd"], who="treasury").status_code == 201
    claim = pay(gate, late["id"], "KBNN-LATE-1", late["duties_due_vnd"], who="other")
    assert (claim.status_code, claim.json()["status"]) == (201, "claimed")  # as for any reference
    # The treasury cannot count the same money twice; it rejects the claim when it reconciles.
    problem = assert_problem(confirm(gate, claim.json()["id"]), 409, "payment.duplicate")
    assert "already confirmed" in problem["detail"]
    assert reject(gate, claim.json()["id"]).json()["status"] == "rejected"
    with unit_of_work(runtime.read_sessions) as session:
        assert session.get(Declaration, late["id"]).paid_vnd == 0


def test_two_organisations_claiming_one_reference_at_once_both_get_a_claim_and_one_org_one(gate, declaration_body):
    from tests.api.test_concurrency import race

    mine, theirs = cleared(gate, declaration_body), cleared_of(gate, declaration_body, "other")
    plan = [("trader", mine), ("trader", mine), ("other", theirs), ("other", theirs)]
    responses = race(4, lambda i: pay(gate, plan[i][1]["id"], "VCB-RACE-REF-1", 1000, who=plan[i][0]))
    codes = [getattr(r, "status_code", r) for r in responses]
    assert sorted(codes[:2]) == sorted(codes[2:]) == [201, 409], [getattr(r, "text", r) for r in responses]
    for r in responses:
        if r.status_code == 409:
            assert r.json()["detail"] == "bank reference VCB-RACE-REF-1 was already recorded"
    claims = [r.json() for r in responses if r.status_code == 201]
    # The treasury confirms both at once: one counts, the other is a 409 (or already rejected by the first).
    confirmations = race(2, lambda i: confirm(gate, claims[i]["id"]))
    assert sorted(r.status_code for r in confirmations) == [200, 409], [r.text for r in confirmations]
    statuses = sorted(gate["client"].get(f"/api/v1/payments/{c['id']}", headers=gate["treasury"]).json()["status"]
                      for c in claims)  # fmt: skip
    assert statuses == ["confirmed", "rejected"]


def test_the_migration_keeps_payments_and_gives_them_their_organisation(database_url: str) -> None:
    """d0005 → d0006 on a database with a payment: its organisation is filled in from its declaration."""
    config = alembic_config(database_url)
    engine = create_engine(database_url)
    command.downgrade(config, "d0005")
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO organisations (id, name, created_at) VALUES ('o1', 'Org', :now)"), {"now": now})
        conn.execute(
            text(
                "INSERT INTO declarations (id, organisation_id, status, kind, border_gate, version, row_version, body,"
                " body_sha256, created_by, created_at, updated_at, duties_due_vnd, paid_vnd)"
                " VALUES ('d1', 'o1', 'cleared', 'import', 'KT', 1, 1, '{}', 'x', 't', :now, :now, 5, 5)"
            ),
            {"now": now},
        )
        conn.execute(
            text(
                "INSERT INTO declaration_payments (id, declaration_id, bank_reference, amount_vnd, recorded_by,"
                " paid_at, status) VALUES ('p1', 'd1', 'OLD-REF-1', 5, 'trader:x', :now, 'confirmed')"
            ),
            {"now": now},
        )
    command.upgrade(config, "d0006")
    with engine.connect() as conn:
        assert conn.execute(select(Payment.organisation_id).where(Payment.id == "p1")).scalar() == "o1"
    engine.dispose()
