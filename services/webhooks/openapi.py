"""The webhooks a trader's endpoint receives, declared in OpenAPI 3.1's `webhooks` section (one per event type)."""

from typing import Annotated, Any

from fastapi import APIRouter, Body, FastAPI, Header

from services.webhooks import schemas, service

SIGNATURE_HEADERS = (
    "The delivery is signed (Standard Webhooks): verify `webhook-signature` over `{webhook-id}.{webhook-timestamp}."
    "{body}` with the endpoint's secret before trusting it; see docs/webhooks.md."
)


# One line per type: what happened, for a trader's developer (the catalogue's docstrings speak to ours).
WHAT_HAPPENED: dict[str, str] = {
    "declaration.created": "A draft declaration was created (not yet lodged).",
    "declaration.submitted": "The declaration was lodged and registered: it has its number.",
    "declaration.amended": "The declaration was amended; `version` is the new version.",
    "declaration.cancelled": "The declaration was cancelled (by the trader, or by customs with a `reason`).",
    "declaration.assessed": "Selectivity and duties: the `channel` (green, yellow, red) and the duties due.",
    "declaration.documents_requested": "An officer asks for documents; `reason` says which.",
    "declaration.documents_provided": "The trader provided the documents asked for; back in review.",
    "declaration.inspection_ordered": "An officer ordered a physical inspection; `reason` says why.",
    "declaration.cleared": "Customs cleared the declaration (thông quan); duties are due if not yet paid.",
    "declaration.released": "The goods are released (giải phóng hàng): the truck may leave the gate.",
    "declaration.exited": "The truck carrying the goods left through the gate.",
    "declaration.rejected": "Customs rejected the declaration; `reason` says why.",
    "declaration.expired": "The declaration expired before it was completed.",
    "declaration.paid": "The treasury confirmed a payment (not when the trader records one).",
    "declaration.payment_rejected": "The treasury found no such money: the payment never counts.",
    "gate.read": "A gate camera saw the truck carrying the declaration's goods: what was read, how it matched and "
    "whether the truck may `proceed` or is on `hold` (with `reasons`).",
    "gate.mismatch": "What the gate read does not match the declaration (`reasons`): the truck is held for customs, "
    "and the declaration may go to review.",
    "gate.exited": "The truck carrying the released goods left through the gate.",
}


def _receiver(message: type[Any]) -> Any:
    """A documentation-only operation: what the platform POSTs, with the three signature headers."""

    def receive(
        body: Annotated[message, Body()],  # type: ignore[valid-type]
        webhook_id: Annotated[str, Header(description="The delivery's id, the same on every retry: dedupe by it")],
        webhook_timestamp: Annotated[str, Header(description="Unix seconds of this attempt")],
        webhook_signature: Annotated[
            str, Header(description="`v1,<base64 HMAC-SHA256>`; two, space-separated, during a secret rotation")
        ],
    ) -> None:  # pragma: no cover - never called: it only describes the request the receiver gets
        return None

    return receive


def webhooks_router() -> APIRouter:
    """One webhook per trader-facing event type, and the test ping, each described from the catalogue."""
    router = APIRouter()
    responses: dict[int | str, dict[str, Any]] = {
        200: {"description": "Any 2xx: delivered"},
        410: {"description": "Gone: the platform switches the endpoint off"},
        "default": {"description": "Anything else (or no answer within the timeout): retried with backoff"},
    }
    for event_type in service.EVENT_TYPES:
        router.add_api_route(
            event_type, _receiver(schemas.EventMessage), methods=["POST"], tags=["webhooks"], summary=event_type,
            description=f"{WHAT_HAPPENED[event_type]}\n\n{SIGNATURE_HEADERS}", responses=responses,
            operation_id=f"webhook_{event_type.replace('.', '_')}", status_code=200,
        )  # fmt: skip
    router.add_api_route(
        service.TEST_EVENT, _receiver(schemas.TestMessage), methods=["POST"], tags=["webhooks"],
        summary=service.TEST_EVENT, description=f"A test ping.\n\n{SIGNATURE_HEADERS}", responses=responses,
        operation_id="webhook_test", status_code=200,
    )  # fmt: skip
    return router


def install_webhooks(app: FastAPI) -> None:
    """Declare the webhooks in the app's OpenAPI document."""
    app.webhooks.include_router(webhooks_router())
