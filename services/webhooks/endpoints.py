"""HTTP endpoints of the webhooks service: a trader registers endpoints and reads what was delivered to them."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from services.kernel import pagination
from services.kernel.auth import Principal, Role
from services.kernel.deps import RuntimeDep, SessionDep, require_roles
from services.kernel.errors import NotFound
from services.kernel.responses import JSONResponse
from services.kernel.runtime import Runtime
from services.kernel.schemas import problems
from services.webhooks import service
from services.webhooks.delivery import Dispatcher
from services.webhooks.models import WebhookEndpoint
from services.webhooks.schemas import (
    DeliveryOut,
    DeliveryPage,
    WebhookIn,
    WebhookList,
    WebhookOut,
    WebhookPatch,
    WebhookWithSecret,
    delivery_json,
    endpoint_json,
)
from services.webhooks.settings import WebhookSettings

ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
SETTINGS_KEY = "webhooks.settings"
DISPATCHER_KEY = "webhooks.dispatcher"

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"])
CurrentTrader = Annotated[Principal, require_roles(Role.trader)]


def settings_of(runtime: Runtime) -> WebhookSettings:
    """The webhook settings installed for this runtime."""
    found: WebhookSettings = runtime.extras[SETTINGS_KEY]
    return found


def _wake(runtime: Runtime) -> None:
    dispatcher: Dispatcher | None = runtime.extras.get(DISPATCHER_KEY)
    if dispatcher is not None:
        dispatcher.notify()


def _endpoint(session: SessionDep, principal: Principal, endpoint_id: str) -> WebhookEndpoint:
    organisation_id = service.require_trader(principal)
    if not ID.fullmatch(endpoint_id):
        raise NotFound(f"webhook endpoint {endpoint_id[:64]} not found")
    return service.get_endpoint(session, organisation_id, endpoint_id)


@router.post(
    "",
    status_code=201,
    response_model=WebhookWithSecret,
    responses=problems(401, 403, 409, 422),
    summary="Register a webhook endpoint",
)
def create_webhook(body: WebhookIn, session: SessionDep, principal: CurrentTrader, runtime: RuntimeDep) -> JSONResponse:
    """Your declarations' events will be POSTed to `url` as JSON (`{"type", "timestamp", "data"}`), signed as
    Standard Webhooks do: verify `webhook-signature` with the returned `secret` (shown only now), refuse a
    `webhook-timestamp` older than five minutes, and dedupe by `webhook-id`. Answer 2xx within 10 s; anything else
    is retried (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h); 410 Gone switches the endpoint off."""
    cfg = settings_of(runtime)
    row = service.create_endpoint(
        session,
        organisation_id=service.require_trader(principal),
        url=body.url,
        event_types=body.event_types,
        description=body.description,
        actor=principal.actor,
        allow_private=cfg.private_targets_allowed,
        max_endpoints=cfg.webhook_max_endpoints,
    )
    return JSONResponse(endpoint_json(row, with_secret=True), status_code=201,
                        headers={"Location": f"/api/v1/webhooks/{row.id}"})  # fmt: skip


@router.get("", response_model=WebhookList, responses=problems(401, 403, 422), summary="List your webhook endpoints")
def list_webhooks(session: SessionDep, principal: CurrentTrader) -> JSONResponse:
    """Your organisation's endpoints, oldest first, and the event types there are."""
    rows = service.list_endpoints(session, service.require_trader(principal))
    return JSONResponse({"items": [endpoint_json(r) for r in rows], "event_types": list(service.EVENT_TYPES)})


@router.get(
    "/{endpoint_id}", response_model=WebhookOut, responses=problems(401, 403, 404, 422), summary="A webhook endpoint"
)
def get_webhook(endpoint_id: str, session: SessionDep, principal: CurrentTrader) -> JSONResponse:
    """One of your endpoints."""
    return JSONResponse(endpoint_json(_endpoint(session, principal, endpoint_id)))


@router.patch(
    "/{endpoint_id}",
    response_model=WebhookOut,
    responses=problems(401, 403, 404, 422),
    summary="Change a webhook endpoint",
)
def update_webhook(
    endpoint_id: str, body: WebhookPatch, session: SessionDep, principal: CurrentTrader, runtime: RuntimeDep
) -> JSONResponse:
    """Change the URL, the event types, the description, or switch it off (`active: false`) and on again. While it
    is off nothing is sent to it, and its events are not kept for later: catch up with `GET /api/v1/declarations`.
    Deliveries already queued wait and go out when it is on again."""
    row = _endpoint(session, principal, endpoint_id)
    # null means "leave it as it is", as leaving the field out does
    changes = {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None}
    row = service.update_endpoint(session, row, changes, allow_private=settings_of(runtime).private_targets_allowed)
    if changes.get("active"):
        session.commit()  # before the dispatcher looks for what was queued
        _wake(runtime)
    return JSONResponse(endpoint_json(row))


