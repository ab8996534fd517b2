"""The declarations API: filing with idempotency, submit, amend with ETags, cancel, history, lists, expiry, events."""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
from typing import Any

import rfc8785
from sqlalchemy import func, select, update

from services.declarations.events import VERBS
from services.declarations.models import Declaration
from services.kernel.database import unit_of_work, utcnow
from services.kernel.outbox import Event
from tests.api.support import BASE, Api, assert_problem


def test_file_returns_201_with_location_and_etag(api: Api, trader: dict[str, str], declaration_body) -> None:
    response = api.client.post(BASE, json=declaration_body, headers={**trader, "Idempotency-Key": "k-1"})
    assert response.status_code == 201
    decl = response.json()
    assert response.headers["location"] == f"{BASE}/{decl['id']}"
    assert response.headers["etag"] == decl["etag"]
    assert (decl["status"], decl["version"], decl["number"], decl["submitted_at"]) == ("draft", 1, None, None)
    assert decl["allowed_actions"] == ["submit", "amend", "cancel"]
    assert decl["body"]["containers"][0]["number"] == "CSQU3054383"
    assert decl["body_sha256"] == hashlib.sha256(rfc8785.dumps(decl["body"])).hexdigest()
    fetched = api.client.get(response.headers["location"], headers=trader)
    assert fetched.status_code == 200
    assert fetched.json() == decl
    assert fetched.headers["etag"] == decl["etag"]


def test_file_and_submit_at_once(api: Api, trader: dict[str, str]) -> None:
    decl = api.file(trader, submit=True)
    assert decl["status"] == "submitted"
    assert decl["number"] == f"KT-{utcnow().year}-000001"
    assert decl["submitted_at"] is not None
    history = api.client.get(f"{BASE}/{decl['id']}/history", headers=trader).json()
    assert [t["action"] for t in history["transitions"]] == ["create", "submit"]
    assert api.client.get(f"{BASE}/{decl['id']}", headers=trader).headers["etag"] == decl["etag"]


def test_a_retry_with_the_same_key_and_body_gets_the_first_response(api: Api, trader: dict[str, str]) -> None:
    first = api.client.post(BASE, json=api.body, headers={**trader, "Idempotency-Key": "retry-1"})
    again = api.client.post(BASE, json=api.body, headers={**trader, "Idempotency-Key": "retry-1"})
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert again.headers["location"] == first.headers["location"]
    assert again.headers["etag"] == first.headers["etag"]
    assert again.headers.get("idempotent-replayed") == "true"
    listed = api.client.get(BASE, headers=trader).json()["items"]
    assert len(listed) == 1


def test_the_same_key_with_another_body_is_422(api: Api, trader: dict[str, str]) -> None:
    api.file(trader, key="reused")
    other = api.variant(procedure_code="A12")
    body = assert_problem(api.client.post(BASE, json=other, headers={**trader, "Idempotency-Key": "reused"}), 422)
    assert body["code"] == "idempotency.key_reused"
    # The same body with ?submit=true is another request too.
    assert_problem(
        api.client.post(f"{BASE}?submit=true", json=api.body, headers={**trader, "Idempotency-Key": "reused"}), 422
    )


def test_keys_are_scoped_to_the_organisation(api: Api, trader: dict[str, str], trader_b: dict[str, str]) -> None:
    a = api.file(trader, key="shared-key")
    b = api.file(trader_b, key="shared-key")
    assert a["id"] != b["id"]
    assert a["organisation_id"] != b["organisation_id"]


def test_filing_requires_an_idempotency_key(api: Api, trader: dict[str, str]) -> None:
    body = assert_problem(api.client.post(BASE, json=api.body, headers=trader), 400)
    assert "Idempotency-Key" in body["detail"]
    assert_problem(api.client.post(BASE, json=api.body, headers={**trader, "Idempotency-Key": "  "}), 400)
    assert_problem(api.client.post(BASE, json=api.body, headers={**trader, "Idempotency-Key": "k" * 256}), 422)
    assert api.client.get(BASE, headers=trader).json()["items"] == []


def test_submit_a_draft(api: Api, trader: dict[str, str]) -> None:
    decl = api.file(trader)
    response = api.client.post(f"{BASE}/{decl['id']}/submit", headers=trader)
    assert response.status_code == 200
    submitted = response.json()
    assert submitted["status"] == "submitted"
    assert submitted["number"].startswith("KT-")
    assert response.headers["etag"] == submitted["etag"] != decl["etag"]
    assert submitted["allowed_actions"] == ["amend", "cancel"]
    again = assert_problem(api.client.post(f"{BASE}/{decl['id']}/submit", json={}, headers=trader), 409)
    assert again["current_status"] == "submitted"
    assert again["allowed_actions"] == ["amend", "cancel"]


