"""Provenance rules: turn bus events into ledger entries, and read entries, proofs and bundles for the API."""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, sessionmaker

from ledger import bundle as ledger_bundle
from ledger import reader, storage, writer
from ledger.checkpoint import Signer, Verifier
from ledger.keyring import KeyHistory
from ledger.keys import load_signer, refuse_dev_key, resolve_signer
from services.kernel.database import reader as read_only
from services.kernel.database import table_of, utcnow
from services.kernel.errors import NotFound, Unprocessable
from services.kernel.outbox import Event, canonical_json
from services.provenance.models import SubjectOwner, WitnessCosignature
from services.provenance.settings import ProvenanceSettings

logger = logging.getLogger("smartgate.provenance")

# Entries per page of GET /entries: a page is a bounded read, whatever range is asked for.
MAX_PAGE = 1000


def b64(data: bytes) -> str:
    """Standard base64, as in checkpoints and bundles."""
    return base64.b64encode(data).decode()


class Provenance:
    """The provenance service of one process: its settings, the log's signing key, and where the log lives."""

    def __init__(self, settings: ProvenanceSettings, *, engine: Engine, sessions: sessionmaker[Session]) -> None:
        """Resolve the signing key (a development key only in development) and bind storage."""
        self.settings = settings
        self.signer: Signer = resolve_signer(
            settings.ledger_signing_key.get_secret_value(),
            environment=settings.key_environment,
            dev_key_dir=settings.var_dir,
        )
        previous = settings.ledger_previous_signing_key.get_secret_value()
        self.previous_signer: Signer | None = None
        if previous:
            self.previous_signer = load_signer(previous)
            refuse_dev_key(self.previous_signer, settings.key_environment)
            if self.previous_signer.verifier == self.signer.verifier:
                self.previous_signer = None  # the same key twice: nothing to cosign with
        self.origin = settings.ledger_origin
        self._signs_from: int | None = None
        self.engine = engine
        self.read_engine = read_only(engine)
        self.sessions = sessions

    @property
    def verifier(self) -> Verifier:
        """The log's public key."""
        return self.signer.verifier

    def key_history(self, conn: Connection) -> KeyHistory:
        """The log's recorded signing keys (empty before the first checkpoint pass of a new database)."""
        return KeyHistory.from_rows(storage.key_rows(conn))

    def published_keys(self, conn: Connection) -> KeyHistory:
        """The recorded keys, plus this process's key while it is not recorded yet (its first checkpoint pass records
        it, valid from the checkpoint after the latest; listed with no `recorded_at`)."""
        history = self.key_history(conn)
        if history.find(self.verifier) is not None:
            return history
        latest = storage.get_checkpoint(conn)
        start = latest[0] + 1 if latest is not None else 0
        if history.current is not None:
            start = max(start, history.current.valid_from_size + 1)
        known = [(k.valid_from_size, k.verifier, k.recorded_at) for k in history.keys]
        return KeyHistory.from_keys([*known, (start, self.verifier, None)])

    def signs_from(self, conn: Connection) -> int:
        """The smallest checkpoint size this process's key signs (0 until it is recorded). Cached once recorded: a
        recorded key's row never changes."""
        if self._signs_from is None:
            own = self.key_history(conn).find(self.verifier)
            if own is None:
                return 0
            self._signs_from = own.valid_from_size
        return self._signs_from


def ledger_event(event: Event) -> writer.Event:
    """The ledger form of a bus event; its payload is stored as RFC 8785 canonical JSON, so the leaf's
    payload_sha256 equals `canonical_sha256(event.payload)`."""
    return writer.Event(
        subject=event.subject,
        event_type=event.type,
        event_id=event.id,
        payload=canonical_json(event.payload),
        time=event.occurred_at,
    )


def append(session: Session, event: Event) -> writer.Appended:
    """Append one event inside the session's transaction (a replayed event id returns where it already is)."""
    appended = writer.append_events(session.connection(), [ledger_event(event)])[0]
    record_owner(session, event)
    return appended


def append_many(session: Session, events: list[Event]) -> list[writer.Appended]:
    """Append events in order inside the session's transaction (one batch of ledger writes)."""
    appended = writer.append_events(session.connection(), [ledger_event(e) for e in events])
    record_owners(session, events)
    return appended


def record_owner(session: Session, event: Event) -> None:
    """Remember which organisation a declaration subject belongs to (from any event that names both)."""
    record_owners(session, [event])


