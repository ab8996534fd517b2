"""A revoked officer key lets go of its work: off duty, its waiting declarations go to others (or to the pool),
recorded as reassignments; rotation never gives a declaration to a revoked key, however it was revoked."""

from __future__ import annotations

import itertools
from typing import Any

from sqlalchemy import select, text

from services.declarations.models import Declaration, OfficerDuty
from services.kernel.auth import ApiKey, revoke_key
from services.kernel.database import unit_of_work, utcnow
from tests.api.test_cli import invoke, runner  # noqa: F401 - the `runner` fixture
from tests.services.declarations.test_decisions import assert_problem, events, post_decision, read
from tests.services.declarations.test_review import key_id, red_body

BASE = "/api/v1/declarations"
_filings = itertools.count()


def queued(gate, body: dict[str, Any]) -> dict[str, Any]:
    """File and submit a declaration that always goes to review (an ore export: minerals weigh 40, yellow is 30);
    as the supervisor sees it (with its assignee)."""
    headers = {**gate["trader"], "Idempotency-Key": f"revocation-{next(_filings)}"}
    resp = gate["client"].post(f"{BASE}?submit=true", json=red_body(body), headers=headers)
    assert resp.status_code == 201, resp.text
    decl = gate["client"].get(f"{BASE}/{resp.json()['id']}", headers=gate["supervisor"]).json()
    assert (decl["status"], decl["channel"]) in (("submitted", "yellow"), ("submitted", "red")), decl
    return decl


def assigned(runtime, decl_ids: list[str]) -> dict[str, str | None]:
    with unit_of_work(runtime.read_sessions) as session:
        rows = session.scalars(select(Declaration).where(Declaration.id.in_(decl_ids)))
        return {d.id: d.assigned_officer for d in rows}


def revoke(runtime, headers: dict[str, str], *, actor: str = "admin:cli") -> None:
    with unit_of_work(runtime.sessions) as session:
        assert revoke_key(session, key_id=key_id(headers), actor=actor)


def on_duty(runtime, officer: str) -> bool:
    with unit_of_work(runtime.read_sessions) as session:
        duty = session.get(OfficerDuty, officer)
        return bool(duty and duty.on_duty)


def test_revoking_an_officer_moves_its_waiting_declarations_to_officers_on_duty(gate, declaration_body, runtime):
    leaving, staying = gate["officers"]
    decls = [queued(gate, declaration_body) for _ in range(4)]
    theirs = [d["id"] for d in decls if d["assigned_officer"] == key_id(leaving)]
    assert len(theirs) == 2  # rotation alternates between the two officers on duty
    etag = read(gate, theirs[0], leaving).headers["ETag"]

    revoke(runtime, leaving)

    assert set(assigned(runtime, [d["id"] for d in decls]).values()) == {key_id(staying)}
    assert not on_duty(runtime, key_id(leaving))
    for decl_id in theirs:
        history = gate["client"].get(f"{BASE}/{decl_id}/history", headers=gate["supervisor"]).json()["transitions"]
        entry = history[-1]
        assert (entry["action"], entry["actor"]) == ("assign", "admin:cli")
        assert entry["from_status"] == entry["to_status"] == "submitted"
        assert entry["reason"] == (
            f"assigned to {key_id(staying)} (was {key_id(leaving)}): key {key_id(leaving)} revoked"
        )
        event = [e for e in events(runtime, decl_id) if e.type == "declaration.assigned"][-1]
        # By role, no key id: the trader can read this event in its ledger bundle.
        assert event.payload == {"declaration_id": decl_id, "reassigned": True, "actor": "customs administration"}
        trader_view = gate["client"].get(f"{BASE}/{decl_id}/history", headers=gate["trader"]).json()
        assert "assign" not in [t["action"] for t in trader_view["transitions"]]
    # The revoked key does nothing more: not read its queue, not decide what it had read.
    assert_problem(gate["client"].get("/api/v1/review/queue", headers=leaving), 401)
    assert_problem(post_decision(gate, theirs[0], leaving, etag), 401)
    # New filings all go to the officer still on duty.
    later = [queued(gate, declaration_body)["assigned_officer"] for _ in range(3)]
    assert later == [key_id(staying)] * 3
    # The new assignee decides the moved declaration on what it reads now (the move changed the ETag).
    assert_problem(post_decision(gate, theirs[0], staying, etag), 412, "decision.stale")
    fresh = read(gate, theirs[0], staying).headers["ETag"]
    assert post_decision(gate, theirs[0], staying, fresh).status_code == 200


def test_with_nobody_else_on_duty_they_go_back_to_the_pool_for_a_supervisor(gate, declaration_body, runtime):
    first, second = gate["officers"]
    assert gate["client"].put("/api/v1/review/duty", json={"on_duty": False}, headers=second).status_code == 200
    decls = [queued(gate, declaration_body) for _ in range(2)]
    assert {d["assigned_officer"] for d in decls} == {key_id(first)}
    # One of them waits for documents: still the officer's to decide, so it moves too.
    etag = read(gate, decls[1]["id"], first).headers["ETag"]
    asked = gate["client"].post(f"{BASE}/{decls[1]['id']}/decisions", headers={**first, "If-Match": etag},
                                json={"outcome": "request_documents", "reason": "phyto certificate"})  # fmt: skip
    assert asked.status_code == 200, asked.text

    revoke(runtime, first, actor=f"admin:{key_id(gate['admin'])}")

    assert assigned(runtime, [d["id"] for d in decls]) == {d["id"]: None for d in decls}
    pool = gate["client"].get("/api/v1/review/queue?assigned=unassigned", headers=gate["supervisor"]).json()
    assert {d["id"] for d in pool} == {d["id"] for d in decls}
    for decl in decls:
        history = gate["client"].get(f"{BASE}/{decl['id']}/history", headers=gate["supervisor"]).json()
        assert history["transitions"][-1]["reason"] == (
            f"assigned to nobody (was {key_id(first)}): key {key_id(first)} revoked"
        )
    # Filed while nobody is on duty: unassigned too.
    assert queued(gate, declaration_body)["assigned_officer"] is None
    # The supervisor hands one on; the revoked key cannot be picked by hand either.
    url = f"{BASE}/{decls[0]['id']}/assignment"
    back = gate["client"].post(url, json={"officer_key_id": key_id(first)}, headers=gate["supervisor"])
    assert_problem(back, 422, "officer.unknown")
    moved = gate["client"].post(url, json={"officer_key_id": key_id(second)}, headers=gate["supervisor"])
    assert moved.status_code == 200, moved.text


