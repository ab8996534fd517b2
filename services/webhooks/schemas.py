"""Request and response bodies of the webhooks API."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field

from services.kernel.schemas import InputSchema, Schema
from services.webhooks.models import WebhookDelivery, WebhookEndpoint

Url = Annotated[str, Field(min_length=8, max_length=2048, description="https:// URL that receives POSTs")]
Description = Annotated[str, Field(max_length=200)]
EventTypes = Annotated[
    list[Annotated[str, Field(max_length=64)]],
    Field(max_length=20, description="Event types to send (empty: every declaration event)"),
]


class WebhookIn(InputSchema):
    """An endpoint to register."""

    model_config = InputSchema.model_config | {
        "json_schema_extra": {
            "examples": [
                {
                    "url": "https://erp.example.vn/hooks/smartgate",
                    "event_types": ["declaration.assessed", "declaration.documents_requested", "declaration.released"],
                    "description": "ERP: customs status",
                }
            ]
        }
    }

    url: Url
    event_types: EventTypes = []
    description: Description = ""


class WebhookPatch(InputSchema):
    """Fields to change; those left out stay as they are."""

    url: Url | None = None
    event_types: EventTypes | None = None
    description: Description | None = None
    active: bool | None = None


class WebhookOut(Schema):
    """A registered endpoint (its secret is shown only when made or rotated)."""

    id: str
    url: str
    description: str
    event_types: list[str]
    active: bool
    disabled_reason: str | None = Field(description="Why the platform switched it off (410 Gone), if it did")
    created_at: dt.datetime
    updated_at: dt.datetime


class WebhookWithSecret(WebhookOut):
    """An endpoint with its signing secret: store it now, it is not shown again."""

    secret: str = Field(description="whsec_… secret: verify `webhook-signature` with it (Standard Webhooks)")
    previous_secret_valid_until: dt.datetime | None = Field(
        description="After a rotation the previous secret also signs until then"
    )


class WebhookList(Schema):
    """The organisation's endpoints."""

    items: list[WebhookOut]
    event_types: list[str] = Field(description="Every event type an endpoint can receive")


class DeliveryOut(Schema):
    """One event sent (or to be sent) to one endpoint, with its last attempt."""

    id: str = Field(description="Also the `webhook-id` header: the same on every retry, so receivers can dedupe")
    event_id: str
    event_type: str
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    next_attempt_at: dt.datetime | None
    last_attempt_at: dt.datetime | None
    last_status_code: int | None
    last_error: str | None
    last_duration_ms: int | None
    created_at: dt.datetime
    delivered_at: dt.datetime | None
    payload: dict[str, Any] = Field(description="The body sent: type, timestamp and data")


class DeliveryPage(Schema):
    """A page of deliveries, newest first; pass `next_cursor` as `cursor` for the next."""

    items: list[DeliveryOut]
    next_cursor: str | None


def endpoint_json(row: WebhookEndpoint, *, with_secret: bool = False) -> dict[str, Any]:
    """The API view of an endpoint."""
    out: dict[str, Any] = {
        "id": row.id,
        "url": row.url,
        "description": row.description,
        "event_types": list(row.event_types),
        "active": row.active,
        "disabled_reason": row.disabled_reason,
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
    }
    if with_secret:
        out["secret"] = row.secret
        until = row.previous_secret_until
        out["previous_secret_valid_until"] = until.isoformat() if until and row.previous_secret else None
    return out


