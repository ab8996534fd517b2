"""A ledger append commits durably before a checkpoint can sign and anchor it (issue 13 §4): on SQLite the append's
transaction runs at `synchronous=FULL` (WAL at NORMAL syncs only at WAL checkpoints, so a power cut could undo
entries an anchored checkpoint covers), while the other transactions keep NORMAL; PostgreSQL commits synchronously."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event

from ledger import storage
from services.kernel.database import durable, unit_of_work
from services.kernel.runtime import Runtime
from tests.services.provenance.conftest import settle

LEVELS = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}


def _level(dbapi_connection: Any, dialect: str) -> str:
    if dialect == "sqlite":
        return LEVELS[dbapi_connection.execute("PRAGMA synchronous").fetchone()[0]]
    with dbapi_connection.cursor() as cur:
        cur.execute("SHOW synchronous_commit")
        return str(cur.fetchone()[0])


class Watch:
    """The durability level in effect at each ledger insert and at the commit of each transaction that made one,
    and at each insert of a declaration (what every other transaction runs at)."""

    def __init__(self, runtime: Runtime) -> None:
        self.engine = runtime.engine
        self.dialect = self.engine.dialect.name
        self.at_ledger_insert: list[str] = []
        self.at_ledger_commit: list[str] = []
        self.at_declaration_insert: list[str] = []

    def before_execute(self, conn, _cursor, statement, _params, _context, _many) -> None:  # type: ignore[no-untyped-def]
        text = statement.lstrip().upper()
        if text.startswith("INSERT INTO LEDGER_ENTRIES"):
            self.at_ledger_insert.append(_level(conn.connection.driver_connection, self.dialect))
            conn.info["ledger_insert"] = True
        elif text.startswith("INSERT INTO DECLARATIONS "):
            self.at_declaration_insert.append(_level(conn.connection.driver_connection, self.dialect))

    def on_commit(self, conn) -> None:  # type: ignore[no-untyped-def]
        # The commit event fires just before the DBAPI commit: the level the commit runs at.
        if conn.info.pop("ledger_insert", False):
            self.at_ledger_commit.append(_level(conn.connection.driver_connection, self.dialect))

    def __enter__(self) -> Watch:
        event.listen(self.engine, "before_cursor_execute", self.before_execute)
        event.listen(self.engine, "commit", self.on_commit)
        return self

    def __exit__(self, *_exc: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self.before_execute)
        event.remove(self.engine, "commit", self.on_commit)


def test_the_ledger_append_commits_at_full_and_filings_keep_normal(api, trader, runtime, checkpointer) -> None:
    # Appends are bulk inserts: COPY on PostgreSQL, which the watch cannot see; it sees the INSERT elsewhere.
    if runtime.engine.dialect.name == "postgresql":
        pytest.skip("PostgreSQL appends use COPY; see the test of synchronous_commit below")
    with Watch(runtime) as watch:
        for _ in range(3):
            api.file(trader, submit=True)
        settle(runtime, checkpointer)
    assert watch.at_ledger_insert
    assert set(watch.at_ledger_insert) == {"FULL"}
    assert len(watch.at_ledger_commit) >= 1
    assert set(watch.at_ledger_commit) == {"FULL"}
    # Filings share the pooled connections and still commit at NORMAL: only the ledger pays for the sync.
    assert watch.at_declaration_insert == ["NORMAL"] * 3
    with runtime.engine.connect() as conn:
        assert storage.log_size(conn) >= 3 * 3  # created, submitted, assessed (and more) per filing
        assert storage.get_checkpoint(conn) is not None


def test_durable_transactions_on_each_backend(runtime) -> None:
    """The level seen inside a transaction of `durable(engine)`, then of the plain engine on the same pool."""
    dialect = runtime.engine.dialect.name
    seen = []
    for engine in (durable(runtime.engine), runtime.engine, durable(runtime.engine), runtime.engine):
        with engine.begin() as conn:
            seen.append(_level(conn.connection.driver_connection, dialect))
    if dialect == "sqlite":
        assert seen == ["FULL", "NORMAL", "FULL", "NORMAL"]
    else:
        assert seen == ["on"] * 4  # PostgreSQL's default: every commit waits for its WAL flush


def test_the_installed_consumer_appends_through_the_durable_engine(api, trader, runtime, checkpointer) -> None:
    """Whichever backend: the provenance consumer's transactions carry the durable option (what the SQLite begin
    hook turns into synchronous=FULL)."""
    options: list[str | None] = []

    def on_begin(conn) -> None:  # type: ignore[no-untyped-def]
        options.append(conn.get_execution_options().get("sqlite_synchronous"))

    event.listen(runtime.engine, "begin", on_begin)
    try:
        api.file(trader, submit=True)
        runtime.relay.drain()
    finally:
        event.remove(runtime.engine, "begin", on_begin)
    assert "FULL" in options  # the append (the relay may have delivered it before the drain)
    assert None in options  # the filing: the plain engine
    with unit_of_work(runtime.read_sessions) as session:
        assert storage.log_size(session.connection()) >= 3