def test_decided_declarations_stay_with_the_officer_who_decided_them(gate, declaration_body, runtime):
    officer = gate["officers"][0]
    decl = next(
        d for d in (queued(gate, declaration_body) for _ in range(2)) if d["assigned_officer"] == key_id(officer)
    )
    etag = read(gate, decl["id"], officer).headers["ETag"]
    assert post_decision(gate, decl["id"], officer, etag).json()["status"] == "cleared"
    revoke(runtime, officer)
    assert assigned(runtime, [decl["id"]]) == {decl["id"]: key_id(officer)}
    assert [e for e in events(runtime, decl["id"]) if e.type == "declaration.assigned"] == []


def test_rotation_skips_a_key_revoked_straight_in_the_database(gate, declaration_body, runtime):
    """Another process, or an operator in SQL, revoked it without telling anyone: the roster still says on duty."""
    leaving, staying = gate["officers"]
    with unit_of_work(runtime.sessions) as session:
        session.get(ApiKey, key_id(leaving)).revoked_at = utcnow()
    assert on_duty(runtime, key_id(leaving))
    assert {queued(gate, declaration_body)["assigned_officer"] for _ in range(4)} == {key_id(staying)}


def test_smartgate_keys_revoke_moves_the_officers_declarations(gate, declaration_body, runtime, runner):  # noqa: F811
    leaving, staying = gate["officers"]
    decls = [queued(gate, declaration_body) for _ in range(2)]
    result = invoke(runner, "keys", "revoke", key_id(leaving))
    assert result.exit_code == 0, result.output
    assert set(assigned(runtime, [d["id"] for d in decls]).values()) == {key_id(staying)}


def test_filings_racing_a_revocation_never_stay_with_the_revoked_key(gate, declaration_body, runtime):
    """On PostgreSQL the revocation waits for a filing that holds the officer's roster row, then moves what it
    got; a filing after the revocation skips the key. Either way nothing is left with the revoked key."""
    from tests.api.test_concurrency import race

    leaving, staying = gate["officers"]
    queued(gate, declaration_body)  # warm up (rule set, rates) outside the race

    def act(i: int) -> Any:
        if i == 0:
            return revoke(runtime, leaving)
        return gate["client"].post(f"{BASE}?submit=true", json=declaration_body,
                                   headers={**gate["trader"], "Idempotency-Key": f"revoke-race-{i}"})  # fmt: skip

    responses = race(7, act)
    filed = [r.json()["id"] for r in responses[1:]]
    assert all(r.status_code == 201 for r in responses[1:]), [r.text for r in responses[1:]]
    with unit_of_work(runtime.read_sessions) as session:
        waiting = session.scalars(
            select(Declaration.assigned_officer).where(
                Declaration.queued_at.is_not(None), Declaration.status == "submitted"
            )
        ).all()
    assert key_id(leaving) not in waiting
    assert key_id(leaving) not in assigned(runtime, filed).values()


def test_a_hand_assignment_waiting_on_a_revocation_in_progress_is_refused(gate, declaration_body, runtime):
    """PostgreSQL: the supervisor's assignment checked the key before the revocation committed, then waited for the
    officer's roster row; once the revocation commits it reads the key again and refuses (422), so nothing is left
    with the revoked key. (SQLite runs one writer at a time: the assignment starts after the revocation.)"""
    import threading
    import time

    leaving, staying = gate["officers"]
    decl = queued(gate, declaration_body)
    if decl["assigned_officer"] == key_id(leaving):
        moved = gate["client"].post(f"{BASE}/{decl['id']}/assignment", json={"officer_key_id": key_id(staying)},
                                    headers=gate["supervisor"])  # fmt: skip
        assert moved.status_code == 200, moved.text
    answer: list[Any] = []
    with unit_of_work(runtime.sessions) as session:
        assert revoke_key(session, key_id=key_id(leaving))  # holds the roster row until this block commits
        thread = threading.Thread(
            target=lambda: answer.append(
                gate["client"].post(
                    f"{BASE}/{decl['id']}/assignment",
                    json={"officer_key_id": key_id(leaving)},
                    headers=gate["supervisor"],
                )
            )
        )
        thread.start()
        if session.get_bind().dialect.name == "postgresql":
            deadline = time.monotonic() + 30
            while not _waiting_on_a_lock(runtime) and thread.is_alive():
                assert time.monotonic() < deadline, "the assignment never waited for the roster row"
                time.sleep(0.05)
        else:
            time.sleep(0.2)
    thread.join(timeout=60)
    assert_problem(answer[0], 422, "officer.unknown")
    assert assigned(runtime, [decl["id"]]) == {decl["id"]: key_id(staying)}


def _waiting_on_a_lock(runtime) -> bool:
    with runtime.read_sessions() as session:
        found = session.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        ).scalar()
        return bool(found)
