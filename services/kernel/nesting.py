"""Bounds on how deeply nested a request's JSON (or an admin's YAML) may be, checked before any parser recurses.

Python's `json` parser recurses once per nesting level in C. Its only guard is the interpreter's recursion limit,
which some libraries raise process-wide as they load (py_ecc and py-evm set it to 100,000), and 100,000 levels then
overflow the C stack: one 200 KB body of `[[[[…` killed the whole process. So every JSON body is measured before
the framework parses it, without recursion and in time linear in its size, and anything deeper than `MAX_DEPTH`
is refused with 400 problem+json (`code: json.too_deep`). No declaration, webhook or rule set comes near the bound:
the deepest document the API takes is about 5 levels.

PyYAML's pure-Python loader has no bound at all and spends quadratic time on deep flow collections (5,000 levels
took 12–44 s of CPU before failing), so rule sets are measured on the parser's event stream, which stops at the
first level past the bound.
"""

from __future__ import annotations

import json
import re
from array import array
from itertools import accumulate

import yaml
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.kernel.errors import problem, problem_language

MAX_DEPTH = 64

# A JSON string: the brackets inside it are text, not structure.
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
# Keep only brackets; then openers become +1 and closers -1 (as signed bytes).
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")


def json_depth_exceeds(body: bytes, limit: int = MAX_DEPTH) -> bool:
    """Whether a JSON text nests arrays and objects deeper than `limit` (malformed text is measured the same way)."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False  # the common case: too few brackets to nest that deep, whatever the strings hold
    brackets = _STRING.sub(b"", body).translate(None, _NOT_BRACKETS)
    if len(brackets) <= limit:
        return False
    # Running depth after each bracket; its maximum is the nesting depth (an unclosed string only makes it larger).
    return max(accumulate(array("b", brackets.translate(_STEPS)))) > limit


def yaml_depth_exceeds(text: str, limit: int = MAX_DEPTH) -> bool:
    """Whether a YAML document nests collections deeper than `limit`; a YAML syntax error is left to the loader."""
    depth = 0
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > limit:
                    return True
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except yaml.YAMLError:
        return False
    return False


def _is_json(content_type: str) -> bool:
    """FastAPI parses a body as JSON when it has no content type, or a `json` or `+json` one."""
    media = content_type.split(";", 1)[0].strip().lower()
    return not media or media.endswith(("/json", "+json"))


class JsonDepthMiddleware:
    """Refuse JSON bodies nested deeper than `max_depth` with 400 problem+json, before anything parses them.

    It reads the whole body (the body size limit, outside it, bounds that) and hands the same bytes on.
    """

    def __init__(self, app: ASGIApp, max_depth: int = MAX_DEPTH) -> None:
        self.app = app
        self.max_depth = max_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") in ("GET", "HEAD", "OPTIONS", "DELETE"):
            await self.app(scope, receive, send)
            return
        content_type = ""
        for name, value in scope.get("headers") or []:
            if name == b"content-type":
                content_type = value.decode("latin-1")
                break
        if not _is_json(content_type):
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        chunks: list[bytes] = []
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break  # the client went away: let the app see it
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if json.detect_encoding(body) not in ("utf-8", "utf-8-sig"):
            # Python's parser would decode UTF-16 and UTF-32 too, past a depth check that reads UTF-8 brackets.
            # RFC 8259 §8.1: JSON exchanged between systems is UTF-8.
            response = problem(
                400,
                "JSON must be UTF-8",
                "the body looks like UTF-16 or UTF-32; send JSON encoded as UTF-8 (RFC 8259, section 8.1)",
                type_slug="json-not-utf8",
                instance=scope.get("path"),
                language=problem_language(Headers(scope=scope)),
                code="json.not_utf8",
            )
            await response(scope, receive, send)
            return
        if json_depth_exceeds(body, self.max_depth):
            response = problem(
                400,
                "JSON nested too deeply",
                f"arrays and objects may be nested at most {self.max_depth} levels deep",
                type_slug="json-too-deep",
                instance=scope.get("path"),
                language=problem_language(Headers(scope=scope)),
                code="json.too_deep",
            )
            await response(scope, receive, send)
            return

        async def replay() -> Message:
            if messages:
                return messages.pop(0)
            return await receive()

        await self.app(scope, replay, send)
