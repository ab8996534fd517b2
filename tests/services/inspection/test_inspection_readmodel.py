"""The read model of declarations expected at the gate follows `declaration.*` events, in order, exactly once."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from services.inspection.models import ExpectedContainer, ExpectedDeclaration
from services.kernel.database import unit_of_work
from services.kernel.outbox import record_event

pytestmark = pytest.mark.usefixtures("raw_events")  # transport and consumer tolerance, not payloads

DECL = "3f2b8c1e-0000-4000-8000-000000000001"


# What every declaration event carries (services/kernel/catalogue.py); `containers` and `truck_plate` only where a
# test gives them, as events written before those fields existed lack them.
STEP = {"organisation_id": "org-a", "body_sha256": "a" * 64, "actor": "trader", "reason": None,
        "at": "2026-11-28T01:30:00Z"}  # fmt: skip
ASSESSED = {"organisation_id": "org-a", "body_sha256": "a" * 64, "assessment_sha256": "b" * 64,
            "duties_total_vnd": 0, "duties_assessed": True}  # fmt: skip


def emit(runtime: Any, type_: str, **payload: Any) -> None:
    base = ASSESSED if type_ == "declaration.assessed" else STEP if type_.startswith("declaration.") else {}
    with unit_of_work(runtime.sessions) as session:
        record_event(session, type=type_, subject=DECL, payload={"declaration_id": DECL, **base, **payload})
    runtime.relay.drain()


def stored(runtime: Any) -> tuple[ExpectedDeclaration | None, list[str]]:
    with unit_of_work(runtime.read_sessions) as session:
        row = session.get(ExpectedDeclaration, DECL)
        query = select(ExpectedContainer.number).where(ExpectedContainer.declaration_id == DECL)
        numbers = sorted(session.scalars(query))
        return row, numbers


def test_events_build_and_update_the_read_model(app, runtime):
    containers = [{"number": "CSQU 305438 3", "seals": ["CN1"]}]
    emit(runtime, "declaration.submitted", number="KT-2026-000001", status="submitted", version=1,
         body_sha256="a" * 64, containers=containers, truck_plate="24C-123.45")  # fmt: skip
    row, numbers = stored(runtime)
    assert row is not None
    assert (row.status, row.number, row.truck_plate) == ("submitted", "KT-2026-000001", "24C-123.45")
    assert numbers == ["CSQU3054383"]
    # An amendment (version 2) replaces the containers.
    emit(runtime, "declaration.amended", number="KT-2026-000001", status="submitted", version=2,
         containers=[{"number": "MSCU5605860", "seals": []}], truck_plate="24C-999.99")  # fmt: skip
    # Events without a status (assessment, payment) change nothing; nor does an event without containers.
    emit(runtime, "declaration.assessed", number="KT-2026-000001", version=2, channel="red")
    emit(runtime, "declaration.cleared", number="KT-2026-000001", status="cleared", version=2)
    row, numbers = stored(runtime)
    assert row is not None
    assert (row.status, row.version, row.truck_plate) == ("cleared", 2, "24C-999.99")
    assert numbers == ["MSCU5605860"]
    assert row.body_sha256 == "a" * 64


def test_an_event_of_an_older_version_is_ignored(app, runtime):
    emit(runtime, "declaration.amended", number="KT-2026-000002", status="submitted", version=3,
         containers=[{"number": "MSCU5605860", "seals": []}])  # fmt: skip
    emit(runtime, "declaration.cancelled", number="KT-2026-000002", status="cancelled", version=2,
         containers=[{"number": "CSQU3054383", "seals": []}])  # fmt: skip
    row, numbers = stored(runtime)
    assert row is not None
    assert (row.status, row.version, numbers) == ("submitted", 3, ["MSCU5605860"])


def test_redelivery_is_applied_once(app, runtime):
    from services.kernel.outbox import OutboxEvent, as_event

    emit(runtime, "declaration.released", number="KT-2026-000003", status="released", version=1,
         containers=[{"number": "CSQU3054383", "seals": []}])  # fmt: skip
    with unit_of_work(runtime.read_sessions) as session:
        event = as_event(session.scalars(select(OutboxEvent).where(OutboxEvent.subject == DECL)).one())
    runtime.bus.publish(event)  # at-least-once: the same event again
    row, numbers = stored(runtime)
    assert row is not None
    assert row.status == "released"
    assert numbers == ["CSQU3054383"]


def test_a_malformed_event_is_skipped_and_the_next_one_applied(app, runtime, caplog):
    # A producer's bug (a status that is not a string) must not stop the queue: logged, skipped.
    emit(runtime, "declaration.submitted", number="KT-2026-000004", status=["submitted"], version=1)
    assert stored(runtime)[0] is None
    assert "event skipped: payload does not match its model" in caplog.text
    emit(runtime, "declaration.submitted", number="KT-2026-000004", status="submitted", version=1,
         containers=[{"number": "CSQU3054383", "seals": []}])  # fmt: skip
    row, numbers = stored(runtime)
    assert row is not None
    assert (row.status, numbers) == ("submitted", ["CSQU3054383"])