def test_amend_needs_if_match_and_keeps_the_old_version(api: Api, trader: dict[str, str]) -> None:
    decl = api.file(trader, submit=True)
    url = f"{BASE}/{decl['id']}/amend"
    new_body = api.variant(procedure_code="A12")
    assert_problem(api.client.post(url, json=new_body, headers=trader), 428)
    stale = assert_problem(api.client.post(url, json=new_body, headers={**trader, "If-Match": '"0-000000000000"'}), 412)
    assert stale["current_etag"] == decl["etag"]
    response = api.client.post(url, json=new_body, headers={**trader, "If-Match": decl["etag"]})
    assert response.status_code == 200
    amended = response.json()
    assert (amended["version"], amended["status"], amended["number"]) == (2, "submitted", decl["number"])
    assert amended["body"]["procedure_code"] == "A12"
    assert response.headers["etag"] == amended["etag"] != decl["etag"]
    # The old ETag is now stale.
    assert_problem(api.client.post(url, json=api.body, headers={**trader, "If-Match": decl["etag"]}), 412)
    history = api.client.get(f"{BASE}/{decl['id']}/history", headers=trader).json()
    assert [(v["version"], v["body"]["procedure_code"]) for v in history["versions"]] == [(1, "A11"), (2, "A12")]
    assert [v["body_sha256"] for v in history["versions"]] == [decl["body_sha256"], amended["body_sha256"]]


def test_amend_validates_the_new_body(api: Api, trader: dict[str, str]) -> None:
    decl = api.file(trader)
    bad = api.variant(procedure_code="B11", colour="red")
    body = assert_problem(
        api.client.post(f"{BASE}/{decl['id']}/amend", json=bad, headers={**trader, "If-Match": decl["etag"]}), 422
    )
    assert {(e["pointer"], e["code"]) for e in body["errors"]} == {
        ("/procedure_code", "procedure_code.kind_mismatch"),
        ("/colour", "unknown_field"),
    }


def test_cancel_needs_a_reason(api: Api, trader: dict[str, str]) -> None:
    decl = api.file(trader)
    url = f"{BASE}/{decl['id']}/cancel"
    body = assert_problem(api.client.post(url, json={}, headers=trader), 422)
    assert body["errors"][0]["pointer"] == "/reason"
    assert_problem(api.client.post(url, json={"reason": "  "}, headers=trader), 422)
    response = api.client.post(url, json={"reason": "buyer withdrew"}, headers=trader)
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert response.json()["allowed_actions"] == []
    history = api.client.get(f"{BASE}/{decl['id']}/history", headers=trader).json()
    assert history["transitions"][-1]["reason"] == "buyer withdrew"


def test_cancel_of_a_cleared_declaration(api: Api, trader: dict[str, str]) -> None:
    decl = api.file(trader, submit=True)
    api.system(decl["id"], "clear")
    response = api.client.post(f"{BASE}/{decl['id']}/cancel", json={"reason": "goods sold locally"}, headers=trader)
    assert response.json()["status"] == "cancelled"


def test_cancel_after_release_is_409_naming_state_and_allowed_actions(api: Api, trader: dict[str, str]) -> None:
    decl = api.file(trader, submit=True)
    api.system(decl["id"], "clear", "release")
    body = assert_problem(
        api.client.post(f"{BASE}/{decl['id']}/cancel", json={"reason": "too late"}, headers=trader), 409
    )
    assert body["current_status"] == "released"
    assert body["allowed_actions"] == []
    assert "released" in body["detail"]
    assert api.client.get(f"{BASE}/{decl['id']}", headers=trader).json()["status"] == "released"


def test_every_trader_action_refused_in_final_states(api: Api, trader: dict[str, str]) -> None:
    decl = api.file(trader, submit=True)
    api.system(decl["id"], "clear", "release", "exit")
    current = api.client.get(f"{BASE}/{decl['id']}", headers=trader).json()
    for action, body, extra in (
        ("submit", None, {}),
        ("amend", api.body, {"If-Match": current["etag"]}),
        ("cancel", {"reason": "way too late"}, {}),
    ):
        problem = assert_problem(
            api.client.post(f"{BASE}/{decl['id']}/{action}", json=body, headers={**trader, **extra}), 409
        )
        assert problem["current_status"] == "exited"