def record_owners(session: Session, events: list[Event]) -> None:
    """Remember which organisation each declaration subject belongs to (from any event that names both).

    The owner never changes; the first event that names it wins and replays are no-ops."""
    owners: dict[str, str] = {}
    for event in events:
        payload = event.payload
        organisation = payload.get("organisation_id") if isinstance(payload, dict) else None
        if isinstance(organisation, str) and payload.get("declaration_id") == event.subject:
            owners.setdefault(event.subject, organisation)
    if not owners:
        return
    dialect = session.get_bind().dialect.name
    now = utcnow()
    if dialect in ("postgresql", "sqlite"):
        insert_stmt = postgresql.insert if dialect == "postgresql" else sqlite.insert
        session.connection().execute(
            insert_stmt(table_of(SubjectOwner)).on_conflict_do_nothing(),
            [{"subject": s, "organisation_id": o, "recorded_at": now} for s, o in owners.items()],
        )
        return
    for subject, organisation in owners.items():
        if session.get(SubjectOwner, subject) is None:
            session.add(SubjectOwner(subject=subject, organisation_id=organisation, recorded_at=now))


def subject_owner(session: Session, subject: str) -> str | None:
    """The organisation that owns a declaration subject, if known."""
    return session.scalar(select(SubjectOwner.organisation_id).where(SubjectOwner.subject == subject))


def entry_json(row: storage.EntryRow, *, with_payload: bool = True) -> dict[str, Any]:
    """The API view of an entry: the exact leaf bytes (base64) and its hash, so anyone can recompute the tree."""
    return {
        "index": row.index,
        "event_id": row.event_id,
        "subject": row.subject,
        "leaf_hash": b64(row.leaf_hash),
        "leaf": b64(row.leaf),
        "payload": b64(row.payload) if with_payload else None,
    }


def entries_page(conn: Connection, *, start: int, end: int | None) -> dict[str, Any]:
    """Entries [start, end) capped at MAX_PAGE and at the log size, with where the next page starts."""
    size = storage.log_size(conn)
    if end is not None and end < start:
        raise Unprocessable(f"end ({end}) is before start ({start})", code="ledger.range")
    stop = min(size, start + MAX_PAGE, end if end is not None else size)
    rows = conn.execute(
        select(storage.entries)
        .where(storage.entries.c.idx >= start, storage.entries.c.idx < stop)
        .order_by(storage.entries.c.idx)
    ).all()
    entries = [entry_json(storage.EntryRow(r.idx, r.event_id, r.subject, bytes(r.leaf_hash), bytes(r.leaf),
                                           bytes(r.payload))) for r in rows]  # fmt: skip
    wanted = end if end is not None else size
    return {
        "tree_size": size,
        "start": start,
        "end": max(stop, start),
        "entries": entries,
        "next_start": stop if stop < min(wanted, size) else None,
    }


