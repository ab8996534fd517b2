"""SQL storage adapter (SQLite and PostgreSQL): append-only tables, their trigger DDL, and the queries on them."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Engine,
    ForeignKeyConstraint,
    Index,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    UniqueConstraint,
    create_engine,
    event,
    func,
    insert,
    select,
    tuple_,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.schema import CreateIndex, CreateTable

from ledger.merkle import NodeId

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

entries = Table(
    "ledger_entries",
    metadata,
    Column("idx", BigInteger, nullable=False, autoincrement=False),
    Column("event_id", String(200), nullable=False),
    Column("subject", String(200), nullable=False),
    Column("leaf_hash", LargeBinary(32), nullable=False),
    Column("leaf", LargeBinary, nullable=False),
    Column("payload", LargeBinary, nullable=False),
    PrimaryKeyConstraint("idx"),
    UniqueConstraint("event_id"),
    Index("ix_ledger_entries_subject_idx", "subject", "idx"),
    Index("ix_ledger_entries_leaf_hash", "leaf_hash"),  # inclusion proofs by leaf hash
)

# Every perfect subtree of the tree, leaves (level 0) included: a proof or a root reads O(log n) rows of it.
nodes = Table(
    "ledger_nodes",
    metadata,
    Column("level", SmallInteger, nullable=False, autoincrement=False),
    Column("idx", BigInteger, nullable=False, autoincrement=False),
    Column("hash", LargeBinary(32), nullable=False),
    PrimaryKeyConstraint("level", "idx"),
)

checkpoints = Table(
    "ledger_checkpoints",
    metadata,
    Column("size", BigInteger, nullable=False, autoincrement=False),
    Column("note", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("size"),
)

# Anchors are rows of their own (not columns of the checkpoint) so that both tables can stay append-only.
anchors = Table(
    "ledger_anchors",
    metadata,
    Column("checkpoint_size", BigInteger, nullable=False, autoincrement=False),
    Column("chain_id", BigInteger, nullable=False, autoincrement=False),
    Column("contract", String(42), nullable=False),
    Column("tx_hash", String(66), nullable=False),
    Column("block_number", BigInteger, nullable=False),
    Column("chain_label", String(200), nullable=False),
    Column("checkpoint_sha256", LargeBinary(32), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("checkpoint_size", "chain_id", "contract"),
    ForeignKeyConstraint(["checkpoint_size"], ["ledger_checkpoints.size"]),
)

# The log's signing keys over time: each key signs the checkpoints of size >= its `valid_from_size` until the next
# key's (`ledger.keyring`). A key signs one contiguous range: it is never recorded twice.
keys = Table(
    "ledger_keys",
    metadata,
    Column("valid_from_size", BigInteger, nullable=False, autoincrement=False),
    Column("vkey", String(400), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("valid_from_size"),
    UniqueConstraint("vkey"),
)

TABLES = (entries, nodes, checkpoints, anchors, keys)
# pg_advisory_xact_lock key that serialises appenders across processes ("ledger" in ASCII).
APPEND_LOCK_KEY = 0x6C6564676572


def _dialect(name: str) -> Dialect:
    if name == "postgresql":
        return postgresql.dialect()
    if name == "sqlite":
        return sqlite.dialect()
    raise ValueError(f"unsupported dialect {name!r} (sqlite or postgresql)")


def trigger_statements(dialect_name: str, tables: Sequence[Table] = TABLES) -> list[str]:
    """Return the DDL that makes the ledger tables reject UPDATE and DELETE (and TRUNCATE on PostgreSQL)."""
    names = [t.name for t in tables]
    if dialect_name == "postgresql":
        stmts = [
            "CREATE OR REPLACE FUNCTION ledger_reject_change() RETURNS trigger LANGUAGE plpgsql AS $$\n"
            "BEGIN\n"
            # No '%' placeholders: the DDL must survive drivers and migration tools that treat '%' as a parameter.
            "  RAISE EXCEPTION USING ERRCODE = 'integrity_constraint_violation',\n"
            "    MESSAGE = 'ledger table ' || TG_TABLE_NAME || ' is append-only: ' || TG_OP || ' rejected';\n"
            "END\n"
            "$$"
        ]
        stmts += [
            f"CREATE TRIGGER {name}_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON {name} "
            "FOR EACH STATEMENT EXECUTE FUNCTION ledger_reject_change()"
            for name in names
        ]
        return stmts
    if dialect_name == "sqlite":
        stmts = [
            f"CREATE TRIGGER IF NOT EXISTS {name}_no_{op.lower()} BEFORE {op} ON {name} "
            f"BEGIN SELECT RAISE(ABORT, 'ledger table {name} is append-only: {op} rejected'); END"
            for name in names
            for op in ("UPDATE", "DELETE")
        ]
        return stmts + [_sqlite_no_replace(table) for table in tables]
    raise ValueError(f"unsupported dialect {dialect_name!r} (sqlite or postgresql)")


def _unique_keys(table: Table) -> list[list[str]]:
    """The column lists of a table's primary key and unique constraints."""
    keys = [[c.name for c in table.primary_key.columns]]
    keys += [[c.name for c in con.columns] for con in table.constraints if isinstance(con, UniqueConstraint)]
    return keys