def test_history_shows_every_change_with_actor_and_time(
    api: Api, trader: dict[str, str], officer: dict[str, str]
) -> None:
    decl = api.file(trader)
    api.client.post(f"{BASE}/{decl['id']}/submit", headers=trader)
    current = api.client.get(f"{BASE}/{decl['id']}", headers=trader).json()
    api.client.post(
        f"{BASE}/{decl['id']}/amend",
        json=api.variant(procedure_code="A12"),
        headers={**trader, "If-Match": current["etag"]},
    )
    api.system(decl["id"], "clear")
    history = api.client.get(f"{BASE}/{decl['id']}/history", headers=trader).json()
    assert history["id"] == decl["id"]
    assert history["number"] == current["number"]
    assert [(t["action"], t["from_status"], t["to_status"], t["version"]) for t in history["transitions"]] == [
        ("create", None, "draft", 1),
        ("submit", "draft", "submitted", 1),
        ("amend", "submitted", "submitted", 2),
        ("clear", "submitted", "cleared", 2),
    ]
    key_id = trader["Authorization"].split("_")[1]
    # The trader sees customs staff by role; officers see who.
    assert [t["actor"] for t in history["transitions"]] == [f"trader:{key_id}"] * 3 + ["customs officer"]
    seen = api.client.get(f"{BASE}/{decl['id']}/history", headers=officer).json()
    assert [t["actor"] for t in seen["transitions"]] == [f"trader:{key_id}"] * 3 + ["officer:test"]
    times = [dt.datetime.fromisoformat(t["at"]) for t in history["transitions"]]
    assert times == sorted(times)
    assert all(t.tzinfo is not None for t in times)
    assert [v["actor"] for v in history["versions"]] == [f"trader:{key_id}"] * 2


def test_officers_see_every_organisation(api: Api, trader: dict[str, str], trader_b: dict[str, str], officer) -> None:
    a, b = api.file(trader), api.file(trader_b)
    listed = {d["id"] for d in api.client.get(BASE, headers=officer).json()["items"]}
    assert listed == {a["id"], b["id"]}
    assert api.client.get(f"{BASE}/{b['id']}", headers=officer).status_code == 200
    assert api.client.get(f"{BASE}/{b['id']}/history", headers=officer).status_code == 200


# --- lists ---------------------------------------------------------------------------------------------------


