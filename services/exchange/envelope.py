"""The envelope every message travels in (schemas/envelope.v1.json): made, put in canonical form, validated.

A message is `{messageId, correlationId, sender, recipient, type, version, createdAt, payload}`; what is signed is
its RFC 8785 form. Validation reports every problem as `{pointer, code, detail}` with a JSON Pointer (RFC 6901)
into the message, as the platform's own 422 answers do.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema_rs
import rfc8785

from services.exchange.registry import MessageType

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
RECEIPT = "receipt"
VERSION = 1
MAX_ERRORS = 50


@cache
def builtin_schema(name: str) -> dict[str, Any]:
    """One of the schemas shipped with the service (`envelope.v1`, `receipt.v1`)."""
    schema: dict[str, Any] = json.loads((SCHEMA_DIR / f"{name}.json").read_text(encoding="utf-8"))
    return schema


def payload_schemas(types: dict[str, MessageType]) -> dict[str, dict[str, Any]]:
    """`{name}.v{version}` → the payload schema of every type we know, the receipt's included."""
    out = {f"{RECEIPT}.v{VERSION}": builtin_schema(f"{RECEIPT}.v{VERSION}")}
    for t in types.values():
        out[f"{t.name}.v{t.version}"] = t.schema
    return out


_VALIDATORS: dict[str, tuple[dict[str, Any], Any]] = {}


def _validator(key: str, schema: dict[str, Any]) -> Any:
    held = _VALIDATORS.get(key)
    if held is None or held[0] is not schema:
        held = (schema, jsonschema_rs.Draft202012Validator(schema, validate_formats=True))
        _VALIDATORS[key] = held
    return held[1]


def _pointer(path: list[Any] | tuple[Any, ...], prefix: str = "") -> str:
    return prefix + "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


def _errors(validator: Any, instance: Any, prefix: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for err in validator.iter_errors(instance):
        kind = type(err.kind).__name__.lower() if err.kind is not None else "invalid"
        out.append({"pointer": _pointer(list(err.instance_path), prefix), "code": f"schema.{kind}",
                    "detail": str(err.message)[:500]})  # fmt: skip
        if len(out) >= MAX_ERRORS:
            break
    return out


def validate(message: Any, types: dict[str, MessageType]) -> list[dict[str, Any]]:
    """Problems of `message` against the envelope, then (envelope valid) its payload against its type's schema."""
    errors = _errors(_validator("envelope.v1", builtin_schema("envelope.v1")), message, "")
    if errors:
        return errors
    key = f"{message['type']}.v{message['version']}"
    schema = payload_schemas(types).get(key)
    if schema is None:
        return [{"pointer": "/type", "code": "exchange.type_unsupported",
                 "detail": f"this side does not handle {key} messages"}]  # fmt: skip
    return _errors(_validator(key, schema), message["payload"], "/payload")


def rfc3339(moment: dt.datetime) -> str:
    """`2026-12-03T18:00:00.123456Z` (UTC)."""
    text = moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
    return text.rstrip("0").rstrip(".") + "Z"


def parse_time(text: str) -> dt.datetime:
    """An envelope's createdAt as an aware datetime."""
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(dt.UTC)


def make(*, sender: str, recipient: str, type: str, correlation_id: str, payload: dict[str, Any],
         created_at: dt.datetime, message_id: str | None = None) -> dict[str, Any]:  # fmt: skip
    """A new message."""
    return {
        "messageId": message_id or str(uuid.uuid4()),
        "correlationId": correlation_id,
        "sender": sender,
        "recipient": recipient,
        "type": type,
        "version": VERSION,
        "createdAt": rfc3339(created_at),
        "payload": payload,
    }


def canonical(message: dict[str, Any]) -> bytes:
    """The RFC 8785 bytes that are signed."""
    return rfc8785.dumps(message)


def parse(data: bytes) -> Any:
    """The JSON of a verified payload (ValueError if it is not JSON)."""
    return json.loads(data.decode("utf-8"))
