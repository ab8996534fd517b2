"""Who may call what: 401 without a valid key, 403 for the wrong role, 404 for another organisation's declaration."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.support import BASE, Api, assert_problem

DECLARATION = "00000000-0000-0000-0000-000000000000"


def every_operation(decl_id: str, body: dict[str, Any]) -> list[tuple[str, str, Any]]:
    """(method, path, json) of every declarations operation."""
    return [
        ("POST", BASE, body),
        ("GET", BASE, None),
        ("GET", f"{BASE}/{decl_id}", None),
        ("GET", f"{BASE}/{decl_id}/history", None),
        ("POST", f"{BASE}/{decl_id}/submit", None),
        ("POST", f"{BASE}/{decl_id}/amend", body),
        ("POST", f"{BASE}/{decl_id}/cancel", {"reason": "no longer needed"}),
    ]


def test_missing_or_invalid_keys_are_401_everywhere(api: Api, keys) -> None:
    for headers in ({}, {"Authorization": "Bearer sg_nope_nope"}, {"Authorization": "Basic abc"}):
        for method, path, body in every_operation(DECLARATION, api.body):
            response = api.client.request(method, path, json=body, headers={**headers, "Idempotency-Key": "k"})
            problem = assert_problem(response, 401)
            assert response.headers["www-authenticate"].startswith("Bearer"), (method, path)
            assert problem["type"].endswith("/unauthorized")


def test_a_revoked_key_is_401(api: Api, trader: dict[str, str], runtime) -> None:
    from services.kernel.auth import revoke_key
    from services.kernel.database import unit_of_work

    assert api.client.get(BASE, headers=trader).status_code == 200
    key_id = trader["Authorization"].split("_")[1]
    with unit_of_work(runtime.sessions) as session:
        assert revoke_key(session, key_id=key_id)
    assert_problem(api.client.get(BASE, headers=trader), 401)


def test_roles_without_access_are_403(api: Api, trader: dict[str, str], keys) -> None:
    decl = api.file(trader)
    for role in ("gate", "engineer"):
        headers = keys.make(role)
        for method, path, body in every_operation(decl["id"], api.body):
            response = api.client.request(method, path, json=body, headers={**headers, "Idempotency-Key": "k"})
            assert_problem(response, 403)


def test_officers_may_read_but_not_act_as_traders(api: Api, trader: dict[str, str], officer: dict[str, str]) -> None:
    decl = api.file(trader)
    for method, path, body in every_operation(decl["id"], api.body):
        response = api.client.request(
            method, path, json=body, headers={**officer, "Idempotency-Key": "k", "If-Match": decl["etag"]}
        )
        if method == "GET":
            assert response.status_code == 200, path
        else:
            problem = assert_problem(response, 403)
            assert "officer" in problem["detail"]


def test_another_organisations_declaration_is_404(api: Api, trader: dict[str, str], trader_b: dict[str, str]) -> None:
    """Trader B can neither see, amend, submit nor cancel trader A's declaration, nor learn that it exists."""
    decl = api.file(trader)
    for method, path, body in every_operation(decl["id"], api.body)[2:]:
        response = api.client.request(method, path, json=body, headers={**trader_b, "If-Match": decl["etag"]})
        problem = assert_problem(response, 404)
        missing = api.client.request(
            method, path.replace(decl["id"], DECLARATION), json=body, headers={**trader_b, "If-Match": decl["etag"]}
        )
        assert missing.json()["title"] == problem["title"]
    assert api.client.get(BASE, headers=trader_b).json()["items"] == []
    unchanged = api.client.get(f"{BASE}/{decl['id']}", headers=trader).json()
    assert (unchanged["status"], unchanged["version"], unchanged["etag"]) == ("draft", 1, decl["etag"])


def test_lists_show_only_the_callers_organisation(api: Api, trader: dict[str, str], trader_b: dict[str, str]) -> None:
    a = api.file(trader)
    b = api.file(trader_b)
    assert [d["id"] for d in api.client.get(BASE, headers=trader).json()["items"]] == [a["id"]]
    assert [d["id"] for d in api.client.get(BASE, headers=trader_b).json()["items"]] == [b["id"]]


def test_a_key_revoked_by_another_process_stops_working_within_the_cache_time(
    api: Api, trader: dict[str, str], runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The caller cache (SMARTGATE_AUTH_CACHE_SECONDS) saves a database read per request; a revocation made
    elsewhere (here: straight in the database, as `smartgate keys revoke` in another process does) is seen
    once the entry is older than the cache time, and never later."""
    from services.kernel.auth import ApiKey
    from services.kernel.database import unit_of_work, utcnow

    assert runtime.principals.ttl > 0
    clock = {"now": 1000.0}
    monkeypatch.setattr(runtime.principals, "clock", lambda: clock["now"])
    assert api.client.get(BASE, headers=trader).status_code == 200  # looked up, now cached
    key_id = trader["Authorization"].split("_")[1]
    with unit_of_work(runtime.sessions) as session:
        session.get(ApiKey, key_id).revoked_at = utcnow()  # not through revoke_key: this process is not told
    assert api.client.get(BASE, headers=trader).status_code == 200  # still trusted from the cache
    clock["now"] += runtime.principals.ttl + 0.1
    assert_problem(api.client.get(BASE, headers=trader), 401)


def test_failed_look_ups_are_never_cached(api: Api, keys, runtime) -> None:
    from services.kernel.auth import revoke_key
    from services.kernel.database import unit_of_work

    headers = keys.make("trader", "Cache Test Trading")
    key_id = headers["Authorization"].split("_")[1]
    with unit_of_work(runtime.sessions) as session:
        assert revoke_key(session, key_id=key_id)
    for _ in range(2):
        assert_problem(api.client.get(BASE, headers=headers), 401)


def test_concurrent_requests_of_one_key_share_one_look_up(app, trader: dict[str, str], monkeypatch) -> None:
    """When a caller is not cached (first use, or expired), requests that arrive during the look-up wait for it
    rather than each reading the database; a failed look-up is not shared (each request gets its own 401)."""
    import asyncio
    import threading
    import time

    import httpx

    from services.kernel import deps

    calls = {"n": 0}
    lock = threading.Lock()
    real = deps.authenticate

    def counting(session, **kwargs):  # type: ignore[no-untyped-def]
        with lock:
            calls["n"] += 1
        time.sleep(0.2)  # a slow database: the other requests arrive meanwhile
        return real(session, **kwargs)

    monkeypatch.setattr(deps, "authenticate", counting)

    async def burst(headers: dict[str, str]) -> list[int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            responses = await asyncio.gather(*(client.get(BASE, headers=headers) for _ in range(8)))
        return [r.status_code for r in responses]

    assert asyncio.run(burst(trader)) == [200] * 8
    assert calls["n"] == 1
    calls["n"] = 0
    assert asyncio.run(burst({"Authorization": "Bearer sg_nope_nope"})) == [401] * 8
    assert calls["n"] == 8
