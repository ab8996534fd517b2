"""Queries of the declarations service (business rules live in service.py)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, bindparam, delete, exists, func, insert, select, tuple_, union_all
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from services.declarations.models import (
    Declaration,
    DeclarationContainer,
    DeclarationHsCode,
    DeclarationSearchKey,
    DeclarationSequence,
    DeclarationTransition,
    DeclarationVersion,
    TraderName,
)
from services.kernel import pagination
from services.kernel.database import table_of


@dataclass(slots=True)
class ListFilter:
    """What a list request asks for."""

    organisation_id: str | None = None
    status: str | None = None
    kind: str | None = None
    border_gate: str | None = None
    created_from: dt.datetime | None = None
    created_to: dt.datetime | None = None
    hs_prefix: str | None = None
    container: str | None = None
    number: str | None = None
    plate: str | None = None  # normalised by plate_key()
    trader: str | None = None  # part of the consignee's or consignor's name, any case
    unpaid: bool = False  # cleared or released with less paid than due


def plate_key(plate: str) -> str:
    """A truck plate compared without case, spaces, dots or dashes (24C-123.45 = 24c 12345)."""
    return "".join(ch for ch in plate.upper() if ch not in " .-")


TRADER_PARTIES = ("consignee", "consignor")
KEY_LENGTH = 200


def trader_key(name: str) -> str:
    """A trader's name as searched: lower case (Unicode-aware, unlike SQLite's lower()), spaces collapsed."""
    return " ".join(name.split()).lower()[:KEY_LENGTH]


def search_keys(body: dict[str, Any]) -> list[tuple[str, str]]:
    """(kind, value) of everything the search finds a body by: its truck plate, its parties' tax ids and names."""
    keys: set[tuple[str, str]] = set()
    plate = (body.get("transport") or {}).get("truck_plate")
    if isinstance(plate, str) and plate_key(plate):
        keys.add(("plate", plate_key(plate)[:KEY_LENGTH]))
    for party in TRADER_PARTIES:
        data = body.get(party) or {}
        if isinstance(data.get("name"), str) and trader_key(data["name"]):
            keys.add(("trader", trader_key(data["name"])))
        if isinstance(data.get("tax_id"), str) and data["tax_id"].strip():
            keys.add(("tax_id", data["tax_id"].strip().upper()[:KEY_LENGTH]))
    return sorted(keys)


def _keyed(kind: str, values: Any) -> Any:
    """The declarations with a search key of `kind` among `values` (a list or a subquery)."""
    return Declaration.id.in_(
        select(DeclarationSearchKey.declaration_id).where(
            DeclarationSearchKey.kind == kind, DeclarationSearchKey.value.in_(values)
        )
    )


def get(session: Session, declaration_id: str, *, organisation_id: str | None = None) -> Declaration | None:
    """A declaration by id, optionally only if it belongs to `organisation_id`."""
    stmt = select(Declaration).where(Declaration.id == declaration_id)
    if organisation_id is not None:
        stmt = stmt.where(Declaration.organisation_id == organisation_id)
    return session.scalar(stmt)


def encode_cursor(decl: Declaration) -> str:
    """An opaque cursor pointing after `decl` in newest-first order."""
    return pagination.encode_cursor(decl.created_at, decl.id)


