"""Database plumbing: one declarative Base, engines tuned for SQLite (WAL) and PostgreSQL (psycopg 3), UTC time."""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import orjson
from sqlalchemy import DateTime, Engine, MetaData, String, Table, TypeDecorator, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from services.kernel.dbtimeouts import DatabaseTimeouts, wait_bound, waiting_at_most

# Without configured timeouts (the CLI, migrations): how long a writer waits for SQLite's write lock.
WRITER_WAIT_SECONDS = 30.0

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """The one declarative base; every service's models share its naming convention."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> dt.datetime:
    """Timezone-aware now in UTC."""
    return dt.datetime.now(dt.UTC)


def table_of(model: type[Any]) -> Table:
    """A mapped class's table, typed as a `Table` (SQLAlchemy types `Model.__table__` as a `FromClause`, which
    insert/update/delete do not accept)."""
    return cast(Table, model.__table__)


def new_id() -> str:
    """A new random identifier (UUID4, text form)."""
    return str(uuid.uuid4())


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timestamp stored in UTC and always read back timezone-aware (SQLite has no time zones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


def IdColumnType() -> String:
    """Column type of identifiers (UUID text)."""
    return String(36)


def json_dumps(value: Any) -> str:
    """JSON columns' serializer (orjson: a declaration body is written several times per filing)."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def make_engine(url: str, *, pool_size: int = 20, timeouts: DatabaseTimeouts | None = None) -> Engine:
    """An engine for `url`; SQLite gets WAL, a busy timeout and explicit transaction control.

    `timeouts` bounds every wait for the database (a served process: see services/kernel/dbtimeouts.py); without
    them (the CLI, migrations) only SQLite's lock waits are bounded, by WRITER_WAIT_SECONDS.
    """
    parsed = make_url(url)
    json_options: dict[str, Any] = {"json_serializer": json_dumps, "json_deserializer": orjson.loads}
    pool_timeout = timeouts.pool_seconds if timeouts else 30.0
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        background = timeouts.background_seconds if timeouts else WRITER_WAIT_SECONDS
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": background},
            pool_size=pool_size,
            max_overflow=20,
            pool_timeout=pool_timeout,
            **json_options,
        )
        _tune_sqlite(engine, background)
        return engine
    engine = create_engine(url, pool_size=pool_size, max_overflow=20, pool_timeout=pool_timeout, **json_options)
    if timeouts is not None and engine.dialect.driver == "psycopg":
        _bound_connections(engine, timeouts)
    _ping_idle_connections(engine)
    return engine


def _bound_connections(engine: Engine, timeouts: DatabaseTimeouts) -> None:
    """Open PostgreSQL connections whose waits are bounded, with connect, statement and lock timeouts."""
    from services.kernel import pgconnection

    @event.listens_for(engine, "do_connect")
    def _connect(_dialect: Any, _record: Any, cargs: Any, cparams: dict[str, Any]) -> Any:
        return pgconnection.connect(timeouts, cargs, cparams)


PING_AFTER_IDLE_SECONDS = 10.0
# A ping is one trivial round trip: a connection that takes longer is replaced rather than waited for.
PING_WAIT_SECONDS = 1.0


