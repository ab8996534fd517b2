"""The C2SP tlog-witness HTTP interface: `POST /add-checkpoint` on a Starlette app, served by uvicorn."""

from __future__ import annotations

import json

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from ledger.witness import SIZE_CONTENT_TYPE, Witness, WitnessRequestError

MAX_REQUEST_BYTES = 64 * 1024
PROBLEM_JSON = "application/problem+json"
_TITLES = {
    400: "Bad request",
    403: "Forbidden",
    404: "Not found",
    409: "Conflict",
    413: "Content too large",
    422: "Unprocessable content",
}


def _problem(status: int, detail: str) -> Response:
    """An RFC 9457 problem document (the spec fixes only the status codes and the 409 size body)."""
    body = {"type": "about:blank", "title": _TITLES.get(status, "Error"), "status": status, "detail": detail}
    return Response(json.dumps(body), status_code=status, media_type=PROBLEM_JSON)


def create_witness_app(witness: Witness) -> Starlette:
    """Return the ASGI app of one witness."""

    async def add_checkpoint(request: Request) -> Response:
        body = await request.body()
        if len(body) > MAX_REQUEST_BYTES:
            return _problem(413, f"request larger than {MAX_REQUEST_BYTES} bytes")
        try:
            lines = await run_in_threadpool(witness.add_checkpoint, body)
        except WitnessRequestError as exc:
            if exc.status == 409 and exc.size is not None:
                # Exactly this content type (no charset parameter), as the spec requires.
                return Response(f"{exc.size}\n".encode(), status_code=409, headers={"content-type": SIZE_CONTENT_TYPE})
            return _problem(exc.status, str(exc))
        return PlainTextResponse(lines)

    async def public_key(request: Request) -> Response:
        return PlainTextResponse(witness.cosigner.verifier.vkey + "\n")

    return Starlette(
        routes=[
            Route("/add-checkpoint", add_checkpoint, methods=["POST"]),
            Route("/public-key", public_key, methods=["GET"]),
        ]
    )