def list_page(session: Session, filt: ListFilter, *, limit: int, cursor: str | None) -> list[Declaration]:
    """Up to `limit` + 1 declarations, newest first (the extra one tells whether another page exists)."""
    stmt: Select[tuple[Declaration]] = select(Declaration)
    if filt.organisation_id is not None:
        stmt = stmt.where(Declaration.organisation_id == filt.organisation_id)
    if filt.status:
        stmt = stmt.where(Declaration.status == filt.status)
    if filt.kind:
        stmt = stmt.where(Declaration.kind == filt.kind)
    if filt.border_gate:
        stmt = stmt.where(Declaration.border_gate == filt.border_gate)
    if filt.created_from:
        stmt = stmt.where(Declaration.created_at >= filt.created_from)
    if filt.created_to:
        stmt = stmt.where(Declaration.created_at < filt.created_to)
    if filt.hs_prefix:
        stmt = stmt.where(
            exists().where(
                DeclarationHsCode.declaration_id == Declaration.id,
                DeclarationHsCode.hs_code.startswith(filt.hs_prefix, autoescape=True),
            )
        )
    if filt.container:
        # The declarations listing it, from the index (an EXISTS per row would walk every declaration newest first).
        stmt = stmt.where(
            Declaration.id.in_(
                select(DeclarationContainer.declaration_id).where(DeclarationContainer.number == filt.container)
            )
        )
    if filt.number:
        stmt = stmt.where(Declaration.number == filt.number)
    if filt.plate:
        stmt = stmt.where(_keyed("plate", [filt.plate]))
    if filt.trader:
        # Part of a name: matched against the few distinct names, then the declarations found by those names (an
        # index look-up); a tax id, exactly.
        names = select(TraderName.name).where(TraderName.name.contains(trader_key(filt.trader), autoescape=True))
        key = DeclarationSearchKey
        by_name = select(key.declaration_id).where(key.kind == "trader", key.value.in_(names))
        by_tax_id = select(key.declaration_id).where(key.kind == "tax_id", key.value == filt.trader.strip().upper())
        stmt = stmt.where(Declaration.id.in_(union_all(by_name, by_tax_id)))
    if filt.unpaid:
        stmt = stmt.where(
            Declaration.status.in_(("cleared", "released", "exited")), Declaration.paid_vnd < Declaration.duties_due_vnd
        )
    if cursor:
        created, decl_id = pagination.decode_cursor(cursor)
        stmt = stmt.where(tuple_(Declaration.created_at, Declaration.id) < tuple_(created, decl_id))
    stmt = stmt.order_by(Declaration.created_at.desc(), Declaration.id.desc()).limit(limit + 1)
    return list(session.scalars(stmt))


def replace_lookups(session: Session, decl: Declaration, *, containers: list[str], hs_codes: list[str]) -> None:
    """Point the container, HS and search lookups at the current body."""
    session.execute(delete(DeclarationContainer).where(DeclarationContainer.declaration_id == decl.id))
    session.execute(delete(DeclarationHsCode).where(DeclarationHsCode.declaration_id == decl.id))
    session.execute(delete(DeclarationSearchKey).where(DeclarationSearchKey.declaration_id == decl.id))
    add_lookups(session, decl, containers=containers, hs_codes=hs_codes)


# Statuses in which an officer's request waits on the trader (documents, a physical inspection).
AWAITING_TRADER = ("awaiting_documents", "inspection")
_INSERT_CONTAINERS = insert(table_of(DeclarationContainer))
_INSERT_HS_CODES = insert(table_of(DeclarationHsCode))


def add_lookups(session: Session, decl: Declaration, *, containers: list[str], hs_codes: list[str]) -> None:
    """Index a new declaration's containers and HS codes."""
    conn = session.connection()
    if containers:
        conn.execute(_INSERT_CONTAINERS, [{"declaration_id": decl.id, "number": n} for n in sorted(set(containers))])
    if hs_codes:
        conn.execute(_INSERT_HS_CODES, [{"declaration_id": decl.id, "hs_code": h} for h in sorted(set(hs_codes))])
    add_search_keys(conn, {decl.id: decl.body})


_INSERT_SEARCH_KEYS = insert(table_of(DeclarationSearchKey))


def _insert_names(dialect: str) -> Any:
    insert_stmt = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert_stmt(table_of(TraderName)).on_conflict_do_nothing(index_elements=["name"])


_INSERT_NAMES = {dialect: _insert_names(dialect) for dialect in ("postgresql", "sqlite")}


def add_search_keys(conn: Any, bodies: dict[str, dict[str, Any]]) -> None:
    """Index the search keys of these declarations' bodies (by declaration id); new trader names join the list of
    names. `conn`: a Connection (the migration that backfills them uses this too)."""
    rows = [{"declaration_id": i, "kind": k, "value": v} for i, body in bodies.items() for k, v in search_keys(body)]
    if not rows:
        return
    names = sorted({r["value"] for r in rows if r["kind"] == "trader"})
    if names:
        conn.execute(_INSERT_NAMES[conn.dialect.name], [{"name": n} for n in names])
    conn.execute(_INSERT_SEARCH_KEYS, rows)