def _sqlite_no_replace(table: Table) -> str:
    """A trigger that refuses an INSERT whose row would collide with a stored one, whatever its conflict clause.

    SQLite's REPLACE resolution (`INSERT OR REPLACE`, `REPLACE INTO`) deletes the colliding row and fires the DELETE
    triggers only under `PRAGMA recursive_triggers=ON`, which is per connection (issue 13: the platform's engine did
    not set it, and an operator's sqlite3 shell does not). A BEFORE INSERT trigger runs before any conflict
    resolution, so it holds on every connection; it also turns a plain duplicate, `INSERT OR IGNORE` and
    `ON CONFLICT DO NOTHING` into an error (the ledger writer never sends those: it checks event ids first)."""
    probes = " OR ".join("(" + " AND ".join(f"{col} = NEW.{col}" for col in key) + ")" for key in _unique_keys(table))
    return (
        f"CREATE TRIGGER IF NOT EXISTS {table.name}_no_replace BEFORE INSERT ON {table.name} "
        f"WHEN EXISTS (SELECT 1 FROM {table.name} WHERE {probes}) "
        f"BEGIN SELECT RAISE(ABORT, 'ledger table {table.name} is append-only: INSERT over a stored row rejected'); END"
    )


def drop_trigger_statements(dialect_name: str) -> list[str]:
    """Return the DDL that removes the append-only triggers (for tamper tests and deliberate migrations only)."""
    names = [t.name for t in TABLES]
    if dialect_name == "postgresql":
        return [f"DROP TRIGGER IF EXISTS {name}_append_only ON {name}" for name in names]
    return [f"DROP TRIGGER IF EXISTS {name}_no_{op}" for name in names for op in ("update", "delete", "replace")]


def ledger_schema_statements(dialect_name: str, tables: Sequence[Table] = TABLES) -> list[str]:
    """Return every DDL statement of the ledger schema (tables, indexes, triggers) for a migration to execute; a
    later migration passes the `tables` it adds."""
    dialect = _dialect(dialect_name)
    stmts: list[str] = []
    for table in tables:
        stmts.append(str(CreateTable(table).compile(dialect=dialect)).strip())
        stmts += [str(CreateIndex(ix).compile(dialect=dialect)).strip() for ix in sorted(table.indexes, key=str)]
    return stmts + trigger_statements(dialect_name, tables)


def install_schema(conn: Connection) -> None:
    """Execute the ledger schema DDL on a connection (what the provenance migration does)."""
    for stmt in ledger_schema_statements(conn.dialect.name):
        conn.exec_driver_sql(stmt)


