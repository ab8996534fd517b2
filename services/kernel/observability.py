"""Structured JSON logs that carry the request id, and the middleware that assigns it."""

from __future__ import annotations

import contextvars
import json
import logging
import re
import time
import uuid
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

_RESERVED = set(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per log line, with the current request id and any `extra` fields."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,  # `serve --workers N` runs several processes into one log
        }
        rid = request_id_var.get()
        if rid:
            data["request_id"] = rid
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                data[key] = value
        if record.exc_info:
            data["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str, ensure_ascii=False)


def configure_logging(level: str = "INFO", *, json_logs: bool = True) -> None:
    """Route the root logger (and uvicorn's) through one handler."""
    handler = logging.StreamHandler()
    if json_logs:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # Our middleware logs each request with its id; uvicorn's access log would repeat it without.
    logging.getLogger("uvicorn.access").disabled = True


class RequestContextMiddleware:
    """Give every request an id (or honour a sane `X-Request-ID`), echo it, and log one line per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.log = logging.getLogger("smartgate.access")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        rid = incoming if 0 < len(incoming) <= 128 and incoming.isprintable() else uuid.uuid4().hex
        token = request_id_var.set(rid)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", rid.encode("latin-1")))
                message["headers"] = headers
            await send(message)

        started_response = False

        async def tracking(message: Message) -> None:
            nonlocal started_response
            if message["type"] == "http.response.start":
                started_response = True
            await send_with_id(message)

        try:
            await self.app(scope, receive, tracking)
        except Exception:
            # Rendered here rather than by the server-error middleware outside us, so the 500 keeps its request id.
            error_id = uuid.uuid4().hex
            logging.getLogger("smartgate.errors").exception("unhandled error", extra={"error_id": error_id})
            if started_response:
                raise
            status = 500
            body = json.dumps(
                {
                    "type": "about:blank",
                    "title": "Internal server error",
                    "status": 500,
                    "detail": "An unexpected error occurred; quote the error id when reporting it.",
                    "instance": scope.get("path"),
                    "error_id": error_id,
                }
            ).encode()
            await send_with_id(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [
                        (b"content-type", b"application/problem+json"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send_with_id({"type": "http.response.body", "body": body})
        finally:
            self.log.info(
                "request",
                extra={
                    "method": scope.get("method"),
                    "path": scope.get("path"),
                    "status": status,
                    "ms": round((time.perf_counter() - started) * 1000, 2),
                },
            )
            request_id_var.reset(token)


class BodySizeLimitMiddleware:
    """Refuse bodies over the limit with 413 problem+json, whether or not Content-Length is honest."""

    def __init__(self, app: ASGIApp, max_bytes: int, uploads: tuple[str, ...] = (), upload_max_bytes: int = 0) -> None:
        self.app = app
        self.default_max = max_bytes
        # Endpoints that take files (documents, gate images) get a larger limit of their own.
        self.uploads = tuple(re.compile(p) for p in uploads)
        self.upload_max = upload_max_bytes or max_bytes

    def _limit(self, path: str) -> int:
        return self.upload_max if any(p.fullmatch(path) for p in self.uploads) else self.default_max

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit(scope.get("path", ""))
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._reject(send, limit)
            return
        received = 0
        too_large = False

        async def limited_receive() -> Message:
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    too_large = True
                    # An HTTPException passes through FastAPI's body parsing (which would turn anything else
                    # into its own 400) and is rendered as our 413 problem.
                    raise HTTPException(413, f"request body exceeds {limit} bytes")
            return message

        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except HTTPException:
            if too_large and not started:
                await self._reject(send, limit)
            else:
                raise
        except Exception:
            if too_large and not started:
                await self._reject(send, limit)
            else:
                raise

    async def _reject(self, send: Send, limit: int) -> None:
        body = json.dumps(
            {
                "type": "/problems/too-large",
                "title": "Content too large",
                "status": 413,
                "detail": f"request body exceeds {limit} bytes",
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/problem+json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