def _next_number_statement(dialect: str):
    insert_stmt = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return (
        insert_stmt(table_of(DeclarationSequence))
        .values(prefix=bindparam("prefix"), year=bindparam("year"), last_value=1)
        .on_conflict_do_update(
            index_elements=["prefix", "year"], set_={"last_value": DeclarationSequence.__table__.c.last_value + 1}
        )
        .returning(DeclarationSequence.__table__.c.last_value)
    )


# Built once per dialect: statement construction and its cache key cost more than the upsert itself.
_NEXT_NUMBER = {dialect: _next_number_statement(dialect) for dialect in ("postgresql", "sqlite")}


def next_number(session: Session, *, prefix: str, year: int) -> int:
    """Atomically take the next registration number for (prefix, year).

    On PostgreSQL the number is taken in a short transaction of its own, so the counter row is locked for
    microseconds rather than for the whole filing (every filing would otherwise queue behind it); numbers are
    unique and increasing, and a filing that rolls back leaves a gap, as VNACCS numbers do. SQLite already runs
    one writer at a time, so there it is taken inside the filing's transaction.
    """
    dialect = session.get_bind().dialect.name
    params = {"prefix": prefix, "year": year}
    if dialect == "postgresql":
        # One statement is its own transaction: autocommit saves the BEGIN and COMMIT round trips.
        engine = session.get_bind().engine
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            return int(conn.execute(_NEXT_NUMBER[dialect], params).scalar_one())
    return int(session.connection().execute(_NEXT_NUMBER["sqlite"], params).scalar_one())


def transitions(session: Session, declaration_id: str) -> list[DeclarationTransition]:
    """State changes, oldest first."""
    return list(
        session.scalars(
            select(DeclarationTransition)
            .where(DeclarationTransition.declaration_id == declaration_id)
            .order_by(DeclarationTransition.id)
        )
    )


def requests_awaited(session: Session, decls: list[Declaration]) -> dict[str, DeclarationTransition]:
    """For each declaration waiting on the trader after an officer's decision (documents requested, inspection
    ordered), the transition that asked: the latest one into its current status. One query for a whole page."""
    waiting = {d.id: d.status for d in decls if d.status in AWAITING_TRADER}
    if not waiting:
        return {}
    rows = session.scalars(
        select(DeclarationTransition)
        .where(
            DeclarationTransition.declaration_id.in_(list(waiting)),
            DeclarationTransition.to_status.in_(AWAITING_TRADER),
        )
        .order_by(DeclarationTransition.id)
    )
    # Oldest first: the last one written for a declaration's current status wins.
    return {t.declaration_id: t for t in rows if waiting[t.declaration_id] == t.to_status}


def versions(session: Session, declaration_id: str) -> list[DeclarationVersion]:
    """Body versions, oldest first."""
    return list(
        session.scalars(
            select(DeclarationVersion)
            .where(DeclarationVersion.declaration_id == declaration_id)
            .order_by(DeclarationVersion.version)
        )
    )


def stale(session: Session, *, statuses: tuple[str, ...], submitted_before: dt.datetime) -> list[Declaration]:
    """Declarations in `statuses` registered before the cut-off (candidates for expiry)."""
    return list(
        session.scalars(
            select(Declaration).where(Declaration.status.in_(statuses), Declaration.submitted_at < submitted_before)
        )
    )


def documents_just_provided(session: Session, declaration_ids: list[str]) -> dict[str, dt.datetime]:
    """For each of `declaration_ids` whose latest state change is the trader providing documents: when."""
    if not declaration_ids:
        return {}
    latest = (
        select(func.max(DeclarationTransition.id))
        .where(DeclarationTransition.declaration_id.in_(declaration_ids))
        .group_by(DeclarationTransition.declaration_id)
    )
    rows = session.execute(
        select(DeclarationTransition.declaration_id, DeclarationTransition.at).where(
            DeclarationTransition.id.in_(latest), DeclarationTransition.action == "provide_documents"
        )
    )
    return {row[0]: row[1] for row in rows}