def sqlite_engine(path: str, **kwargs: Any) -> Engine:
    """Create a SQLite engine for the ledger: WAL, synchronous=FULL (durable commits), foreign keys on."""
    engine = create_engine(f"sqlite+pysqlite:///{path}", **kwargs)

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        # REPLACE conflict resolution deletes rows without firing DELETE triggers unless this is on.
        cur.execute("PRAGMA recursive_triggers=ON")
        cur.close()

    return engine


@dataclass(frozen=True, slots=True)
class EntryRow:
    """One stored entry, as read back."""

    index: int
    event_id: str
    subject: str
    leaf_hash: bytes
    leaf: bytes
    payload: bytes


def _entry(row: Any) -> EntryRow:
    return EntryRow(row.idx, row.event_id, row.subject, bytes(row.leaf_hash), bytes(row.leaf), bytes(row.payload))


def lock_for_append(conn: Connection) -> None:
    """Serialise appenders on PostgreSQL (SQLite serialises writers itself; the primary keys stop forks anyway)."""
    if conn.dialect.name == "postgresql":
        conn.execute(select(func.pg_advisory_xact_lock(APPEND_LOCK_KEY)))


def log_size(conn: Connection) -> int:
    """Return the number of entries (one past the highest index)."""
    top = conn.execute(select(func.max(entries.c.idx))).scalar()
    return 0 if top is None else int(top) + 1


@functools.lru_cache(maxsize=256)
def _nodes_query(count: int, placeholder: str) -> str:
    probe = f"(level = {placeholder} AND idx = {placeholder})"
    return f"SELECT level, idx, hash FROM {nodes.name} WHERE " + " OR ".join([probe] * count)


_PG_NODES_QUERY = (
    f"SELECT n.level, n.idx, n.hash FROM unnest(%s::smallint[], %s::bigint[]) AS k(level, idx) "
    f"JOIN {nodes.name} n ON n.level = k.level AND n.idx = k.idx"
)


def fetch_nodes(conn: Connection, ids: Sequence[NodeId]) -> dict[NodeId, bytes]:
    """Return the stored hashes of the given perfect subtrees, in one query of primary-key probes."""
    if not ids:
        return {}
    if conn.dialect.name == "postgresql":
        # Two array parameters joined to the primary key: a nested loop of index probes however many nodes are
        # asked for, and one statement text for every proof, so the server plans it once. Several hundred OR-ed
        # probes made the planner pick a bitmap scan (41.6 ms for ten proofs at 1M entries).
        unique = list(dict.fromkeys(ids))
        rows = conn.exec_driver_sql(_PG_NODES_QUERY, ([lv for lv, _ in unique], [ix for _, ix in unique]))
        return {(int(level), int(idx)): bytes(h) for level, idx, h in rows}
    # Plain driver SQL: building a SQLAlchemy expression per proof cost ~25x the database work itself. OR-ed
    # equality probes are planned as index lookups by both engines (a row-value IN list makes SQLite scan).
    placeholder = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    params = tuple(v for node in ids for v in node)
    rows = conn.exec_driver_sql(_nodes_query(len(ids), placeholder), params)
    return {(int(level), int(idx)): bytes(h) for level, idx, h in rows}


def existing_event_ids(conn: Connection, event_ids: Sequence[str]) -> dict[str, tuple[int, bytes]]:
    """Return (index, leaf hash) of each already-logged event id among `event_ids`."""
    if not event_ids:
        return {}
    rows = conn.execute(
        select(entries.c.event_id, entries.c.idx, entries.c.leaf_hash).where(entries.c.event_id.in_(event_ids))
    )
    return {r.event_id: (int(r.idx), bytes(r.leaf_hash)) for r in rows}


def subject_heads(conn: Connection, subjects: Iterable[str]) -> dict[str, bytes]:
    """Return the leaf hash of the latest entry of each subject that has one."""
    subjects = list(set(subjects))
    if not subjects:
        return {}
    latest = (
        select(func.max(entries.c.idx)).where(entries.c.subject.in_(subjects)).group_by(entries.c.subject)
    ).scalar_subquery()
    rows = conn.execute(select(entries.c.subject, entries.c.leaf_hash).where(entries.c.idx.in_(latest)))
    return {r.subject: bytes(r.leaf_hash) for r in rows}


