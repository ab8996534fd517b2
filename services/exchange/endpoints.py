"""HTTP endpoints of the exchange service: the inbox and outbox the partner administration calls (authenticated by
its signatures, no API key), our public key and schemas (public), partners and delivery states (staff)."""

from __future__ import annotations

import json
import re
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse as PlainJSON

from services.exchange import envelope, jws, service
from services.exchange.delivery import Dispatcher
from services.exchange.errors import ExchangeUnauthenticated
from services.exchange.schemas import (
    ExchangeInboxAnswer,
    ExchangeMessageOut,
    ExchangeMessagePage,
    ExchangeOutboxPage,
    ExchangePartnerIn,
    ExchangePartnerList,
    ExchangePartnerOut,
    ExchangePublicKeys,
    ExchangeRejectionList,
)
from services.exchange.service import Exchange
from services.kernel.auth import Principal, Role
from services.kernel.database import unit_of_work, utcnow
from services.kernel.deps import RuntimeDep, SessionDep, require_roles
from services.kernel.errors import AppError, NotFound
from services.kernel.responses import JSONResponse
from services.kernel.runtime import Runtime
from services.kernel.schemas import problems

EXCHANGE_KEY = "exchange"
DISPATCHER_KEY = "exchange.dispatcher"
PULL_TYP = "smartgate-exchange-pull+jws"
SCHEMA_FILE = re.compile(r"^([A-Za-z]{1,40})\.v([0-9]{1,3})\.json$")
# A message as it travels (header.payload.signature, base64url; shortened).
JWS_EXAMPLE = (
    "eyJhbGciOiJFZERTQSIsImtpZCI6InZuLWtpbXRoYW5oLTFhMmIzYzRkNWU2ZiIsInR5cCI6InNtYXJ0Z2F0ZS1leGNoYW5nZStqd3Mi"
    "fQ.eyJjb3JyZWxhdGlvbklkIjoiVk4tS1QtMjAyNi0wMDAxMjMifQ.c2lnbmF0dXJl"
)

router = APIRouter(prefix="/api/v1/exchange", tags=["exchange"])
CurrentAdmin = Annotated[Principal, require_roles(Role.admin)]
CurrentStaff = Annotated[Principal, require_roles(Role.admin, Role.engineer, Role.supervisor, Role.officer)]
CurrentOperator = Annotated[Principal, require_roles(Role.admin, Role.engineer)]


def exchange_of(runtime: Runtime) -> Exchange:
    """The exchange installed for this runtime."""
    found: Exchange = runtime.extras[EXCHANGE_KEY]
    return found


def _wake(runtime: Runtime) -> None:
    dispatcher: Dispatcher | None = runtime.extras.get(DISPATCHER_KEY)
    if dispatcher is not None:
        dispatcher.notify()


# ---------------------------------------------------------------------------------------------------- public


@router.get("/public-key", response_model=ExchangePublicKeys, responses=problems(422), summary="Our signing key")
def public_key(runtime: RuntimeDep) -> JSONResponse:
    """The public key our messages and receipts are signed with (JWK, Ed25519): what the partner registers."""
    ex = exchange_of(runtime)
    return JSONResponse({"administration": ex.code, "keys": [ex.signer.public_jwk()]})


@router.get("/schemas", responses=problems(422), summary="The message schemas")
def schema_index(runtime: RuntimeDep) -> JSONResponse:
    """The envelope's JSON Schema and every payload schema this side knows, by file name."""
    ex = exchange_of(runtime)
    names = ["envelope.v1", *sorted(envelope.payload_schemas(ex.types))]
    return JSONResponse({"schemas": [{"name": n, "url": f"/api/v1/exchange/schemas/{n}.json"} for n in names]})


@router.get(
    "/schemas/{file}",
    response_class=PlainJSON,
    responses={200: {"description": "A JSON Schema", "content": {"application/schema+json": {"schema": {
        "type": "object"}}}}, **problems(404, 422)},
    summary="One message schema",
)  # fmt: skip
def schema_file(file: str, runtime: RuntimeDep) -> PlainJSON:
    """A JSON Schema (Draft 2020-12): `envelope.v1.json`, `receipt.v1.json`, `preArrival.v1.json`..."""
    match = SCHEMA_FILE.fullmatch(file)
    name = f"{match.group(1)}.v{match.group(2)}" if match else ""
    if name == "envelope.v1":
        return PlainJSON(envelope.builtin_schema(name), media_type="application/schema+json")
    schema = envelope.payload_schemas(exchange_of(runtime).types).get(name)
    if schema is None:
        raise NotFound(f"no schema {file[:60]}")
    return PlainJSON(schema, media_type="application/schema+json")


