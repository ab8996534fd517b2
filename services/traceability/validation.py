"""Validation of EPCIS 2.0 documents and events: the GS1 JSON schema, then CBV 2.0 vocabularies and GS1 keys.

Every problem is reported with the RFC 6901 JSON Pointer of the value at fault; a document with any problem is
refused whole.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from typing import Any

import jsonschema_rs

from services.traceability import cbv, identifiers

# Enough to fix a document; a document with more stops being reported there.
MAX_ERRORS = 50
EVENT_TYPES = ("ObjectEvent", "AggregationEvent", "TransactionEvent", "TransformationEvent", "AssociationEvent")
EPC_FIELDS = ("epcList", "childEPCs", "inputEPCList", "outputEPCList")
QUANTITY_FIELDS = ("quantityList", "childQuantityList", "inputQuantityList", "outputQuantityList")


def pointer(*parts: str | int) -> str:
    """An RFC 6901 JSON Pointer."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


@cache
def validator() -> Any:
    """The EPCIS 2.0 JSON schema, compiled once (formats checked: date-time, uri)."""
    return jsonschema_rs.Draft7Validator(cbv.schema(), validate_formats=True)


def schema_errors(document: Any) -> list[dict[str, str]]:
    """Where `document` breaks the EPCIS 2.0 JSON schema."""
    found: list[dict[str, str]] = []
    for error in validator().iter_errors(document):
        found.append({"pointer": pointer(*error.instance_path), "code": "schema", "detail": error.message[:300]})
        if len(found) >= MAX_ERRORS:
            break
    return found


def _vocabulary(where: str, vocabulary: str, value: Any) -> Iterator[dict[str, str]]:
    if isinstance(value, str):
        try:
            cbv.word_of(vocabulary, value)
        except ValueError as exc:
            yield {"pointer": where, "code": "cbv", "detail": str(exc)}


def _identifier(where: str, value: Any) -> Iterator[dict[str, str]]:
    if isinstance(value, str):
        try:
            identifiers.canonical(value)
        except identifiers.IdentifierError as exc:
            yield {"pointer": where, "code": "gs1", "detail": str(exc)}


def event_errors(event: dict[str, Any], where: tuple[str | int, ...]) -> Iterator[dict[str, str]]:
    """CBV 2.0 vocabulary values and GS1 keys of one (schema-valid) event."""
    for name, vocabulary in (("bizStep", "bizStep"), ("disposition", "disposition")):
        yield from _vocabulary(pointer(*where, name), vocabulary, event.get(name))
    persistent = event.get("persistentDisposition") or {}
    for which in ("set", "unset"):
        for i, value in enumerate(persistent.get(which) or []):
            yield from _vocabulary(pointer(*where, "persistentDisposition", which, i), "disposition", value)
    for name, key, vocabulary in (
        ("bizTransactionList", "bizTransaction", "bizTransaction-type"),
        ("sourceList", "source", "source-dest-type"),
        ("destinationList", "destination", "source-dest-type"),
    ):
        for i, item in enumerate(event.get(name) or []):
            yield from _vocabulary(pointer(*where, name, i, "type"), vocabulary, item.get("type"))
            if key != "bizTransaction":
                yield from _identifier(pointer(*where, name, i, key), item.get(key))
    declaration = event.get("errorDeclaration") or {}
    yield from _vocabulary(pointer(*where, "errorDeclaration", "reason"), "error-reason", declaration.get("reason"))
    for name in EPC_FIELDS:
        for i, epc in enumerate(event.get(name) or []):
            yield from _identifier(pointer(*where, name, i), epc)
    for name in QUANTITY_FIELDS:
        for i, element in enumerate(event.get(name) or []):
            yield from _identifier(pointer(*where, name, i, "epcClass"), element.get("epcClass"))
    yield from _identifier(pointer(*where, "parentID"), event.get("parentID"))
    for name in ("readPoint", "bizLocation"):
        place = event.get(name)
        if isinstance(place, dict):
            yield from _identifier(pointer(*where, name, "id"), place.get("id"))


def document_errors(document: Any) -> list[dict[str, str]]:
    """Every problem of an EPCISDocument (empty: valid)."""
    if not isinstance(document, dict) or document.get("type") != "EPCISDocument":
        return [{"pointer": "/type", "code": "schema", "detail": "expected an EPCISDocument"}]
    found = schema_errors(document)
    if found:
        return found
    seen: dict[str, int] = {}
    for i, event in enumerate(document["epcisBody"]["eventList"]):
        where = ("epcisBody", "eventList", i)
        if event.get("type") not in EVENT_TYPES:
            found.append(
                {
                    "pointer": pointer(*where, "type"),
                    "code": "unsupported",
                    "detail": f"event type {event.get('type')!r} is not one of {', '.join(EVENT_TYPES)}",
                }
            )
            continue
        found.extend(event_errors(event, where))
        event_id = event.get("eventID")
        if isinstance(event_id, str):
            if event_id in seen:
                found.append(
                    {
                        "pointer": pointer(*where, "eventID"),
                        "code": "duplicate",
                        "detail": f"eventID also at {pointer('epcisBody', 'eventList', seen[event_id])}",
                    }
                )
            seen.setdefault(event_id, i)
        if len(found) >= MAX_ERRORS:
            break
    return found[:MAX_ERRORS]


def single_event_errors(event: Any) -> list[dict[str, str]]:
    """Every problem of one event posted alone (it carries its own `@context`)."""
    if not isinstance(event, dict) or event.get("type") not in EVENT_TYPES:
        return [{"pointer": "/type", "code": "schema", "detail": f"expected one of {', '.join(EVENT_TYPES)}"}]
    return schema_errors(event) or list(event_errors(event, ()))[:MAX_ERRORS]
