"""Races decided by the database, not by timing: duplicate POSTs under one key, and two amends on one ETag."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from services.declarations import repository
from services.declarations.models import Declaration
from services.kernel.database import unit_of_work
from tests.api.support import BASE, Api, assert_problem


def race(n: int, call: Callable[[int], Any]) -> list[Any]:
    """Run `call(i)` in n threads released together; their results (or exceptions) in thread order."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = call(i)
        except BaseException as exc:  # noqa: BLE001 - asserted on by the caller
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def declarations_in_db(api: Api) -> int:
    with unit_of_work(api.runtime.read_sessions) as session:
        return int(session.scalar(select(func.count()).select_from(Declaration)) or 0)


def test_concurrent_duplicate_posts_create_exactly_one_declaration(api: Api, trader: dict[str, str]) -> None:
    headers = {**trader, "Idempotency-Key": "one-truck-one-declaration"}
    responses = race(6, lambda _: api.client.post(BASE, json=api.body, headers=headers))
    assert [r.status_code for r in responses] == [201] * 6
    assert len({r.json()["id"] for r in responses}) == 1
    assert len({r.headers["location"] for r in responses}) == 1
    assert sum(r.headers.get("idempotent-replayed") == "true" for r in responses) == 5
    assert declarations_in_db(api) == 1


def test_concurrent_posts_with_one_key_and_different_bodies(api: Api, trader: dict[str, str]) -> None:
    """One of them files; every other gets the first response or a 422, never a second declaration."""
    bodies = [api.variant(procedure_code=code) for code in ("A11", "A12", "A21", "A31")]
    responses = race(4, lambda i: api.client.post(BASE, json=bodies[i], headers={**trader, "Idempotency-Key": "k"}))
    codes = sorted(r.status_code for r in responses)
    assert codes == [201, 422, 422, 422]
    assert declarations_in_db(api) == 1


def test_two_amends_on_one_etag_one_wins_one_gets_412(api: Api, trader: dict[str, str]) -> None:
    decl = api.file(trader, submit=True)
    bodies = [api.variant(procedure_code="A12"), api.variant(procedure_code="A21")]
    responses = race(
        2,
        lambda i: api.client.post(
            f"{BASE}/{decl['id']}/amend", json=bodies[i], headers={**trader, "If-Match": decl["etag"]}
        ),
    )
    assert sorted(r.status_code for r in responses) == [200, 412]
    loser = next(r for r in responses if r.status_code == 412)
    assert loser.headers["content-type"] == "application/problem+json"
    winner = next(r for r in responses if r.status_code == 200).json()
    current = api.client.get(f"{BASE}/{decl['id']}", headers=trader).json()
    assert current["version"] == 2
    assert current["body"]["procedure_code"] == winner["body"]["procedure_code"]
    history = api.client.get(f"{BASE}/{decl['id']}/history", headers=trader).json()
    assert [v["version"] for v in history["versions"]] == [1, 2]
    assert [t["action"] for t in history["transitions"]].count("amend") == 1


def changed_after_read(monkeypatch: pytest.MonkeyPatch, decl_id: str) -> None:
    """Make the next read of `decl_id` be overtaken by another writer before the request writes.

    The row's version is bumped in the database right after the request loads it, exactly what a concurrent
    transaction committing in between does on PostgreSQL; deterministic, and possible on SQLite too.
    """
    real_get = repository.get
    done = False

    def get(session: Session, declaration_id: str, **kwargs: Any) -> Any:
        nonlocal done
        decl = real_get(session, declaration_id, **kwargs)
        if decl is not None and declaration_id == decl_id and not done:
            done = True
            session.execute(
                update(Declaration)
                .where(Declaration.id == decl_id)
                .values(row_version=Declaration.row_version + 1)
                .execution_options(synchronize_session=False)
            )
        return decl

    monkeypatch.setattr(repository, "get", get)


def test_an_amend_overtaken_after_its_read_is_412(
    api: Api, lenient: Any, trader: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    decl = api.file(trader)
    changed_after_read(monkeypatch, decl["id"])
    response = lenient.post(
        f"{BASE}/{decl['id']}/amend",
        json=api.variant(procedure_code="A12"),
        headers={**trader, "If-Match": decl["etag"]},
    )
    assert_problem(response, 412)


@pytest.mark.parametrize(("action", "body"), [("submit", None), ("cancel", {"reason": "changed plans"})])
def test_a_transition_overtaken_after_its_read_is_not_a_500(
    api: Api, lenient: Any, trader: dict[str, str], monkeypatch: pytest.MonkeyPatch, action: str, body: Any
) -> None:
    decl = api.file(trader)
    changed_after_read(monkeypatch, decl["id"])
    response = lenient.post(f"{BASE}/{decl['id']}/{action}", json=body, headers=trader)
    assert response.status_code in (200, 409, 412), response.text
