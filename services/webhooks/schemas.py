"""Request and response bodies of the webhooks API."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field

from services.kernel.schemas import InputSchema, Schema
from services.webhooks.models import WebhookDelivery, WebhookEndpoint

Url = Annotated[
    str,
    Field(
        min_length=8,
        max_length=2048,
        description="https:// URL that receives POSTs",
        examples=["https://erp.example.vn/hooks/smartgate"],
    ),
]
Description = Annotated[
    str,
    Field(
        max_length=200,
        description="Your label for the endpoint (up to 200 characters)",
        examples=["ERP: customs status"],
    ),
]
EventTypes = Annotated[
    list[Annotated[str, Field(max_length=64)]],
    Field(
        max_length=20,
        description="Event types to send (empty: every declaration event)",
        examples=[["declaration.assessed", "declaration.released"]],
    ),
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

    url: Url | None = Field(None, description="New https:// URL that receives the POSTs.")
    event_types: EventTypes | None = Field(None, description="New list of event types (empty: every one).")
    description: Description | None = Field(None, description="New label for the endpoint.")
    active: bool | None = Field(None, description="false pauses deliveries; true resumes them (also after a 410).")


class WebhookOut(Schema):
    """A registered endpoint (its secret is shown only when made or rotated)."""

    id: str = Field(description="Identifier of the endpoint (UUID).", examples=["0192f0c4-7d55-7a3e-9c1b-3b8f4e2a9d10"])
    url: str = Field(
        description="The https:// URL that receives the POSTs.", examples=["https://erp.example.vn/hooks/smartgate"]
    )
    description: str = Field(description="Your label for the endpoint.", examples=["ERP: customs status"])
    event_types: list[str] = Field(
        description="Event types sent to it (empty: every declaration event).",
        examples=[["declaration.assessed", "declaration.released"]],
    )
    active: bool = Field(description="Whether deliveries are sent (false: paused by you or switched off on 410).")
    disabled_reason: str | None = Field(
        description="Why the platform switched it off (410 Gone), if it did",
        examples=["the endpoint answered 410 Gone"],
    )
    created_at: dt.datetime = Field(
        description="When it was registered (ISO 8601, UTC offset).", examples=["2026-11-28T08:31:12+07:00"]
    )
    updated_at: dt.datetime = Field(
        description="When it last changed (ISO 8601, UTC offset).", examples=["2026-11-28T08:31:12+07:00"]
    )


class WebhookWithSecret(WebhookOut):
    """An endpoint with its signing secret: store it now, it is not shown again."""

    secret: str = Field(
        description="whsec_… secret: verify `webhook-signature` with it (Standard Webhooks)",
        examples=["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
    )
    previous_secret_valid_until: dt.datetime | None = Field(
        description="After a rotation the previous secret also signs until then",
        examples=["2026-11-29T08:31:12+07:00"],
    )


class WebhookList(Schema):
    """The organisation's endpoints."""

    items: list[WebhookOut] = Field(description="Your organisation's endpoints.")
    event_types: list[str] = Field(
        description="Every event type an endpoint can receive",
        examples=[["declaration.submitted", "declaration.assessed", "declaration.released"]],
    )


class DeliveryOut(Schema):
    """One event sent (or to be sent) to one endpoint, with its last attempt."""

    id: str = Field(
        description="Also the `webhook-id` header: the same on every retry, so receivers can dedupe",
        examples=["0192f0c5-1b2c-7d3e-8f40-5a6b7c8d9e0f"],
    )
    event_id: str = Field(
        description="The platform event delivered (UUID).", examples=["0192f0c4-7d55-7a3e-9c1b-3b8f4e2a9d10"]
    )
    event_type: str = Field(description="Its type.", examples=["declaration.released"])
    status: Literal["pending", "delivered", "failed"] = Field(
        description="`pending` (to be sent or retried), `delivered` (a 2xx answer), `failed` (retries exhausted or "
        "410 Gone)."
    )
    attempts: int = Field(description="Attempts made so far.", examples=[1])
    next_attempt_at: dt.datetime | None = Field(
        description="When the next attempt is due; null unless pending.", examples=["2026-11-28T08:36:12+07:00"]
    )
    last_attempt_at: dt.datetime | None = Field(
        description="When it was last attempted; null before the first.", examples=["2026-11-28T08:31:12+07:00"]
    )
    last_status_code: int | None = Field(
        description="HTTP status your endpoint answered last; null if none.", examples=[200]
    )
    last_error: str | None = Field(
        description="Why the last attempt failed (timeout, refused, status), if it did.",
        examples=["timed out after 10 s"],
    )
    last_duration_ms: int | None = Field(description="How long the last attempt took, in milliseconds.", examples=[120])
    created_at: dt.datetime = Field(
        description="When the delivery was queued (ISO 8601, UTC offset).", examples=["2026-11-28T08:31:12+07:00"]
    )
    delivered_at: dt.datetime | None = Field(
        description="When it was delivered; null until then.", examples=["2026-11-28T08:31:12+07:00"]
    )
    payload: dict[str, Any] = Field(
        description="The body sent: type, timestamp and data",
        examples=[
            {
                "type": "declaration.released",
                "timestamp": "2026-11-28T01:31:12Z",
                "data": {
                    "declaration_id": "0192f0c4-7d55-7a3e-9c1b-3b8f4e2a9d10",
                    "number": "KT-2026-000123",
                    "status": "released",
                    "links": {"declaration": "/api/v1/declarations/0192f0c4-7d55-7a3e-9c1b-3b8f4e2a9d10"},
                },
            }
        ],
    )