def _ping_idle_connections(engine: Engine) -> None:
    """Check a pooled connection before use only if it sat idle for a while (a restarted server has closed
    it): SQLAlchemy's pool_pre_ping pings on every checkout, a round trip and a good share of a short
    request's CPU. A dead connection is replaced transparently, as with pool_pre_ping."""

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["checked_in_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        checked_in_at = record.info.get("checked_in_at")
        if checked_in_at is None or time.monotonic() - checked_in_at < PING_AFTER_IDLE_SECONDS:
            return
        try:
            with waiting_at_most(PING_WAIT_SECONDS):
                alive = engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise DisconnectionError("pooled connection is dead") from exc
        if not alive:
            raise DisconnectionError("pooled connection is dead")


def _tune_sqlite(engine: Engine, background_seconds: float) -> None:
    """WAL so readers never block the writer; BEGIN IMMEDIATE for writes so two writers queue instead of failing.

    Waiting for the write lock is bounded: within a request by its bound (then "database is locked": 503), in
    background work by `background_seconds`."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, record: Any) -> None:
        # Let SQLAlchemy, not pysqlite, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        busy_ms = int(background_seconds * 1000)
        cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
        record.info["busy_ms"] = busy_ms
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    # SQLite has one writer at a time. Writers of this process queue on a lock instead of in SQLite's
    # busy handler, which sleeps in growing steps and turns a short queue into seconds of tail latency.
    # (Other processes still meet the busy timeout.) A plain Lock: FastAPI may end a request's
    # transaction on another thread than the one that began it.
    writer = threading.Lock()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # A deferred transaction that reads then writes can fail with SQLITE_BUSY_SNAPSHOT
        # under concurrency; taking the write lock up front makes writers wait their turn.
        mode = conn.get_execution_options().get("sqlite_begin", "IMMEDIATE")
        bound = wait_bound(background_seconds) or background_seconds
        if mode == "IMMEDIATE":
            # Bounded like SQLite's own busy timeout: a writer that never ends must not hang the process.
            started = time.monotonic()
            if not writer.acquire(timeout=bound):
                raise sqlite3.OperationalError("database is locked (waited for the writer queue)")
            conn.info["sqlite_writer"] = True
            # The queue and SQLite's busy wait (another process holding the lock) share one bound.
            bound = max(bound - (time.monotonic() - started), 0.0)
        try:
            _set_busy_timeout(conn, bound)
            _set_synchronous(conn, conn.get_execution_options().get("sqlite_synchronous", "NORMAL"))
            conn.exec_driver_sql(f"BEGIN {mode}")
        except BaseException:
            _release(conn)
            raise

    def _release(conn: Any) -> None:
        if conn.info.pop("sqlite_writer", False):
            writer.release()

    event.listen(engine, "commit", _release)
    event.listen(engine, "rollback", _release)


def _set_busy_timeout(conn: Any, seconds: float) -> None:
    """Make SQLite's busy wait `seconds` (to 50 ms) on this connection, if it is not already."""
    busy_ms = round(seconds * 20) * 50
    if conn.info.get("busy_ms") != busy_ms:
        conn.connection.driver_connection.execute(f"PRAGMA busy_timeout={busy_ms}")
        conn.info["busy_ms"] = busy_ms


def _set_synchronous(conn: Any, level: str) -> None:
    """Make SQLite's synchronous level `level` on this connection, if it is not already (SQLite refuses to change
    it inside a transaction: this runs before BEGIN)."""
    if level not in ("NORMAL", "FULL"):
        raise ValueError(f"sqlite_synchronous must be NORMAL or FULL, not {level!r}")
    if conn.info.get("synchronous", "NORMAL") != level:
        conn.connection.driver_connection.execute(f"PRAGMA synchronous={level}")
        conn.info["synchronous"] = level


def durable(engine: Engine) -> Engine:
    """The same engine (and pool) for transactions whose commit must survive a power cut, not only a crash.

    On SQLite in WAL mode, `synchronous=NORMAL` (every other transaction's level) syncs the log only at WAL
    checkpoints: a power cut may undo the last commits. Transactions of this engine run at `synchronous=FULL`,
    which syncs the log at each commit (the pooled connection returns to NORMAL at its next other transaction).
    PostgreSQL commits durably anyway (`synchronous_commit=on`)."""
    return engine.execution_options(sqlite_synchronous="FULL")


def reader(engine: Engine) -> Engine:
    """The same engine (and pool) for read-only work: on SQLite its transactions don't take the write lock."""
    return engine.execution_options(sqlite_begin="DEFERRED")


def read_first(session: Session) -> bool:
    """Start `session`'s transaction as a read (on SQLite, without the writer lock). Returns True if the caller
    must end it with `session.commit()` before writing, so that only its writes hold the lock; False where
    reads and writes share one transaction at no cost (PostgreSQL)."""
    if session.get_bind().dialect.name != "sqlite" or session.in_transaction():
        return False  # (a transaction already begun keeps its mode: the reads simply join it)
    session.connection(execution_options={"sqlite_begin": "DEFERRED"})
    return True


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded objects usable after commit."""
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def unit_of_work(factory: sessionmaker[Session]) -> Iterator[Session]:
    """Commit on success, roll back on error: the only place outside requests that commits."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