# ---------------------------------------------------------------------------------------------------- the partner


async def _token_of(request: Request) -> str:
    body = await request.body()
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/jose":
        try:
            return body.decode("ascii")
        except UnicodeDecodeError as exc:
            raise AppError("a compact JWS is ASCII", code="exchange.malformed") from exc
    if kind in ("application/json", "application/jose+json"):
        try:
            data = json.loads(body)
        except ValueError as exc:
            raise AppError("the body is not JSON", code="exchange.malformed") from exc
        if isinstance(data, dict) and isinstance(data.get("jws"), str):
            return str(data["jws"])
        raise AppError('send {"jws": "<compact JWS>"} or the JWS itself as application/jose',
                       code="exchange.malformed")  # fmt: skip
    raise AppError('send the compact JWS as application/jose (or JSON {"jws": ...})', code="exchange.content_type")


@router.post(
    "/inbox",
    response_model=ExchangeInboxAnswer,
    responses=problems(400, 401, 409, 422, 429),
    summary="Receive a message from the partner",
    openapi_extra={"requestBody": {"required": True, "content": {
        "application/jose": {"schema": {"type": "string", "description": "A compact JWS (EdDSA)."},
                             "example": JWS_EXAMPLE},
        "application/json": {"schema": {"type": "object", "required": ["jws"], "properties": {
            "jws": {"type": "string", "description": "A compact JWS (EdDSA)."}}}, "example": {"jws": JWS_EXAMPLE}},
    }}},
)  # fmt: skip
async def inbox(request: Request, runtime: RuntimeDep) -> JSONResponse:
    """The partner pushes one signed message (compact JWS, `application/jose`). Checked: the key (`kid`) is a
    registered partner's, the signature verifies, the sender is that partner, the recipient is us, `createdAt` is
    not in the future beyond the skew nor older than the replay window, the message fits its schema. Answer: our
    signed receipt. A message id sent again answers the same receipt (one effect); the same id with another body
    is a replay (409). Every refusal is recorded."""
    from starlette.concurrency import run_in_threadpool

    token = await _token_of(request)
    remote = request.client.host if request.client else None
    received = await run_in_threadpool(service.receive, runtime.sessions, exchange_of(runtime), token,
                                       remote=remote)  # fmt: skip
    runtime.relay.notify()
    return JSONResponse(received.json())


def _pull_partner(runtime: Runtime, authorization: str | None) -> str:
    """The partner a pull request is from: `Authorization: Exchange <JWS>` signed by one of its keys over
    `{"sub": <its code>, "aud": <our code>, "iat": <unix seconds>}`, made within the skew."""
    ex = exchange_of(runtime)
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "exchange" or not token:
        raise ExchangeUnauthenticated(
            "send Authorization: Exchange <JWS signed by your key>", code="exchange.pull_auth"
        )
    try:
        header = jws.header_of(token.strip())
        with unit_of_work(runtime.read_sessions) as session:
            found = service.partner_key(session, header["kid"])
            if found is None:
                raise ExchangeUnauthenticated("no registered partner has this key", code="exchange.unknown_key")
            partner, key = found[0].code, found[1]
        claims = json.loads(jws.verify(token.strip(), jws.public_key(key), typ=PULL_TYP))
    except (jws.JwsError, ValueError) as exc:
        raise ExchangeUnauthenticated(f"the pull token does not verify: {exc}", code="exchange.pull_auth") from exc
    now = utcnow().timestamp()
    if (not isinstance(claims, dict) or claims.get("sub") != partner or claims.get("aud") != ex.code
            or not isinstance(claims.get("iat"), int)
            or abs(now - claims["iat"]) > ex.settings.exchange_clock_skew_seconds):  # fmt: skip
        raise ExchangeUnauthenticated("the pull token is not for us, not from its key's partner, or not fresh",
                                      code="exchange.pull_auth")  # fmt: skip
    return partner


def pull_token(signer: jws.Signer, *, sender: str, recipient: str) -> str:
    """The Authorization token a partner pulls with (what our own pull client sends)."""
    claims = {"sub": sender, "aud": recipient, "iat": int(utcnow().timestamp())}
    return signer.sign(envelope.canonical(claims), typ=PULL_TYP)