class DeliveryPage(Schema):
    """A page of deliveries, newest first; pass `next_cursor` as `cursor` for the next."""

    items: list[DeliveryOut] = Field(description="The deliveries of this page, newest first.")
    next_cursor: str | None = Field(
        description="Opaque cursor of the next page; null on the last page.",
        examples=["MjAyNi0xMS0yOFQwMTozMToxMiswMDowMA"],
    )


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
                     "container_not_on_declaration", "seal_mismatch", "one_substitution_match",
                     "pallet_not_on_declaration", "pallet_unknown"]  # fmt: skip


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

    declaration_id: str = Field(
        description="The declaration's id (UUID)", examples=["0192f0c4-7d55-7a3e-9c1b-3b8f4e2a9d10"]
    )
    number: str | None = Field(
        description="Its customs number once registered (KT-YYYY-NNNNNN), else null", examples=["KT-2026-000123"]
    )
    status: str | None = Field(
        None,
        description="Its status after the event (every type but `assessed`, `paid`, `payment_rejected`)",
        examples=["awaiting_documents"],
    )
    version: int | None = Field(
        None, description="The version of the declaration the event concerns", ge=1, examples=[1]
    )
    channel: Literal["green", "yellow", "red"] | None = Field(
        None, description="`declaration.assessed` only: the selectivity channel (phân luồng)"
    )
    duties_total_vnd: int | None = Field(
        None, description="`declaration.assessed` only: duties and taxes due, VND", examples=[12192000]
    )
    duties_assessed: bool | None = Field(
        None, description="`declaration.assessed` only: false when no exchange rate or tariff allowed assessing them"
    )
    payment_id: str | None = Field(
        None,
        description="`declaration.payment_rejected` only: the payment refused",
        examples=["0192f0c4-7d55-7a3e-9c1b-3b8f4e2a9d10"],
    )
    amount_vnd: int | None = Field(
        None, description="`paid`, `payment_rejected`: the payment's amount, VND", examples=[12192000]
    )
    paid_vnd: int | None = Field(
        None, description="`declaration.paid` only: confirmed payments in all, VND", examples=[12192000]
    )
    due_vnd: int | None = Field(None, description="`declaration.paid` only: what remains due, VND", examples=[0])
    reason: str | None = Field(
        None,
        description="Officer decisions, cancellations, expiry and refused payments: why, as recorded",
        examples=["documents consistent with the goods"],
    )
    gate_event_id: str | None = Field(
        None, description="`gate.*` only: the gate event (UUID)", examples=["0192f0c4-7d55-7a3e-9c1b-3b8f4e2a9d11"]
    )
    lane: str | None = Field(None, description="`gate.*` only: the gate lane the truck passed", examples=["OUT-1"])
    direction: Literal["in", "out"] | None = Field(
        None, description="`gate.*` only: `in`, entering the control zone; `out`, leaving it"
    )
    taken_at: dt.datetime | None = Field(
        None, description="`gate.*` only: when the camera saw the truck", examples=["2026-11-28T08:30:00+07:00"]
    )
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
    links: DeclarationLinks = Field(description="Where to read more in this API.")


class EventMessage(Schema):
    """The body of every delivery (Standard Webhooks shape). Headers: `webhook-id` (the same on every retry:
    dedupe by it), `webhook-timestamp` (Unix seconds of this attempt) and `webhook-signature` (`v1,<base64
    HMAC-SHA256>` of `{id}.{timestamp}.{body}` with the endpoint's secret; two, space-separated, during a rotation).
    Answer 2xx within 10 s; anything else is retried with backoff, 410 Gone switches the endpoint off."""

    type: str = Field(description="The event type", examples=["declaration.documents_requested"])
    timestamp: dt.datetime = Field(description="When the event happened (UTC)", examples=["2026-11-28T01:31:12Z"])
    data: EventData = Field(description="What happened to which declaration.")


class TestData(Schema):
    """The data of a `webhook.test` ping."""

    model_config = ConfigDict(extra="forbid")

    endpoint_id: str = Field(
        description="The endpoint pinged (UUID).", examples=["0192f0c4-7d55-7a3e-9c1b-3b8f4e2a9d10"]
    )
    message: str = Field(description="A fixed text.", examples=["smartgate webhook test"])


class TestMessage(Schema):
    """`POST /api/v1/webhooks/{id}/test` sends this (even to an endpoint switched off)."""

    type: Literal["webhook.test"] = Field(description="Always `webhook.test`.")
    timestamp: dt.datetime = Field(description="When the ping was sent (UTC).", examples=["2026-11-28T01:31:12Z"])
    data: TestData = Field(description="Which endpoint was pinged.")
