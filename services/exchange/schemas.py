"""Request and response shapes of the exchange API (OpenAPI): partners, messages and their delivery states."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field

from services.kernel.schemas import InputSchema, Schema

KID = "cn-hekou-3f9a1c2b7d10"
JWK_EXAMPLE: Any = {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", "kid": KID}
MESSAGE_EXAMPLE: Any = {
    "id": "0c6e8a1e-7d55-4a3e-9c1b-3b8f4e2a9d10",
    "messageId": "5b7f0c1e-2f4d-4a8b-9d3e-6a1b2c3d4e5f",
    "direction": "out",
    "partner": "cn-hekou",
    "type": "preArrival",
    "correlationId": "VN-KT-2026-000123",
    "sequence": 1,
    "state": "acknowledged",
    "receiptStatus": "accepted",
    "reasons": [],
    "attempts": 1,
    "nextAttemptAt": None,
    "lastError": None,
    "jwsSha256": "sha256:" + "ab" * 32,
    "createdAt": "2026-12-03T18:00:00.120Z",
    "deliveredAt": "2026-12-03T18:00:00.410Z",
    "acknowledgedAt": "2026-12-03T18:00:00.410Z",
    "cursor": 42,
}


class ExchangePartnerIn(InputSchema):
    """A partner administration to exchange with (or new keys for one: a key rotation replaces the list)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"code": "cn-hekou", "name": "Hekou Customs", "baseUrl":
                                         "https://exchange.hekou.example", "keys": [JWK_EXAMPLE], "active": True}]},
    )  # fmt: skip

    code: str = Field(description="The partner's administration code.", min_length=1, max_length=32)
    name: str = Field(description="Its name, for people.", min_length=1, max_length=200)
    baseUrl: str = Field(description="Its platform's base URL; its inbox is <baseUrl>/api/v1/exchange/inbox.",
                         max_length=2048)  # fmt: skip
    keys: list[dict[str, Any]] = Field(description="Its public Ed25519 keys as JWKs with kid (its "
                                       "GET /api/v1/exchange/public-key).", min_length=1, max_length=5)  # fmt: skip
    active: bool = Field(default=True, description="Whether messages are sent to and taken from it.")


class ExchangePartnerOut(Schema):
    """A registered partner."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"code": "cn-hekou", "name": "Hekou Customs",
        "baseUrl": "https://exchange.hekou.example", "keys": [JWK_EXAMPLE], "active": True,
        "createdAt": "2026-12-03T18:00:00Z", "updatedAt": "2026-12-03T18:00:00Z"}]})  # fmt: skip

    code: str = Field(description="The partner's administration code.")
    name: str = Field(description="Its name.")
    baseUrl: str = Field(description="Its platform's base URL.")
    keys: list[dict[str, Any]] = Field(description="Its public keys (JWK).")
    active: bool = Field(description="Whether messages are exchanged with it.")
    createdAt: str = Field(description="When it was registered (RFC 3339).")
    updatedAt: str = Field(description="When it was last changed.")


class ExchangePartnerList(Schema):
    """The partners."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"items": []}]})

    items: list[ExchangePartnerOut] = Field(description="Every partner, by code.")


class ExchangeMessageOut(Schema):
    """A message sent or received, with its delivery state (as the ePhyto Hub reports them)."""

    model_config = ConfigDict(json_schema_extra={"examples": [MESSAGE_EXAMPLE]})

    id: str = Field(description="The row's id.")
    messageId: str = Field(description="The envelope's messageId.")
    direction: str = Field(description="out: we sent it; in: we received it.")
    partner: str = Field(description="The other administration.")
    type: str = Field(description="preArrival, originCertificate, crossing, controlResult or receipt.")
    correlationId: str = Field(description="The consignment.")
    sequence: int = Field(description="Its place among the consignment's messages to the partner (sent; 0 received).")
    state: str = Field(description="Sent: queued, retrying, delivered, acknowledged, failed. Received: accepted, "
                       "acceptedWithWarnings, rejected (our receipt), recorded (a receipt).")  # fmt: skip
    receiptStatus: str | None = Field(description="The receipt's status (the partner's for a sent message, ours for "
                                      "a received one).")  # fmt: skip
    reasons: list[dict[str, Any]] = Field(description="The receipt's reasons or warnings.")
    attempts: int = Field(description="Pushes made so far (sent messages).")
    nextAttemptAt: str | None = Field(description="When the next push is due.")
    lastError: str | None = Field(description="What went wrong at the last push.")
    jwsSha256: str = Field(description="sha256:<hex> of the JWS (what both ledgers hold).")
    createdAt: str = Field(description="When it was stored.")
    deliveredAt: str | None = Field(description="When the partner took it (sent) or it arrived (received).")
    acknowledgedAt: str | None = Field(description="When the receipt was made or received.")
    cursor: int = Field(description="Position in the store (the `after` of the next page).")
    jws: str | None = Field(default=None, description="The compact JWS (one message only).")
    receipt: str | None = Field(default=None, description="The receipt's compact JWS (one message only).")


class ExchangeMessagePage(Schema):
    """A page of messages."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"items": [MESSAGE_EXAMPLE], "next": None}]})

    items: list[ExchangeMessageOut] = Field(description="Messages in the order they were stored.")
    next: int | None = Field(description="The `after` of the next page; null on the last page.")


class ExchangeInboxAnswer(Schema):
    """What the inbox answers: the receipt of the message (or that a receipt was recorded)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"messageId": "5b7f0c1e-2f4d-4a8b-9d3e-6a1b2c3d4e5f",
        "status": "accepted", "duplicate": False, "receipt": "eyJhbGciOiJFZERTQSJ9.eyJ9.c2ln"}]})  # fmt: skip

    messageId: str = Field(description="The messageId received.")
    status: str = Field(description="The receipt's status, or `recorded` for a receipt received.")
    duplicate: bool = Field(description="Whether this message had been received before (same answer, one effect).")
    receipt: str | None = Field(default=None, description="Our signed receipt (compact JWS).")


class ExchangePublicKeys(Schema):
    """Our administration and the public keys our messages are signed with."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"administration": "vn-kimthanh",
        "keys": [JWK_EXAMPLE | {"kid": "vn-kimthanh-1a2b3c4d5e6f"}]}]})  # fmt: skip

    administration: str = Field(description="Our administration code (the `sender` of our messages).")
    keys: list[dict[str, Any]] = Field(description="Public JWKs (Ed25519) with kid.")


class ExchangeOutboxPage(Schema):
    """Our messages to the calling partner, for it to pull when pushes fail."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"items": [{"cursor": 42, "jws": "eyJ...",
        "state": "retrying"}], "next": None}]})  # fmt: skip

    items: list[dict[str, Any]] = Field(description="{cursor, messageId, state, jws} in order.")
    next: int | None = Field(description="The `after` of the next page.")


class ExchangeRejectionList(Schema):
    """Messages refused at the inbox."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"items": [{"id": "0c6e8a1e-7d55-4a3e-9c1b-"
        "3b8f4e2a9d10", "at": "2026-12-03T18:00:00Z", "partner": "cn-hekou", "kid": KID, "messageId": None,
        "code": "exchange.signature_invalid", "status": 401, "detail": "the signature does not verify",
        "jwsSha256": "sha256:" + "ab" * 32, "remote": "127.0.0.1"}]}]})  # fmt: skip

    items: list[dict[str, Any]] = Field(description="Newest first: who (partner, kid), why (code, detail), the hash.")
