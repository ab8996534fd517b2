"""Console sessions: the cookie holds a random session id (never the key), which ends at sign-out, on expiry and
when its key is revoked; CSRF tokens belong to one session; the id alone is no API credential."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

import pytest
from sqlalchemy import select

from api.console.routes import COOKIE
from services.kernel import sessions
from services.kernel.auth import KEY_PREFIX, ApiKey, revoke_key
from services.kernel.database import unit_of_work, utcnow
from services.kernel.sessions import ConsoleSession
from tests.api.test_console import Console, clear_key


@pytest.fixture
def console(client: Any, runtime: Any, keys: Any, declaration_body: dict[str, Any]) -> Console:
    return Console(client, runtime, keys, declaration_body)


def _signed_in(console: Console) -> str:
    resp = console.sign_in()
    assert resp.status_code == 303, resp.text
    token = console.client.cookies.get(COOKIE)
    assert token
    return str(token)


def _rows(console: Console) -> list[ConsoleSession]:
    with unit_of_work(console.runtime.read_sessions) as session:
        return list(session.scalars(select(ConsoleSession)))


def _key_id(console: Console) -> str:
    return clear_key(console.officer).removeprefix(KEY_PREFIX).split("_")[0]


def test_the_cookie_holds_a_session_id_never_the_key(console: Console) -> None:
    resp = console.sign_in()
    key = clear_key(console.officer)
    assert key not in resp.headers["set-cookie"]
    token = console.client.cookies.get(COOKIE)
    assert token
    assert key not in token
    assert not token.startswith(KEY_PREFIX)
    (row,) = _rows(console)
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()  # stored hashed, not as it is
    assert row.key_id == _key_id(console)
    assert token not in {row.id, row.token_hash}
    assert (row.expires_at - row.created_at) == dt.timedelta(hours=12)
    assert console.page("/console").status_code == 200


def test_sign_out_ends_the_session_even_for_a_replayed_cookie(console: Console) -> None:
    decl = console.file()
    token = _signed_in(console)
    csrf = console.csrf(console.page(f"/console/declarations/{decl['id']}").text)
    out = console.client.post("/console/logout", follow_redirects=False)
    assert out.status_code == 303
    assert _rows(console)[0].revoked_at is not None
    console.client.cookies.set(COOKIE, token, path="/console")  # the old cookie, replayed
    again = console.page("/console")
    assert again.status_code == 303
    assert again.headers["location"] == "/console/login"
    console.client.cookies.set(COOKIE, token, path="/console")
    late = console.client.post(f"/console/declarations/{decl['id']}/decide",
                               data={"outcome": "clear", "csrf": csrf}, follow_redirects=False)  # fmt: skip
    assert late.headers["location"] == "/console/login"
    assert console.api(decl["id"])["status"] == "submitted"
    # The key itself still signs in: sign-out ended the session, not the key.
    console.client.cookies.clear()
    assert console.sign_in().status_code == 303
    assert console.page("/console").status_code == 200


def test_revoking_the_key_ends_its_sessions(console: Console) -> None:
    _signed_in(console)
    with unit_of_work(console.runtime.sessions) as session:
        assert revoke_key(session, key_id=_key_id(console))
    assert _rows(console)[0].revoked_at is not None
    gone = console.page("/console")
    assert (gone.status_code, gone.headers["location"]) == (303, "/console/login")


def test_a_key_revoked_by_another_process_ends_the_session_at_the_next_request(console: Console) -> None:
    """Checked on every request (no cache): the row of the key is enough, however it was revoked."""
    _signed_in(console)
    assert console.page("/console").status_code == 200
    with unit_of_work(console.runtime.sessions) as session:
        session.get(ApiKey, _key_id(console)).revoked_at = utcnow()  # not through revoke_key: nobody is told
    assert console.page("/console").status_code == 303


@pytest.mark.parametrize("how", ["idle", "absolute"])
def test_an_expired_session_sends_the_officer_to_sign_in(console: Console, how: str) -> None:
    _signed_in(console)
    assert console.page("/console").status_code == 200
    with unit_of_work(console.runtime.sessions) as session:
        row = session.scalars(select(ConsoleSession)).one()
        if how == "idle":  # 8 h without a page
            row.last_seen_at = utcnow() - dt.timedelta(hours=8, seconds=1)
        else:  # 12 h after sign-in, however busy
            row.expires_at = utcnow() - dt.timedelta(seconds=1)
    resp = console.page("/console")
    assert (resp.status_code, resp.headers["location"]) == (303, "/console/login")


def test_use_keeps_an_idle_session_alive(console: Console) -> None:
    _signed_in(console)
    with unit_of_work(console.runtime.sessions) as session:
        session.scalars(select(ConsoleSession)).one().last_seen_at = utcnow() - dt.timedelta(hours=7)
    assert console.page("/console").status_code == 200
    assert utcnow() - _rows(console)[0].last_seen_at < dt.timedelta(minutes=5)


def test_a_csrf_token_is_good_for_its_own_session_only(console: Console) -> None:
    decl = console.file()
    _signed_in(console)
    first = console.csrf(console.page("/console").text)
    console.client.post("/console/logout")
    _signed_in(console)  # the same officer, a new session
    second = console.csrf(console.page("/console").text)
    assert first != second
    url = f"/console/declarations/{decl['id']}/decide"
    assert console.client.post(url, data={"outcome": "clear", "csrf": first}).status_code == 403
    assert console.api(decl["id"])["status"] == "submitted"
    version = console.if_match(console.page(f"/console/declarations/{decl['id']}").text)
    assert console.client.post(url, data={"outcome": "clear", "csrf": second, "if_match": version}).status_code == 200
    assert console.api(decl["id"])["status"] == "cleared"


def test_a_session_id_alone_is_no_api_credential(console: Console) -> None:
    token = _signed_in(console)
    secret = console.runtime.settings.secret_key
    queue = "/api/v1/review/queue"
    for header in (f"Bearer {token}", f"Console {token}", f"Console {token}.{'0' * 64}",
                   sessions.authorization("another-secret-" + "x" * 30, token)):  # fmt: skip
        resp = console.client.get(queue, headers={"Authorization": header})
        assert resp.status_code == 401, header
        assert resp.headers["content-type"] == "application/problem+json"
    assert (
        console.client.get(queue, headers={"Authorization": sessions.authorization(secret, token)}).status_code == 200
    )


def test_sessions_are_opened_with_an_officer_key_only(console: Console) -> None:
    opened = "/api/v1/review/sessions"
    assert console.client.post(opened, headers=console.trader).status_code == 403
    assert console.client.post(opened).status_code == 401
    made = console.client.post(opened, headers=console.officer)
    assert made.status_code == 201
    nested = console.client.post(
        opened, headers={"Authorization": sessions.authorization(console.runtime.settings.secret_key,
                                                                 made.json()["token"])})  # fmt: skip
    assert nested.status_code == 422
    assert console.client.delete(f"{opened}/current", headers=console.officer).status_code == 404
