"""Every domain event reaches the ledger exactly once, even when redelivered; leaves hold no trader data."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from ledger import storage
from ledger.leaf import FIELDS, Leaf
from services.kernel.database import unit_of_work
from services.kernel.outbox import OutboxEvent, as_event, canonical_sha256
from services.kernel.runtime import Runtime
from services.provenance import service
from services.provenance.service import Provenance
from tests.api.support import Api


def outbox_events(runtime: Runtime) -> list[Any]:
    with unit_of_work(runtime.read_sessions) as session:
        return [as_event(row) for row in session.scalars(select(OutboxEvent).order_by(OutboxEvent.seq))]


def ledger_rows(runtime: Runtime) -> list[storage.EntryRow]:
    with runtime.engine.connect() as conn:
        return list(storage.iter_entries(conn))


def test_every_event_is_appended_once_in_outbox_order(
    api: Api, trader: dict[str, str], runtime: Runtime, prov: Provenance
) -> None:
    api.file(trader, submit=True)
    api.file(trader)
    runtime.relay.drain()
    events = outbox_events(runtime)
    rows = ledger_rows(runtime)
    assert len(events) >= 3
    assert [r.event_id for r in rows] == [e.id for e in events]
    assert [r.index for r in rows] == list(range(len(events)))
    for row, event in zip(rows, events, strict=True):
        leaf = Leaf.from_bytes(row.leaf, index=row.index)
        assert (leaf.subject, leaf.event_type, leaf.event_id) == (event.subject, event.type, event.id)
        # The leaf commits to the canonical JSON of the payload, which is stored beside it.
        assert leaf.payload_sha256 == canonical_sha256(event.payload)
        assert json.loads(row.payload) == event.payload


def test_redelivery_is_harmless_through_the_bus_and_even_past_the_consumer_dedupe(
    api: Api, trader: dict[str, str], runtime: Runtime, prov: Provenance
) -> None:
    api.file(trader, submit=True)
    runtime.relay.drain()
    before = ledger_rows(runtime)
    events = outbox_events(runtime)
    # At-least-once delivery: the relay publishes the same events again (a crash before marking them published).
    for event in events:
        runtime.bus.publish(event)
    # And even if the consumer's dedupe row were lost, the ledger's unique event id keeps one entry per event.
    for event in events:
        with unit_of_work(runtime.sessions) as session:
            appended = service.append(session, event)
        assert appended.duplicate
    assert ledger_rows(runtime) == before


def test_leaves_carry_only_ids_types_times_and_hashes(
    api: Api, trader: dict[str, str], runtime: Runtime, prov: Provenance
) -> None:
    created = api.file(trader, submit=True)
    runtime.relay.drain()
    rows = ledger_rows(runtime)
    body = api.body
    # Strings a trader would not want in a public log: its organisation, the declaration's number, parties, goods.
    secrets = {created["number"], *_strings(body)} - {""}
    with unit_of_work(runtime.read_sessions) as session:
        org = session.scalar(select(OutboxEvent.payload)).get("organisation_id")  # type: ignore[union-attr]
    secrets.add(org)
    for row in rows:
        leaf = json.loads(row.leaf)
        assert set(leaf) == set(FIELDS)
        text = row.leaf.decode()
        leaked = sorted(s for s in secrets if len(s) >= 6 and s in text and s != row.subject)
        assert not leaked, (row.index, leaked)


def _strings(value: Any) -> set[str]:
    if isinstance(value, str):
        return {value}
    if isinstance(value, dict):
        return set().union(*(_strings(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_strings(v) for v in value)) if value else set()
    return set()


def test_the_owner_of_each_declaration_subject_is_learnt_from_its_events(
    api: Api, trader: dict[str, str], trader_b: dict[str, str], runtime: Runtime, prov: Provenance
) -> None:
    mine = api.file(trader)
    theirs = api.file(trader_b)
    runtime.relay.drain()
    with unit_of_work(runtime.read_sessions) as session:
        owner_a = service.subject_owner(session, mine["id"])
        owner_b = service.subject_owner(session, theirs["id"])
    assert owner_a
    assert owner_b
    assert owner_a != owner_b
