"""API keys: shown once, stored as an HMAC, bound to an organisation for traders, revocable."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from services.kernel.auth import (
    KEY_PREFIX,
    ApiKey,
    Principal,
    Role,
    authenticate,
    create_key,
    get_or_create_organisation,
    hash_key,
    revoke_key,
)
from services.kernel.database import unit_of_work
from services.kernel.errors import Forbidden, Unauthorized
from services.kernel.runtime import Runtime


def make_key(runtime: Runtime, role: Role, org: str | None = None) -> tuple[str, str]:
    with unit_of_work(runtime.sessions) as session:
        organisation = get_or_create_organisation(session, name=org) if org else None
        row, clear = create_key(session, secret_key=runtime.settings.secret_key, role=role, organisation=organisation)
        return row.id, clear


def auth(runtime: Runtime, header: str | None) -> Principal:
    with unit_of_work(runtime.read_sessions) as session:
        return authenticate(session, secret_key=runtime.settings.secret_key, authorization=header)


def test_a_key_authenticates_as_its_role_and_organisation(runtime: Runtime) -> None:
    key_id, clear = make_key(runtime, Role.trader, "Lao Cai Fruit Export JSC")
    principal = auth(runtime, f"Bearer {clear}")
    assert (principal.key_id, principal.role) == (key_id, Role.trader)
    assert principal.organisation_id is not None
    assert principal.actor == f"trader:{key_id}"
    assert auth(runtime, f"bearer   {clear}  ").key_id == key_id


def test_only_the_hmac_is_stored(runtime: Runtime) -> None:
    key_id, clear = make_key(runtime, Role.officer)
    assert clear.startswith(f"{KEY_PREFIX}{key_id}_")
    with unit_of_work(runtime.read_sessions) as session:
        row = session.get(ApiKey, key_id)
        assert row is not None
        assert row.key_hash == hash_key(runtime.settings.secret_key, clear)
        assert clear not in {str(v) for v in vars(row).values()}


def test_a_key_is_bound_to_the_deployment_secret(runtime: Runtime) -> None:
    _, clear = make_key(runtime, Role.officer)
    with pytest.raises(Unauthorized), unit_of_work(runtime.read_sessions) as session:
        authenticate(session, secret_key="another-secret-" + "x" * 30, authorization=f"Bearer {clear}")


BAD_HEADERS = [None, "", "Bearer", "Basic dXNlcjpwYXNz", "Bearer not-a-key", "Bearer sg_unknown_key", "sg_abc"]


def test_bad_credentials_are_401(runtime: Runtime) -> None:
    for header in BAD_HEADERS:
        with pytest.raises(Unauthorized) as info:
            auth(runtime, header)
        assert info.value.status == 401, header
        assert info.value.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_revoked_key_is_401(runtime: Runtime) -> None:
    key_id, clear = make_key(runtime, Role.gate)
    with unit_of_work(runtime.sessions) as session:
        assert revoke_key(session, key_id=key_id) is True
    with pytest.raises(Unauthorized, match="revoked"):
        auth(runtime, f"Bearer {clear}")
    with unit_of_work(runtime.sessions) as session:
        assert revoke_key(session, key_id=key_id) is False
        assert revoke_key(session, key_id="nosuchkey") is False


def test_a_trader_key_needs_an_organisation_and_only_traders_have_one(runtime: Runtime) -> None:
    with unit_of_work(runtime.sessions) as session:
        with pytest.raises(ValueError, match="organisation"):
            create_key(session, secret_key=runtime.settings.secret_key, role=Role.trader)
        org = get_or_create_organisation(session, name="Some Firm")
        with pytest.raises(ValueError, match="only trader"):
            create_key(session, secret_key=runtime.settings.secret_key, role=Role.officer, organisation=org)


def test_organisations_are_found_by_name(runtime: Runtime) -> None:
    with unit_of_work(runtime.sessions) as session:
        first = get_or_create_organisation(session, name="Hekou Border Trading Co.", tax_id="91110000600037341L")
        again = get_or_create_organisation(session, name="Hekou Border Trading Co.")
        assert first.id == again.id
    with unit_of_work(runtime.read_sessions) as session:
        assert len(session.scalars(select(ApiKey)).all()) == 0


def test_keys_are_unique(runtime: Runtime) -> None:
    made = {make_key(runtime, Role.officer) for _ in range(5)}
    assert len({k for k, _ in made}) == len({c for _, c in made}) == 5


def test_require_lets_listed_roles_through() -> None:
    officer = Principal(key_id="k", role=Role.officer, organisation_id=None)
    assert officer.require(Role.officer, Role.admin) is officer
    with pytest.raises(Forbidden, match="officer") as info:
        officer.require(Role.trader)
    assert info.value.status == 403