def delivery_json(row: WebhookDelivery) -> dict[str, Any]:
    """The API view of a delivery."""

    def iso(value: dt.datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {
        "id": row.id,
        "event_id": row.event_id,
        "event_type": row.event_type,
        "status": row.status,
        "attempts": row.attempts,
        "next_attempt_at": iso(row.next_attempt_at) if row.status == "pending" else None,
        "last_attempt_at": iso(row.last_attempt_at),
        "last_status_code": row.last_status_code,
        "last_error": row.last_error,
        "last_duration_ms": row.last_duration_ms,
        "created_at": row.created_at.isoformat(),
        "delivered_at": iso(row.delivered_at),
        "payload": row.payload,
    }


# The gate's hold reasons (the inspection service's fixed set; a test holds the two equal).
GateReason = Literal["no_code_read", "no_declaration", "declaration_not_cleared", "code_unverified",
                     "container_not_on_declaration", "seal_mismatch", "one_substitution_match"]  # fmt: skip


# What a receiver gets (documented in OpenAPI's `webhooks` section; a test holds `service.event_data` to these).
class DeclarationLinks(Schema):
    """Where to read more, with the receiver's own API key."""

    model_config = ConfigDict(extra="forbid")

    declaration: str = Field(description="Path of the declaration in this API", examples=["/api/v1/declarations/…"])
    gate_events: str | None = Field(
        None,
        description="`gate.*` only: path of the declaration's gate events (what the trader may read of them)",
        examples=["/api/v1/gate/declarations/…/events"],
    )


class EventData(Schema):
    """What a trader learns from one event of its own declaration, or of its truck at the gate. Thin on purpose:
    the declaration is one authenticated GET away; no officer or key ids, nothing of how it was selected (score,
    rules, random draw); of the gate, no camera, images or OCR detail."""

    model_config = ConfigDict(extra="forbid")

    declaration_id: str = Field(description="The declaration's id (UUID)")
    number: str | None = Field(description="Its customs number once registered (KT-YYYY-NNNNNN), else null",
                               examples=["KT-2026-000123"])  # fmt: skip
    status: str | None = Field(None, description="Its status after the event (every type but `assessed`, `paid`, "
                               "`payment_rejected`)", examples=["awaiting_documents"])  # fmt: skip
    version: int | None = Field(None, description="The version of the declaration the event concerns", ge=1)
    channel: Literal["green", "yellow", "red"] | None = Field(
        None, description="`declaration.assessed` only: the selectivity channel (phân luồng)"
    )
    duties_total_vnd: int | None = Field(None, description="`declaration.assessed` only: duties and taxes due, VND")
    duties_assessed: bool | None = Field(
        None, description="`declaration.assessed` only: false when no exchange rate or tariff allowed assessing them"
    )
    payment_id: str | None = Field(None, description="`declaration.payment_rejected` only: the payment refused")
    amount_vnd: int | None = Field(None, description="`paid`, `payment_rejected`: the payment's amount, VND")
    paid_vnd: int | None = Field(None, description="`declaration.paid` only: confirmed payments in all, VND")
    due_vnd: int | None = Field(None, description="`declaration.paid` only: what remains due, VND")
    reason: str | None = Field(
        None, description="Officer decisions, cancellations, expiry and refused payments: why, as recorded"
    )
    gate_event_id: str | None = Field(None, description="`gate.*` only: the gate event (UUID)")
    lane: str | None = Field(None, description="`gate.*` only: the gate lane the truck passed", examples=["OUT-1"])
    direction: Literal["in", "out"] | None = Field(
        None, description="`gate.*` only: `in`, entering the control zone; `out`, leaving it"
    )
    taken_at: dt.datetime | None = Field(None, description="`gate.*` only: when the camera saw the truck")
    decision: Literal["proceed", "hold"] | None = Field(
        None, description="`gate.read`, `gate.mismatch`: whether the truck may proceed or is held for customs"
    )
    reasons: list[GateReason] | None = Field(
        None,
        description="`gate.read`, `gate.mismatch`: why the truck is held (empty when it may proceed): no container "
        "code read, none on a live declaration, the declaration not cleared for this direction, a code read "
        "unverified (ISO 6346 check digit), a container not on the declaration, a seal not declared, a container "
        "one character off a declared one",
        examples=[["seal_mismatch"]],
    )
    match: Literal["exact", "one_substitution", "qr", "none"] | None = Field(
        None,
        description="`gate.read`, `gate.mismatch`: how the read matched the declaration: a declared container "
        "exactly, one character off a declared container (a misread or a typo: held), or only by the QR code",
    )
    container: str | None = Field(
        None, description="`gate.read` only: the declared container the read matched", examples=["CSQU3054383"]
    )
    codes_read: list[str] | None = Field(
        None,
        description="`gate.read`, `gate.mismatch`: the container codes the cameras read (each image's best)",
        examples=[["CSQU3054383"]],
    )
    links: DeclarationLinks


class EventMessage(Schema):
    """The body of every delivery (Standard Webhooks shape). Headers: `webhook-id` (the same on every retry:
    dedupe by it), `webhook-timestamp` (Unix seconds of this attempt) and `webhook-signature` (`v1,<base64
    HMAC-SHA256>` of `{id}.{timestamp}.{body}` with the endpoint's secret; two, space-separated, during a rotation).
    Answer 2xx within 10 s; anything else is retried with backoff, 410 Gone switches the endpoint off."""

    type: str = Field(description="The event type", examples=["declaration.documents_requested"])
    timestamp: dt.datetime = Field(description="When the event happened (UTC)")
    data: EventData


class TestData(Schema):
    """The data of a `webhook.test` ping."""

    model_config = ConfigDict(extra="forbid")

    endpoint_id: str
    message: str = Field(examples=["smartgate webhook test"])


class TestMessage(Schema):
    """`POST /api/v1/webhooks/{id}/test` sends this (even to an endpoint switched off)."""

    type: Literal["webhook.test"]
    timestamp: dt.datetime
    data: TestData