def parse_hash(value: str) -> bytes:
    """A 32-byte hash given as 64 hex digits or as (standard or URL-safe) base64."""
    text = value.strip().replace(" ", "+")  # a '+' left unescaped in a query string arrives as a space
    if len(text) == 64:
        try:
            return bytes.fromhex(text)
        except ValueError:
            pass
    try:
        raw = base64.b64decode(text.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise Unprocessable("leaf_hash must be 32 bytes as 64 hex digits or base64", code="ledger.hash")
    return raw


def _check_tree_size(conn: Connection, tree_size: int) -> int:
    size = storage.log_size(conn)
    if tree_size > size:
        raise Unprocessable(f"tree_size {tree_size} is beyond the log's size {size}", code="ledger.tree_size")
    return size


def default_tree_size(conn: Connection) -> int:
    """The size of the latest checkpoint (what clients verify against), or 404 if there is none yet."""
    latest = storage.get_checkpoint(conn)
    if latest is None:
        raise NotFound("the ledger has no checkpoint yet; retry in a few seconds", code="ledger.no_checkpoint")
    return latest[0]


def inclusion(conn: Connection, *, index: int | None, leaf_hash: str | None, tree_size: int | None) -> dict[str, Any]:
    """An inclusion proof of one entry (by index or by leaf hash) in the tree of `tree_size` entries."""
    if (index is None) == (leaf_hash is None):
        raise Unprocessable("give exactly one of index and leaf_hash", code="ledger.inclusion_query")
    if leaf_hash is not None:
        h = parse_hash(leaf_hash)
        found = conn.execute(select(storage.entries.c.idx).where(storage.entries.c.leaf_hash == h)).scalar()
        if found is None:
            raise NotFound("no entry has this leaf hash", code="ledger.no_entry")
        index = int(found)
    assert index is not None
    size = tree_size if tree_size is not None else default_tree_size(conn)
    _check_tree_size(conn, size)
    if index >= size:
        raise Unprocessable(f"entry {index} is not in the tree of size {size}", code="ledger.index")
    entry = storage.get_entry(conn, index)
    if entry is None:
        raise NotFound(f"no entry at index {index}", code="ledger.no_entry")
    return {
        "index": index,
        "tree_size": size,
        "leaf_hash": b64(entry.leaf_hash),
        "root_hash": b64(reader.root_at(conn, size)),
        "proof": [b64(p) for p in reader.inclusion_proof(conn, index, size)],
    }


def consistency(conn: Connection, *, first: int, second: int | None) -> dict[str, Any]:
    """A consistency proof between the trees of `first` and `second` entries (default: latest checkpoint)."""
    second = second if second is not None else default_tree_size(conn)
    if first > second:
        raise Unprocessable(f"first ({first}) is greater than second ({second})", code="ledger.range")
    if first == 0:
        raise Unprocessable("first must be at least 1: every tree extends the empty one", code="ledger.range")
    _check_tree_size(conn, second)
    return {
        "first": first,
        "second": second,
        "first_root": b64(reader.root_at(conn, first)),
        "second_root": b64(reader.root_at(conn, second)),
        "proof": [b64(p) for p in reader.consistency_proof(conn, first, second)],
    }


@dataclass(frozen=True, slots=True)
class BundleChoice:
    """Which checkpoint a subject's bundle proves against."""

    size: int
    complete: bool  # the checkpoint covers every entry of the subject logged so far


def choose_checkpoint(conn: Connection, subject: str, *, min_size: int = 0) -> BundleChoice:
    """The checkpoint for a subject's bundle: the latest anchored one covering all its entries, else the latest
    covering them, else the latest covering at least its first entry. Checkpoints of size >= `min_size` (signed by
    the key that signs the bundle) come first; older ones only when none of those covers the subject yet."""
    idx = storage.entries.c.idx
    first, last = conn.execute(select(func.min(idx), func.max(idx)).where(storage.entries.c.subject == subject)).one()
    if first is None:
        raise NotFound(f"the ledger has no entry about {subject!r}", code="ledger.no_subject")
    pick = storage.bundle_checkpoint(conn, first=int(first), last=int(last), min_size=min_size)
    if pick is None and min_size > 0:
        # Just after a key rotation, before the new key signed a checkpoint: one by the previous key (a verifier
        # needs the key history, `verify-bundle --keys`).
        pick = storage.bundle_checkpoint(conn, first=int(first), last=int(last))
    if pick is not None:
        return BundleChoice(*pick)
    raise NotFound(
        f"no checkpoint covers {subject!r} yet; retry in a few seconds",
        code="ledger.not_checkpointed",
        headers={"Retry-After": "2"},
    )


def build_bundle(
    prov: Provenance, subject: str, *, include_payloads: bool, show_payload: Callable[[bytes], bool] | None = None
) -> dict[str, Any]:
    """A self-contained, signed provenance bundle of a subject (see ledger.bundle)."""
    with prov.read_engine.connect() as conn:
        choice = choose_checkpoint(conn, subject, min_size=prov.signs_from(conn))
        lines = cosignature_lines(conn, choice.size)
    return ledger_bundle.build_bundle(
        prov.read_engine,
        subject,
        prov.signer,
        size=choice.size,
        include_payloads=include_payloads,
        show_payload=show_payload,
        cosignature_lines=lines,
    )


def cosignature_lines(conn: Connection, size: int) -> list[str]:
    """The witnesses' cosignature lines stored for the checkpoint of `size` (in a stable order)."""
    table = table_of(WitnessCosignature)
    rows = conn.execute(select(table.c.line).where(table.c.checkpoint_size == size).order_by(table.c.witness))
    return [row[0] for row in rows]


# Subjects whose bundles anyone may read: the traceability service's EPCIS events (`epcis:{id}`), whose ledger
# payload is the event's CBV 2.0 hash, type, time, bizStep and capturer id: public supply-chain facts, the same the
# buyer's trace page shows (docs/traceability.md, "The buyer's view"). Declarations and gate events stay private.
PUBLIC_SUBJECT_PREFIXES = ("epcis:",)
MAX_PUBLIC_SUBJECTS = 200


def public_subject(subject: str) -> bool:
    """Whether anyone may read the bundle of `subject`."""
    return subject.startswith(PUBLIC_SUBJECT_PREFIXES) and "\x00" not in subject and len(subject) <= 200


def build_public_bundles(prov: Provenance, subjects: list[str]) -> dict[str, Any]:
    """Bundles of public subjects against ONE checkpoint (the latest), so a trace of many events is proven against
    one signed tree head; subjects with no entry inside it yet are listed as `pending`."""
    with prov.read_engine.connect() as conn:
        latest = storage.get_checkpoint(conn)
        if latest is None:
            return {"tree_size": 0, "bundles": [], "pending": sorted(set(subjects))}
        size = latest[0]
        lines = cosignature_lines(conn, size)
    bundles, pending = ledger_bundle.build_bundles(
        prov.read_engine, subjects, prov.signer, size=size, cosignature_lines=lines
    )
    return {"tree_size": size, "bundles": bundles, "pending": pending}
