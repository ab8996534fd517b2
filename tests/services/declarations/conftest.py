"""Fixtures for service-level tests: callers (principals) with real keys, and the request-like unit of work."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

import pytest
from sqlalchemy.orm import Session

from services.declarations.assessment import VN_TZ
from services.declarations.tariff import DEMO_RATES, post_rate
from services.kernel.auth import Principal, Role, create_key, get_or_create_organisation
from services.kernel.database import unit_of_work
from services.kernel.runtime import Runtime


@pytest.fixture
def make_principal(runtime: Runtime) -> Callable[..., Principal]:
    """Create a key of `role` (traders in organisation `org`) and return the caller it authenticates as."""

    def make(role: str, org: str | None = None) -> Principal:
        with unit_of_work(runtime.sessions) as session:
            organisation = get_or_create_organisation(session, name=org) if org else None
            row, _ = create_key(
                session, secret_key=runtime.settings.secret_key, role=Role(role), organisation=organisation
            )
            return Principal(key_id=row.id, role=Role(row.role), organisation_id=row.organisation_id)

    return make


@pytest.fixture
def trader_a(make_principal: Callable[..., Principal]) -> Principal:
    return make_principal("trader", "Lao Cai Fruit Export JSC")


@pytest.fixture
def trader_b(make_principal: Callable[..., Principal]) -> Principal:
    return make_principal("trader", "Hekou Border Trading Co.")


@pytest.fixture
def officer(make_principal: Callable[..., Principal]) -> Principal:
    return make_principal("officer")


@pytest.fixture
def uow(runtime: Runtime) -> Callable[[], AbstractContextManager[Session]]:
    """A unit of work on the test database (what a request does: commit on success, roll back on error)."""

    def make() -> AbstractContextManager[Session]:
        return unit_of_work(runtime.sessions)

    return make


@pytest.fixture
def session(runtime: Runtime) -> Iterator[Session]:
    """A plain session for reading back what the units of work committed."""
    with runtime.read_sessions() as s:
        yield s


@pytest.fixture
def gate(runtime, client, keys):
    """Two traders, two officers on duty, a supervisor, the treasury, an admin, and today's exchange rates."""
    with unit_of_work(runtime.sessions) as session:
        for currency, rate in DEMO_RATES.items():
            post_rate(
                session, currency=currency, day=dt.datetime.now(VN_TZ).date(), vnd_per_unit=rate, source="t", actor="t"
            )
    officers = [keys.make("officer"), keys.make("officer")]
    for headers in officers:
        assert client.put("/api/v1/review/duty", json={"on_duty": True}, headers=headers).status_code == 200
    return {
        "trader": keys.make("trader", "Lao Cai Fruit Export JSC"),
        "other": keys.make("trader", "Hekou Border Trading Co."),
        "officers": officers,
        "supervisor": keys.make("supervisor"),
        "treasury": keys.make("treasury"),
        "admin": keys.make("admin"),
        "client": client,
    }
