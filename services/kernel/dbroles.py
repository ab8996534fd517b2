"""Least privilege on PostgreSQL: the role the services connect as, granted by the role that owns the schema.

Migrations run as the owner (SMARTGATE_MIGRATE_DATABASE_URL); the services connect as a login role that owns
nothing, is no superuser and may only read and append to the append-only tables (issue 13). Without ownership it
cannot `ALTER TABLE ... DISABLE TRIGGER` or drop a trigger, and `SET session_replication_role = replica` (which
skips every trigger) needs a superuser, so the ledger's triggers hold against the services' own credentials.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
# Tables of this prefix are append-only whatever the caller names (a ledger table added by a later migration).
APPEND_ONLY_PREFIX = "ledger_"
# Read by `serve` to check the schema is migrated; written only by migrations.
READ_ONLY_TABLES = ("alembic_version",)


class RoleError(ValueError):
    """The service role cannot be granted as asked (a bad name, or a role with too much power already)."""


@dataclass(frozen=True, slots=True)
class Granted:
    """What `grant_service_role` did: the role, whether it created it, and the tables of each kind."""

    role: str
    created: bool
    read_write: tuple[str, ...]
    append_only: tuple[str, ...]
    read_only: tuple[str, ...]


def _check_name(role: str) -> None:
    if not ROLE_NAME.fullmatch(role):
        raise RoleError(f"role name {role!r} must be lower-case letters, digits and '_' (at most 63)")


def _ensure_role(conn: Connection, role: str) -> bool:
    """Create the login role if it does not exist; return whether this call created it."""
    exists = conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).first()
    if exists:
        return False
    try:
        with conn.begin_nested():
            conn.exec_driver_sql(
                f"CREATE ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS NOINHERIT"
            )
    except DBAPIError:
        # Roles are cluster-wide: another process may have created it between the check and here.
        if conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).first() is None:
            raise
        return False
    return True


def _refuse_powerful(conn: Connection, role: str) -> None:
    """Refuse a role that could switch the triggers off however it is granted."""
    row = conn.execute(
        text(
            "SELECT rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls FROM pg_roles WHERE rolname = :r"
        ),
        {"r": role},
    ).one()
    powers = [
        name
        for name, held in zip(("SUPERUSER", "CREATEROLE", "CREATEDB", "REPLICATION", "BYPASSRLS"), row, strict=True)
        if held
    ]
    if powers:
        raise RoleError(f"role {role} has {', '.join(powers)}: the services' role must have none of these")
    if role == conn.execute(text("SELECT current_user")).scalar():
        raise RoleError(f"role {role} is the owner running this command: name a separate role for the services")
    # Owning a table, or being a member of a role that owns one, would let it ALTER the table (and its triggers).
    owned = conn.execute(
        text(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = current_schema() AND pg_has_role(:r, c.relowner, 'MEMBER') ORDER BY 1 LIMIT 3"
        ),
        {"r": role},
    ).scalars()
    names = list(owned)
    if names:
        raise RoleError(f"role {role} owns (or is a member of the owner of) {', '.join(names)}: it must own nothing")


def grant_service_role(
    engine: Engine, role: str, *, append_only: Iterable[str] = (), password: str | None = None
) -> Granted:
    """Create (if needed) and grant the services' role on the database of `engine`, connected as the owner.

    Every table of the current schema gets SELECT, INSERT, UPDATE, DELETE, except the append-only ones (those named
    and every `ledger_*` table: SELECT, INSERT) and the migration bookkeeping (SELECT); sequences get USAGE,
    SELECT; tables the owner creates later get the ordinary grants by default (run this again after each migration,
    as `smartgate migrate --grant ROLE` does, to narrow a new append-only table). Idempotent."""
    _check_name(role)
    if engine.dialect.name != "postgresql":
        raise RoleError("database roles are a PostgreSQL feature (on SQLite, whoever holds the file holds it all)")
    wanted_append_only = set(append_only)
    with engine.begin() as conn:
        created = _ensure_role(conn, role)
        _refuse_powerful(conn, role)
        if password:
            statement = conn.execute(
                text("SELECT format('ALTER ROLE %I PASSWORD %L', CAST(:r AS text), CAST(:p AS text))"),
                {"r": role, "p": password},
            ).scalar_one()
            conn.exec_driver_sql(statement)
        database = conn.execute(text("SELECT current_database()")).scalar_one()
        schema = conn.execute(text("SELECT current_schema()")).scalar_one()
        tables = list(
            conn.execute(
                text("SELECT tablename FROM pg_tables WHERE schemaname = :s ORDER BY tablename"), {"s": schema}
            ).scalars()
        )
        q = conn.dialect.identifier_preparer.quote
        conn.exec_driver_sql(f"GRANT CONNECT, TEMPORARY ON DATABASE {q(database)} TO {role}")
        conn.exec_driver_sql(f"GRANT USAGE ON SCHEMA {q(schema)} TO {role}")
        # Start from nothing, so that a run after a change of kind (or a hand-made GRANT) leaves exactly this.
        conn.exec_driver_sql(f"REVOKE ALL ON ALL TABLES IN SCHEMA {q(schema)} FROM {role}")
        kinds: dict[str, list[str]] = {"read_write": [], "append_only": [], "read_only": []}
        for table in tables:
            if table in READ_ONLY_TABLES:
                kind, privileges = "read_only", "SELECT"
            elif table in wanted_append_only or table.startswith(APPEND_ONLY_PREFIX):
                kind, privileges = "append_only", "SELECT, INSERT"
            else:
                kind, privileges = "read_write", "SELECT, INSERT, UPDATE, DELETE"
            kinds[kind].append(table)
            conn.exec_driver_sql(f"GRANT {privileges} ON TABLE {q(schema)}.{q(table)} TO {role}")
        conn.exec_driver_sql(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {q(schema)} TO {role}")
        conn.exec_driver_sql(
            f"ALTER DEFAULT PRIVILEGES IN SCHEMA {q(schema)} GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {role}"
        )
        conn.exec_driver_sql(
            f"ALTER DEFAULT PRIVILEGES IN SCHEMA {q(schema)} GRANT USAGE, SELECT ON SEQUENCES TO {role}"
        )
    return Granted(
        role,
        created,
        tuple(kinds["read_write"]),
        tuple(kinds["append_only"]),
        tuple(kinds["read_only"]),
    )
