"""Database plumbing: migrations applied, UTC timestamps, units of work."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import inspect, select, text
from sqlalchemy.exc import StatementError

from services.kernel.auth import Organisation
from services.kernel.database import Base, new_id, unit_of_work, utcnow
from services.kernel.migrate import version_locations
from services.kernel.runtime import Runtime

EXPECTED_TABLES = {
    "organisations",
    "api_keys",
    "outbox_events",
    "processed_events",
    "idempotency_keys",
    "declarations",
    "declaration_versions",
    "declaration_transitions",
    "declaration_containers",
    "declaration_hs_codes",
    "declaration_sequences",
}


def test_migrations_create_every_table_of_the_models(runtime: Runtime) -> None:
    import services.declarations.models  # noqa: F401 - registers the tables on Base

    tables = set(inspect(runtime.engine).get_table_names())
    assert EXPECTED_TABLES <= tables
    assert set(Base.metadata.tables) <= tables
    with runtime.engine.connect() as conn:
        versions = {r[0] for r in conn.execute(text("SELECT version_num FROM alembic_version"))}
    assert versions


def test_migrated_columns_match_the_models(runtime: Runtime) -> None:
    """What the migrations built is what the ORM maps (a model change without a migration shows up here)."""
    import services.declarations.models  # noqa: F401

    inspector = inspect(runtime.engine)
    for name, table in Base.metadata.tables.items():
        migrated = {c["name"]: c for c in inspector.get_columns(name)}
        assert set(migrated) == set(table.columns.keys()), name
        for column in table.columns:
            assert migrated[column.name]["nullable"] == column.nullable, f"{name}.{column.name}"


def test_kernel_migrations_come_first() -> None:
    locations = version_locations()
    assert locations[0].parent.parent.name == "kernel"
    assert {p.parent.parent.name for p in locations} >= {"kernel", "declarations"}


def test_timestamps_come_back_aware_and_in_utc(runtime: Runtime) -> None:
    hanoi = dt.timezone(dt.timedelta(hours=7))
    moment = dt.datetime(2026, 11, 28, 8, 30, tzinfo=hanoi)
    with unit_of_work(runtime.sessions) as session:
        session.add(Organisation(id="org-1", name="Firm", created_at=moment))
    with unit_of_work(runtime.read_sessions) as session:
        stored = session.get(Organisation, "org-1")
        assert stored is not None
        assert stored.created_at == moment
        assert stored.created_at.utcoffset() == dt.timedelta(0)


def test_naive_timestamps_are_refused(runtime: Runtime) -> None:

    def store_naive() -> None:
        with unit_of_work(runtime.sessions) as session:
            session.add(Organisation(name="Naive", created_at=dt.datetime(2026, 1, 1)))

    with pytest.raises(StatementError, match="naive"):
        store_naive()


def test_a_unit_of_work_commits_or_rolls_back(runtime: Runtime) -> None:
    with unit_of_work(runtime.sessions) as session:
        session.add(Organisation(name="Kept"))

    def write_then_fail() -> None:
        with unit_of_work(runtime.sessions) as session:
            session.add(Organisation(name="Dropped"))
            session.flush()
            raise RuntimeError("fail after the write")

    with pytest.raises(RuntimeError):
        write_then_fail()
    with unit_of_work(runtime.read_sessions) as session:
        assert session.scalars(select(Organisation.name)).all() == ["Kept"]


def test_helpers() -> None:
    assert utcnow().tzinfo is dt.UTC
    assert len(new_id()) == 36
    assert new_id() != new_id()


def test_a_pooled_connection_killed_while_idle_is_replaced(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    """PostgreSQL: the pool pings a connection only after it sat idle (not on every checkout, as pool_pre_ping
    would); one the server closed meanwhile (a restart, an idle timeout) is replaced, and the caller never sees
    the dead one."""
    from services.kernel import database

    engine = runtime.engine
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite connections are files, not sockets")
    with engine.connect() as conn:
        victim = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    outsider = create_engine(engine.url, poolclass=NullPool)  # not from the pool: that would hand us the victim
    with outsider.connect() as other:  # the server ends it, as a restart or an idle timeout would
        other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": victim})
        other.commit()
    outsider.dispose()
    monkeypatch.setattr(database, "PING_AFTER_IDLE_SECONDS", 0.0)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT 1")).scalar_one() == 1
        assert conn.execute(text("SELECT pg_backend_pid()")).scalar_one() != victim