def ids(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    return [d["id"] for d in response.json()["items"]]


def test_list_filters(api: Api, trader: dict[str, str]) -> None:
    draft = api.file(trader)
    submitted = api.file(trader, submit=True)
    export = api.file(
        trader,
        api.variant(
            kind="export",
            procedure_code="B11",
            consignor=api.body["consignee"],
            consignee=api.body["consignor"],
            containers=[{"number": "MSKU1234565"}],
        ),
    )
    other_gate = api.file(
        trader, api.variant(border_gate="LAOCAI", items=[dict(api.body["items"][0], hs_code="08041000")])
    )
    get = api.client.get
    everything = [other_gate["id"], export["id"], submitted["id"], draft["id"]]
    assert ids(get(BASE, headers=trader)) == everything  # newest first
    assert ids(get(BASE, params={"status": "submitted"}, headers=trader)) == [submitted["id"]]
    assert ids(get(BASE, params={"status": "draft"}, headers=trader)) == [other_gate["id"], export["id"], draft["id"]]
    assert ids(get(BASE, params={"kind": "export"}, headers=trader)) == [export["id"]]
    assert ids(get(BASE, params={"gate": "LAOCAI"}, headers=trader)) == [other_gate["id"]]
    assert ids(get(BASE, params={"hs_prefix": "0804"}, headers=trader)) == [other_gate["id"]]
    assert ids(get(BASE, params={"hs_prefix": "08"}, headers=trader)) == everything
    fruit = api.body["items"][0]["hs_code"]
    assert fruit.startswith("0810")
    assert ids(get(BASE, params={"hs_prefix": fruit[:7]}, headers=trader)) == everything[1:]
    assert ids(get(BASE, params={"hs_prefix": fruit}, headers=trader)) == everything[1:]
    assert ids(get(BASE, params={"container": "msku 123456 5"}, headers=trader)) == [export["id"]]
    assert ids(get(BASE, params={"container": "MSKU1234565", "kind": "import"}, headers=trader)) == []
    created = [dt.datetime.fromisoformat(d["created_at"]) for d in (draft, submitted, export, other_gate)]
    window = {"created_from": created[1].isoformat(), "created_to": created[3].isoformat()}
    assert ids(get(BASE, params=window, headers=trader)) == [export["id"], submitted["id"]]
    hanoi = created[2].astimezone(dt.timezone(dt.timedelta(hours=7))).isoformat()
    assert ids(get(BASE, params={"created_from": hanoi}, headers=trader)) == [other_gate["id"], export["id"]]


def test_list_rejects_bad_filters_with_problems(api: Api, trader: dict[str, str]) -> None:
    get = api.client.get
    for params in (
        {"status": "lost"},
        {"kind": "transit"},
        {"hs_prefix": "08a"},
        {"limit": "0"},
        {"limit": "201"},
        {"created_from": "yesterday"},
        {"created_from": "2026-11-01T00:00:00"},
        {"cursor": "not-a-cursor"},
    ):
        problem = assert_problem(get(BASE, params=params, headers=trader), 422)
        assert problem["type"].endswith("/validation"), params


def test_cursor_pagination_walks_everything_once(api: Api, trader: dict[str, str]) -> None:
    filed = [api.file(trader)["id"] for _ in range(5)]
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = api.client.get(BASE, params=params, headers=trader).json()
        seen += [d["id"] for d in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == list(reversed(filed))


def test_a_page_exactly_full_has_no_next_cursor(api: Api, trader: dict[str, str]) -> None:
    for _ in range(2):
        api.file(trader)
    page = api.client.get(BASE, params={"limit": 2}, headers=trader).json()
    assert len(page["items"]) == 2
    assert page["next_cursor"] is None


# --- expiry and events ---------------------------------------------------------------------------------------


def test_the_expiry_job_expires_stale_declarations(api: Api, trader: dict[str, str], app) -> None:
    old = api.file(trader, submit=True)
    old_cleared = api.file(trader, submit=True)
    api.system(old_cleared["id"], "clear")
    fresh = api.file(trader, submit=True)
    draft = api.file(trader)
    with unit_of_work(api.runtime.sessions) as session:
        session.execute(
            update(Declaration)
            .where(Declaration.id.in_([old["id"], old_cleared["id"], draft["id"]]))
            .values(submitted_at=utcnow() - dt.timedelta(days=16))
        )
    expired = app.state.expiry.run_once()
    assert sorted(expired) == sorted([old["id"], old_cleared["id"]])
    statuses = {d["id"]: d["status"] for d in api.client.get(BASE, headers=trader).json()["items"]}
    assert statuses == {
        old["id"]: "expired",
        old_cleared["id"]: "expired",
        fresh["id"]: "submitted",
        draft["id"]: "draft",
    }
    last = api.client.get(f"{BASE}/{old['id']}/history", headers=trader).json()["transitions"][-1]
    assert (last["action"], last["actor"]) == ("expire", "system:expiry")
    assert app.state.expiry.run_once() == []


def test_every_state_change_is_published_as_an_event(api: Api, trader: dict[str, str], runtime) -> None:
    seen: list[Event] = []
    lock = threading.Lock()

    def spy(event: Event) -> None:
        with lock:
            seen.append(event)

    runtime.bus.subscribe("declaration.*", spy, name="spy")
    decl = api.file(trader)
    submitted = api.client.post(f"{BASE}/{decl['id']}/submit", headers=trader).json()
    amended = api.client.post(
        f"{BASE}/{decl['id']}/amend",
        json=api.variant(procedure_code="A12"),
        headers={**trader, "If-Match": submitted["etag"]},
    ).json()
    cancelled = api.client.post(f"{BASE}/{decl['id']}/cancel", json={"reason": "order lost"}, headers=trader).json()
    runtime.relay.drain()  # whatever the background relay has not delivered yet
    mine = [e for e in seen if e.subject == decl["id"] and e.type in VERBS.values()]  # state changes only
    assert [e.type for e in mine] == [
        "declaration.created",
        "declaration.submitted",
        "declaration.amended",
        "declaration.cancelled",
    ]
    assert len({e.id for e in mine}) == 4
    for event, state in zip(mine, (decl, submitted, amended, cancelled), strict=True):
        assert event.payload["declaration_id"] == decl["id"]
        assert event.payload["version"] == state["version"]
        assert event.payload["status"] == state["status"]
        assert event.payload["body_sha256"] == hashlib.sha256(rfc8785.dumps(state["body"])).hexdigest()
    assert mine[-1].payload["reason"] == "order lost"


def test_a_refused_request_writes_nothing(api: Api, trader: dict[str, str], runtime) -> None:
    from services.kernel.outbox import OutboxEvent

    decl = api.file(trader, submit=True)
    api.system(decl["id"], "clear", "release")
    with unit_of_work(runtime.read_sessions) as session:
        before = session.scalar(select(func.count()).select_from(OutboxEvent))
    api.client.post(f"{BASE}/{decl['id']}/cancel", json={"reason": "too late"}, headers=trader)
    api.client.post(f"{BASE}/{decl['id']}/amend", json=api.body, headers={**trader, "If-Match": '"stale"'})
    with unit_of_work(runtime.read_sessions) as session:
        assert session.scalar(select(func.count()).select_from(OutboxEvent)) == before
