"""The event catalogue: every published type has a model, producers are held to it, docs/events.md follows it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from services.declarations import events as declaration_events
from services.exchange import events as exchange_events
from services.exchange.messages import events as message_events
from services.inspection import events as gate_events
from services.kernel import catalogue
from services.kernel.outbox import Event, event_row
from services.traceability import events as epcis_events
from services.webhooks import service as webhooks

REPO = Path(__file__).resolve().parents[3]
STEP = {
    "declaration_id": "d-1", "number": "KT-2026-000001", "organisation_id": "o-1", "status": "submitted",
    "version": 1, "body_sha256": "a" * 64, "actor": "trader:k1", "reason": None, "at": "2026-12-03T08:00:00+00:00",
    "containers": [{"number": "CSQU3054383", "seals": ["VN123"]}], "truck_plate": "24C-123.45",
}  # fmt: skip


def constants(module: object) -> set[str]:
    return {v for k, v in vars(module).items() if k.isupper() and isinstance(v, str) and "." in v}


def test_every_type_the_services_name_has_a_model_and_no_model_is_orphaned() -> None:
    named = constants(declaration_events) | constants(gate_events) | constants(epcis_events)
    named |= constants(exchange_events) | constants(message_events)
    named |= {"risk.rule_set_activated"}
    assert named == set(catalogue.CATALOGUE)


def test_producers_are_held_to_the_model() -> None:
    assert event_row(type="declaration.submitted", subject="d-1", payload=STEP)["payload"] == STEP
    with pytest.raises(catalogue.UncataloguedEvent, match="not in services/kernel/catalogue.py"):
        event_row(type="declaration.teleported", subject="d-1", payload=STEP)
    with pytest.raises(catalogue.UncataloguedEvent, match="score"):  # a confidential field cannot slip in
        event_row(type="declaration.submitted", subject="d-1", payload={**STEP, "score": 45})
    missing = {k: v for k, v in STEP.items() if k != "organisation_id"}
    with pytest.raises(catalogue.UncataloguedEvent, match="organisation_id"):
        event_row(type="declaration.submitted", subject="d-1", payload=missing)
    with pytest.raises(catalogue.UncataloguedEvent, match="version"):
        event_row(type="declaration.submitted", subject="d-1", payload={**STEP, "version": "two"})
    # A field with a default (for older events' sake) is still required of a producer.
    with pytest.raises(catalogue.UncataloguedEvent, match="truck_plate"):
        event_row(type="declaration.submitted", subject="d-1", payload={k: v for k, v in STEP.items()
                                                                         if k != "truck_plate"})  # fmt: skip
    assessed = {k: STEP[k] for k in ("declaration_id", "number", "organisation_id", "version", "body_sha256")}
    assessed |= {"channel": "purple", "assessment_sha256": "b" * 64, "duties_total_vnd": 1, "duties_assessed": True}
    with pytest.raises(catalogue.UncataloguedEvent, match="channel"):
        event_row(type="declaration.assessed", subject="d-1", payload=assessed)


def test_consumers_parse_typed_payloads_and_tolerate_fields_added_later() -> None:
    event = Event(id="e-1", type="declaration.cleared", subject="d-1", payload={**STEP, "new_field": 1},
                  occurred_at=__import__("datetime").datetime(2026, 12, 3))  # fmt: skip
    parsed = catalogue.parse(event)
    assert isinstance(parsed, catalogue.DeclarationStep)
    assert parsed.containers[0].seals == ["VN123"]
    # What consumers call: the typed payload, or None for another type or a malformed payload.
    step = catalogue.read(event, catalogue.DeclarationStep)
    assert step is not None
    assert step.truck_plate == "24C-123.45"
    assert "truck_plate" in step.model_fields_set
    owned = catalogue.read(event, catalogue.Owned)  # a base model: any event about one organisation's thing
    assert owned is not None
    assert owned.organisation_id == "o-1"
    assert catalogue.read(event, catalogue.GateExited) is None
    assert catalogue.read(dataclasses.replace(event, payload={**STEP, "status": 3}), catalogue.DeclarationStep) is None
    # An event written before containers and truck plates were added: read, and the consumer can tell.
    older = {k: v for k, v in STEP.items() if k not in ("containers", "truck_plate")}
    step = catalogue.read(dataclasses.replace(event, payload=older), catalogue.DeclarationStep)
    assert step is not None
    assert step.containers == []
    assert "containers" not in step.model_fields_set


def test_webhooks_offer_the_trader_facing_types_only() -> None:
    assert set(webhooks.EVENT_TYPES) == {t for t, m in catalogue.CATALOGUE.items() if m.TRADER_FACING}
    assert "declaration.assigned" not in webhooks.EVENT_TYPES  # which officer: customs only
    # A trader's declarations and its trucks at the gate; nothing else (rule sets, EPCIS captures).
    assert {t.split(".")[0] for t in webhooks.EVENT_TYPES} == {"declaration", "gate"}
    assert {"gate.read", "gate.mismatch", "gate.exited"} <= set(webhooks.EVENT_TYPES)
    # Each names the organisation whose webhooks receive it: the base the webhooks service routes on.
    for type_ in webhooks.EVENT_TYPES:
        assert issubclass(catalogue.CATALOGUE[type_], catalogue.Routed), type_


def test_gate_events_name_the_trader_when_a_declaration_matched() -> None:
    gate = {"gate_event_id": "g-1", "lane": "OUT-1", "direction": "out", "camera_id": "KT-OUT-1",
            "taken_at": "2026-12-03T08:00:00+00:00", "declaration_id": "d-1", "declaration_number": "KT-2026-000001",
            "organisation_id": "o-1"}  # fmt: skip
    event = Event(id="e-2", type="gate.exited", subject="d-1", payload=gate,
                  occurred_at=__import__("datetime").datetime(2026, 12, 3))  # fmt: skip
    routed = catalogue.read(event, catalogue.Routed)
    assert routed is not None
    assert routed.organisation_id == "o-1"
    assert catalogue.read(event, catalogue.Owned) is None  # a gate event need not concern anyone's declaration
    # A truck nothing matched, and an event written before gate events named the organisation: no one's.
    nobody = {**gate, "declaration_id": None, "declaration_number": None, "organisation_id": None}
    event_row(type="gate.exited", subject="g-1", payload=nobody)
    older = {k: v for k, v in gate.items() if k != "organisation_id"}
    routed = catalogue.read(dataclasses.replace(event, payload=older), catalogue.Routed)
    assert routed is not None
    assert routed.organisation_id is None
    with pytest.raises(catalogue.UncataloguedEvent, match="organisation_id"):  # a producer always says
        event_row(type="gate.exited", subject="d-1", payload=older)


def test_docs_events_md_is_generated_from_the_catalogue() -> None:
    written = (REPO / "docs" / "events.md").read_text()
    assert written == catalogue.markdown(), (
        "docs/events.md is stale: python -m services.kernel.catalogue > docs/events.md"
    )