ENTRY_COLUMNS = ("idx", "event_id", "subject", "leaf_hash", "leaf", "payload")


def _bulk_insert(conn: Connection, table: Table, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Insert many rows inside the caller's transaction: COPY on PostgreSQL, executemany elsewhere."""
    if not rows:
        return
    if conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg":
        # COPY is several times faster than multi-row INSERT and still fires the constraints (not the triggers'
        # business: they only guard UPDATE/DELETE/TRUNCATE).
        raw: Any = conn.connection.dbapi_connection
        statement = f"COPY {table.name} ({', '.join(columns)}) FROM STDIN"
        dbapi_error = conn.dialect.loaded_dbapi.Error
        try:
            with raw.cursor() as cur, cur.copy(statement) as copy:
                for row in rows:
                    copy.write_row(row)
        except dbapi_error as exc:
            # Surface driver errors as SQLAlchemy's (IntegrityError for a duplicate index), like any execute().
            raise sa_exc.DBAPIError.instance(statement, None, exc, dbapi_error) from exc
        return
    conn.execute(insert(table), [dict(zip(columns, row, strict=True)) for row in rows])


def insert_entries(conn: Connection, rows: Sequence[Sequence[Any]]) -> None:
    """Insert entry rows (tuples in ENTRY_COLUMNS order) in one batch."""
    _bulk_insert(conn, entries, ENTRY_COLUMNS, rows)


def insert_nodes(conn: Connection, rows: Sequence[tuple[int, int, bytes]]) -> None:
    """Insert (level, index, hash) node rows in one batch."""
    _bulk_insert(conn, nodes, ("level", "idx", "hash"), rows)


def get_entry(conn: Connection, index: int) -> EntryRow | None:
    """Return the entry at `index`, if any."""
    row = conn.execute(select(entries).where(entries.c.idx == index)).first()
    return _entry(row) if row is not None else None


def get_entry_by_event_id(conn: Connection, event_id: str) -> EntryRow | None:
    """Return the entry that logged `event_id`, if any."""
    row = conn.execute(select(entries).where(entries.c.event_id == event_id)).first()
    return _entry(row) if row is not None else None


def subject_entries(conn: Connection, subject: str, *, below: int | None = None) -> list[EntryRow]:
    """Return a subject's entries in log order, optionally only those with index < `below`."""
    query = select(entries).where(entries.c.subject == subject)
    if below is not None:
        query = query.where(entries.c.idx < below)
    return [_entry(r) for r in conn.execute(query.order_by(entries.c.idx))]


def subjects_entries(conn: Connection, subjects: list[str], *, below: int) -> dict[str, list[EntryRow]]:
    """Several subjects' entries with index < `below`, each subject's in log order, in one query."""
    found: dict[str, list[EntryRow]] = {}
    if not subjects:
        return found
    query = select(entries).where(entries.c.subject.in_(subjects), entries.c.idx < below).order_by(entries.c.idx)
    for row in conn.execute(query):
        entry = _entry(row)
        found.setdefault(entry.subject, []).append(entry)
    return found


def iter_entries(conn: Connection, *, chunk: int = 10_000) -> Iterator[EntryRow]:
    """Yield every entry in index order, reading in keyset-paginated chunks."""
    after = -1
    while True:
        rows = conn.execute(select(entries).where(entries.c.idx > after).order_by(entries.c.idx).limit(chunk)).all()
        if not rows:
            return
        for row in rows:
            yield _entry(row)
        after = int(rows[-1].idx)


def iter_nodes(conn: Connection, *, chunk: int = 20_000) -> Iterator[tuple[int, int, bytes]]:
    """Yield every stored (level, index, hash) in key order."""
    after = (-1, -1)
    while True:
        rows = conn.execute(
            select(nodes.c.level, nodes.c.idx, nodes.c.hash)
            .where(tuple_(nodes.c.level, nodes.c.idx) > tuple_(*after))
            .order_by(nodes.c.level, nodes.c.idx)
            .limit(chunk)
        ).all()
        if not rows:
            return
        for row in rows:
            yield int(row.level), int(row.idx), bytes(row.hash)
        after = (int(rows[-1].level), int(rows[-1].idx))


def insert_checkpoint(conn: Connection, size: int, note: bytes, created_at: Any) -> None:
    """Store a signed checkpoint note."""
    conn.execute(insert(checkpoints).values(size=size, note=note, created_at=created_at))


def get_checkpoint(conn: Connection, size: int | None = None) -> tuple[int, bytes] | None:
    """Return (size, note) of the checkpoint at `size`, or of the latest one."""
    query = select(checkpoints.c.size, checkpoints.c.note)
    query = (
        query.where(checkpoints.c.size == size)
        if size is not None
        else query.order_by(checkpoints.c.size.desc()).limit(1)
    )
    row = conn.execute(query).first()
    return (int(row.size), bytes(row.note)) if row is not None else None


def all_checkpoints(conn: Connection) -> list[tuple[int, bytes]]:
    """Return every stored (size, note), by size (for audits of the whole log: a request reads `bundle_checkpoint`
    or `get_checkpoint` instead)."""
    return [(int(r.size), bytes(r.note)) for r in conn.execute(select(checkpoints).order_by(checkpoints.c.size))]


def bundle_checkpoint(conn: Connection, *, first: int, last: int, min_size: int = 0) -> tuple[int, bool] | None:
    """The checkpoint a bundle of the entries `first`..`last` (log indices) proves against, and whether it covers
    them all: the latest anchored checkpoint covering `last`; else the latest checkpoint if it covers `last`, or
    at least `first` (partial). None when no checkpoint covers `first`. Only checkpoints of size >= `min_size`
    count (those signed by the current key, after a key rotation).

    Two index lookups (descending on the anchors' and the checkpoints' primary keys), whatever the number of
    checkpoints: reading every checkpoint row cost 3.2 s per bundle at 50,000 checkpoints (issue 13)."""
    anchored = conn.execute(
        select(anchors.c.checkpoint_size)
        .join(checkpoints, checkpoints.c.size == anchors.c.checkpoint_size)
        .where(anchors.c.checkpoint_size > max(last, min_size - 1))
        .order_by(anchors.c.checkpoint_size.desc())
        .limit(1)
    ).scalar()
    if anchored is not None:
        return int(anchored), True
    latest = conn.execute(select(checkpoints.c.size).order_by(checkpoints.c.size.desc()).limit(1)).scalar()
    if latest is None or int(latest) <= first or int(latest) < min_size:
        return None
    return int(latest), int(latest) > last


def insert_anchor(conn: Connection, row: Mapping[str, Any]) -> None:
    """Store an anchor receipt row."""
    conn.execute(insert(anchors).values(**row))


def anchors_for(conn: Connection, size: int | None = None) -> list[dict[str, Any]]:
    """Return the anchor rows of one checkpoint (or of all), oldest first."""
    query = select(anchors).order_by(anchors.c.checkpoint_size, anchors.c.created_at)
    if size is not None:
        query = query.where(anchors.c.checkpoint_size == size)
    return [dict(r._mapping) for r in conn.execute(query)]


def insert_key(conn: Connection, valid_from_size: int, vkey: str, created_at: Any) -> None:
    """Record a signing key of the log, valid for checkpoints of size >= `valid_from_size` (until the next key's)."""
    conn.execute(insert(keys).values(valid_from_size=valid_from_size, vkey=vkey, created_at=created_at))


def key_rows(conn: Connection) -> list[tuple[int, str, Any]]:
    """Return every recorded (valid_from_size, vkey, created_at), oldest first."""
    query = select(keys.c.valid_from_size, keys.c.vkey, keys.c.created_at).order_by(keys.c.valid_from_size)
    return [(int(r.valid_from_size), str(r.vkey), r.created_at) for r in conn.execute(query)]