@router.get("/outbox", response_model=ExchangeOutboxPage, responses=problems(401, 422), summary="Pull our messages")
def outbox(
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    after: Annotated[int, Query(ge=0, description="The `next` of the previous page (0: from the start).")] = 0,
    limit: Annotated[int, Query(ge=1, le=200)] = 100,
) -> JSONResponse:
    """For the partner when our pushes do not reach it: our messages to it, in order, signed as pushed. Post each
    receipt to our inbox as a `receipt` message. Authenticated by `Authorization: Exchange <JWS>` (see docs)."""
    partner = _pull_partner(runtime, request.headers.get("authorization"))
    rows = service.list_messages(session, direction="out", partner=partner, after=after, limit=limit)
    more = len(rows) > limit
    rows = rows[:limit]
    items = [{"cursor": r.seq, "messageId": r.message_id, "state": r.state, "jws": r.jws} for r in rows]
    return JSONResponse({"items": items, "next": rows[-1].seq if more and rows else None})


# ---------------------------------------------------------------------------------------------------- staff


@router.post("/partners", response_model=ExchangePartnerOut, status_code=201, responses=problems(401, 403, 409, 422),
             summary="Register a partner or replace its keys")  # fmt: skip
def save_partner(
    body: ExchangePartnerIn, session: SessionDep, principal: CurrentAdmin, runtime: RuntimeDep
) -> JSONResponse:
    """Register the partner administration (201) or change it (200): its name, base URL, public keys (a rotation
    lists the new key and, until the partner has switched, the old one) and whether it is active."""
    row, created = service.save_partner(session, exchange_of(runtime), code=body.code, name=body.name,
                                        base_url=body.baseUrl, keys=body.keys, active=body.active,
                                        actor=principal.actor)  # fmt: skip
    return JSONResponse(service.partner_json(row), status_code=201 if created else 200)


@router.get("/partners", response_model=ExchangePartnerList, responses=problems(401, 403, 422), summary="The partners")
def list_partners(session: SessionDep, principal: CurrentStaff) -> JSONResponse:
    """Every registered partner administration with its keys."""
    return JSONResponse({"items": [service.partner_json(r) for r in service.list_partners(session)]})


@router.get(
    "/partners/{code}", response_model=ExchangePartnerOut, responses=problems(401, 403, 404, 422), summary="A partner"
)
def get_partner(code: str, session: SessionDep, principal: CurrentStaff) -> JSONResponse:
    """One partner."""
    return JSONResponse(service.partner_json(service.get_partner(session, code)))


@router.get("/messages", response_model=ExchangeMessagePage, responses=problems(401, 403, 422),
            summary="Messages and their delivery states")  # fmt: skip
def list_messages(
    session: SessionDep,
    principal: CurrentStaff,
    direction: Annotated[str | None, Query(pattern="^(in|out)$")] = None,
    partner: Annotated[str | None, Query(max_length=32)] = None,
    state: Annotated[str | None, Query(max_length=24)] = None,
    type: Annotated[str | None, Query(max_length=32)] = None,
    correlation_id: Annotated[str | None, Query(max_length=64)] = None,
    after: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> JSONResponse:
    """Sent and received messages in the order they were stored, filtered; page with `after`."""
    rows = service.list_messages(session, direction=direction, partner=partner, state=state, type=type,
                                 correlation_id=correlation_id, after=after, limit=limit)  # fmt: skip
    more = len(rows) > limit
    rows = rows[:limit]
    return JSONResponse({"items": [service.message_json(r) for r in rows],
                         "next": rows[-1].seq if more and rows else None})  # fmt: skip


@router.get("/messages/{ident}", response_model=ExchangeMessageOut, responses=problems(401, 403, 404, 422),
            summary="One message")  # fmt: skip
def get_message(ident: str, session: SessionDep, principal: CurrentStaff) -> JSONResponse:
    """A message by id or messageId, with its JWS and its receipt's."""
    return JSONResponse(service.message_json(service.get_message(session, ident), with_jws=True))


@router.post("/messages/{ident}/retry", response_model=ExchangeMessageOut, status_code=202,
             responses=problems(401, 403, 404, 409, 422), summary="Push a message again now")  # fmt: skip
def retry_message(ident: str, session: SessionDep, principal: CurrentOperator, runtime: RuntimeDep) -> JSONResponse:
    """Make a sent, unacknowledged message due now (after the partner fixed what made it refuse, or came back)."""
    row = service.retry(session, service.get_message(session, ident))
    body = service.message_json(row)
    session.commit()
    _wake(runtime)
    return JSONResponse(body, status_code=202)


@router.get("/rejections", response_model=ExchangeRejectionList, responses=problems(401, 403, 422),
            summary="Messages refused at the inbox")  # fmt: skip
def list_rejections(session: SessionDep, principal: CurrentStaff,
                    limit: Annotated[int, Query(ge=1, le=200)] = 50) -> JSONResponse:  # fmt: skip
    """What was refused, newest first: the partner and key claimed, the code and reason, the hash of the JWS."""
    return JSONResponse({"items": [service.rejection_json(r) for r in service.list_rejections(session, limit=limit)]})