@router.delete(
    "/{endpoint_id}", status_code=204, responses=problems(401, 403, 404, 422), summary="Delete a webhook endpoint"
)
def delete_webhook(endpoint_id: str, session: SessionDep, principal: CurrentTrader) -> Response:
    """Remove the endpoint and its delivery log; nothing more is sent to it."""
    service.delete_endpoint(session, _endpoint(session, principal, endpoint_id))
    return Response(status_code=204)


@router.post(
    "/{endpoint_id}/secret",
    response_model=WebhookWithSecret,
    responses=problems(401, 403, 404, 422),
    summary="Rotate the signing secret",
)
def rotate_webhook_secret(endpoint_id: str, session: SessionDep, principal: CurrentTrader) -> JSONResponse:
    """A new secret, shown only now. For 24 hours deliveries carry two signatures, by the new and the previous
    secret, so a receiver can switch without missing one."""
    row = service.rotate_secret(session, _endpoint(session, principal, endpoint_id))
    return JSONResponse(endpoint_json(row, with_secret=True))


@router.post(
    "/{endpoint_id}/test",
    status_code=202,
    response_model=DeliveryOut,
    responses=problems(401, 403, 404, 422),
    summary="Send a test event",
)
def test_webhook(endpoint_id: str, session: SessionDep, principal: CurrentTrader, runtime: RuntimeDep) -> JSONResponse:
    """Queue a `webhook.test` event for the endpoint (sent even while it is switched off); follow it in the
    delivery log."""
    delivery = service.enqueue_test(session, _endpoint(session, principal, endpoint_id))
    session.commit()
    _wake(runtime)
    return JSONResponse(delivery_json(delivery), status_code=202,
                        headers={"Location": f"/api/v1/webhooks/{endpoint_id}/deliveries/{delivery.id}"})  # fmt: skip


@router.get(
    "/{endpoint_id}/deliveries",
    response_model=DeliveryPage,
    responses=problems(401, 403, 404, 422),
    summary="The endpoint's delivery log",
)
def list_webhook_deliveries(
    endpoint_id: str,
    session: SessionDep,
    principal: CurrentTrader,
    status: Literal["pending", "delivered", "failed"] | None = None,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> JSONResponse:
    """Every event sent or to be sent to the endpoint, newest first, with its last attempt (status code, error,
    time taken) and the next. Page with `cursor`."""
    row = _endpoint(session, principal, endpoint_id)
    after = pagination.decode_cursor(cursor) if cursor else None
    rows = service.list_deliveries(session, row, status=status, limit=limit, after=after)
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = pagination.encode_cursor(rows[-1].created_at, rows[-1].id) if more and rows else None
    return JSONResponse({"items": [delivery_json(r) for r in rows], "next_cursor": next_cursor})


@router.get(
    "/{endpoint_id}/deliveries/{delivery_id}",
    response_model=DeliveryOut,
    responses=problems(401, 403, 404, 422),
    summary="One delivery",
)
def get_webhook_delivery(
    endpoint_id: str, delivery_id: str, session: SessionDep, principal: CurrentTrader
) -> JSONResponse:
    """A delivery with its body and last attempt."""
    row = _endpoint(session, principal, endpoint_id)
    if not ID.fullmatch(delivery_id):
        raise NotFound(f"delivery {delivery_id[:64]} not found")
    return JSONResponse(delivery_json(service.get_delivery(session, row, delivery_id)))


@router.post(
    "/{endpoint_id}/deliveries/{delivery_id}/retry",
    status_code=202,
    response_model=DeliveryOut,
    responses=problems(401, 403, 404, 409, 422),
    summary="Send a delivery again",
)
def retry_webhook_delivery(
    endpoint_id: str, delivery_id: str, session: SessionDep, principal: CurrentTrader, runtime: RuntimeDep
) -> JSONResponse:
    """Send it again now, with a fresh round of attempts (also one already delivered, if your side lost it); 409 if
    it was never attempted or the endpoint is switched off."""
    row = _endpoint(session, principal, endpoint_id)
    if not ID.fullmatch(delivery_id):
        raise NotFound(f"delivery {delivery_id[:64]} not found")
    delivery = service.retry_delivery(session, row, service.get_delivery(session, row, delivery_id))
    session.commit()
    _wake(runtime)
    return JSONResponse(delivery_json(delivery), status_code=202)
