"""The catalogue of problem types and codes: what `type` and `code` in a problem+json answer mean.

Every problem the platform answers has a `type` URI (`/problems/{slug}`, served here as a page a developer can
open) and often a `code`, stable and finer than the type (`decision.duties_unassessed`), also inside `errors[]`
of a 422. Both are collected from the code itself, not kept by hand: the problem classes (`AppError` and its
subclasses) give the types with their status and title, and a scan of the source finds every code written where a
problem is raised. `docs/errors.md` is generated from here (`python -m api.problems > docs/errors.md`; a test fails
when it is stale, or when a type has no description below).
"""

from __future__ import annotations

import ast
import html
import importlib
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from services.kernel import dbfaults
from services.kernel.errors import PROBLEM_TYPE_BASE, AppError, problem

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("services", "api")

# What each type means and what to do about it: the one part written by hand (a test fails on a type without it).
DESCRIPTIONS: dict[str, str] = {
    "bad-request": "The request cannot be read as sent (a malformed parameter or header). Fix it and send it again.",
    "unauthorized": "No API key, or one that is unknown, revoked or expired. Send `Authorization: Bearer sg_…`.",
    "forbidden": "The key is valid but its role or organisation may not do this (a trader acting on another "
    "organisation's declaration, an officer deciding without being assigned).",
    "not-found": "No such resource, or one the key may not see: another organisation's declaration answers 404, "
    "not 403, so that its existence is not disclosed.",
    "conflict": "The request contradicts what is stored (a duplicate, a state that does not allow it). Read the "
    "resource again; `code` says which conflict.",
    "illegal-transition": "The action is not allowed in the declaration's current status; the answer lists "
    "`current_status` and `allowed_actions`.",
    "concurrent-change": "Another request changed the same resource at the same time. Read it again and retry.",
    "precondition-failed": "`If-Match` names a version that is no longer current: someone changed the resource "
    "since you read it. Read it again (new `ETag`) and decide again.",
    "precondition-required": "This change must name the version it was decided on: send `If-Match` with the "
    "`ETag` you read.",
    "idempotency-key-required": "A request that creates something must carry `Idempotency-Key` (any unique "
    "string), so that a retry after a timeout takes effect once.",
    "validation": "The body or parameters are well formed but not valid. `errors[]` lists each problem with a JSON "
    "Pointer to the value (`pointer`), a stable `code` and a `detail` in words; a body that is not JSON at all is "
    "one error with `line` and `column`.",
    "json-not-utf8": "The JSON body is not UTF-8 (RFC 8259 requires it). Send it encoded as UTF-8.",
    "json-too-deep": "The JSON body nests deeper than the platform reads (arrays and objects inside each other). No "
    "declaration needs that depth.",
    "too-large": "The body or an upload is larger than the limit named in `detail`.",
    "rate-limited": "Too many requests for this API key in the last minute. Wait for `Retry-After` seconds.",
    "unavailable": "A dependency of this request (storage, the chain, a partner service) does not answer. Nothing "
    "was changed; retry later.",
    "busy": "The gate's image reader has too many images waiting. Retry after `Retry-After` seconds.",
    "database-unavailable": "The database did not answer. `code` says whether nothing was stored "
    "(`database.unavailable`) or the outcome of a commit is unknown (`database.commit_unknown`: retry with the "
    "same `Idempotency-Key`, or read the resource).",
    "epcis-invalid": "The EPCIS document or event does not conform to the EPCIS 2.0 JSON schema, the CBV 2.0 "
    "vocabularies or GS1 identifier rules (check digits). `errors[]` points at each problem; nothing of the "
    "document was stored (it is accepted or refused whole).",
    "epcis-query": "An EPCIS query parameter is unknown or malformed (a time that is not ISO 8601, a page token "
    "that was not issued here). See docs/traceability.md for the parameters.",
    "insufficient-storage": "The platform's file storage is full; the upload was not stored. Retry later.",
    "exchange-unauthenticated": "The partner administration's message is not signed by a key registered for it "
    "(`exchange.unknown_key`), its signature does not verify (forged or changed on the way: "
    "`exchange.signature_invalid`), or its sender is not the key's owner. Refused and recorded; nothing of it was "
    "stored. See docs/exchange.md.",
    "exchange-refused": "A verified message this side does not take: not addressed to us, created too far in the "
    "future (clock skew), not in RFC 8785 form, or not valid against its JSON Schema (`errors[]` points into the "
    "message). Refused and recorded; nothing of it was stored.",
    "exchange-replay": "The message id was received before with another body, or the message is older than the "
    "replay window. Refused and recorded. A message sent again unchanged is not a replay: it gets its receipt again.",
    "exchange-rate-limited": "The partner sends more messages per minute than agreed. Wait `Retry-After` seconds; "
    "the messages are not lost on the sending side (they stay queued).",
}

# Problems written without a class (`problem(...)` in handlers); their status and title as they answer.
HANDLER_TYPES: dict[str, tuple[int, str]] = {
    "bad-request": (400, "Bad request"),
    "concurrent-change": (409, "Concurrent change"),
    "database-unavailable": (503, "Database unavailable"),
    "json-not-utf8": (400, "Body is not UTF-8"),
    "json-too-deep": (400, "JSON nested too deeply"),
}

# Codes passed through variables, which a scan of literals cannot see.
INDIRECT_CODES: dict[str, tuple[str, ...]] = {"database-unavailable": (dbfaults.UNAVAILABLE, dbfaults.COMMIT_UNKNOWN)}

# Calls whose positional argument at this index is a problem or validation code.
_CODE_ARGUMENTS = {"PydanticCustomError": 0, "database_unavailable": 1, "_code_in": 1}


@dataclass
class ProblemType:
    """One `type`: its slug, status, title, what it means, and the codes seen with it."""

    slug: str
    status: int
    title: str
    description: str
    codes: dict[str, set[str]] = field(default_factory=dict)  # code -> the files that raise it


def _import_everything() -> None:
    """Import every module of services/ and api/ (migrations aside): a problem class may live in any of them, and
    a process imports some only when its service starts."""
    for top in SOURCES:
        for path in sorted((ROOT / top).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if "migrations" in parts or "locale" in parts:
                continue
            importlib.import_module(".".join(parts[:-1] if parts[-1] == "__init__" else parts))


def _problem_classes() -> dict[str, type[AppError]]:
    _import_everything()
    out: dict[str, type[AppError]] = {}
    todo: list[type[AppError]] = [AppError]
    while todo:
        cls = todo.pop()
        out[cls.__name__] = cls
        todo.extend(cls.__subclasses__())
    return out


def _called(node: ast.Call) -> str | None:
    func = node.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None


def _codes_in(node: ast.AST) -> Iterator[str]:
    """Codes written in `node`: `code="…"` keywords, `{"code": "…"}` items, and the code arguments above."""
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call):
            name = _called(sub)
            for kw in sub.keywords:
                if kw.arg == "code" and isinstance(kw.value, ast.Constant) and isinstance(kw.value.value, str):
                    yield kw.value.value
            index = _CODE_ARGUMENTS.get(name or "")
            if index is not None and len(sub.args) > index:
                arg = sub.args[index]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    yield arg.value
        elif isinstance(sub, ast.Dict):
            for key, value in zip(sub.keys, sub.values, strict=True):
                if (
                    isinstance(key, ast.Constant)
                    and key.value == "code"
                    and isinstance(value, ast.Constant)
                    and isinstance(value.value, str)
                ):
                    yield value.value


def _slug_of_call(node: ast.Call, classes: dict[str, type[AppError]]) -> str | None:
    name = _called(node)
    if name in classes:
        return classes[name].type_slug
    if name == "problem":
        for kw in node.keywords:
            if kw.arg == "type_slug" and isinstance(kw.value, ast.Constant):
                return str(kw.value.value)
    if name == "database_unavailable":
        return "database-unavailable"
    if name in ("PydanticCustomError", "_code_in"):
        return "validation"
    return None


def _scan(path: Path, classes: dict[str, type[AppError]]) -> Iterator[tuple[str, str]]:
    """(slug, code) pairs of one source file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    inside: set[int] = set()
    for node in ast.walk(tree):
        # A problem class's own body (its __init__ passing codes to super()) speaks for that class.
        if isinstance(node, ast.ClassDef) and node.name in classes:
            for code in _codes_in(node):
                yield classes[node.name].type_slug, code
            inside.update(id(sub) for sub in ast.walk(node))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and id(node) not in inside:
            slug = _slug_of_call(node, classes)
            if slug is not None:
                inside.update(id(sub) for sub in ast.walk(node) if sub is not node)
                for code in _codes_in(node):
                    yield slug, code


@cache
def catalogue() -> dict[str, ProblemType]:
    """Every problem type of the platform, with the codes found in the source, by slug."""
    classes = _problem_classes()
    types: dict[str, ProblemType] = {}
    for cls in classes.values():
        types.setdefault(cls.type_slug, ProblemType(cls.type_slug, cls.status, cls.title, ""))
    for slug, (status, title) in HANDLER_TYPES.items():
        types.setdefault(slug, ProblemType(slug, status, title, ""))
    for top in SOURCES:
        for path in sorted((ROOT / top).rglob("*.py")):
            for slug, code in _scan(path, classes):
                kind = types.setdefault(slug, ProblemType(slug, 0, slug, ""))
                kind.codes.setdefault(code, set()).add(str(path.relative_to(ROOT)))
    for slug, codes in INDIRECT_CODES.items():
        for code in codes:
            types[slug].codes.setdefault(code, set()).add("services/kernel/dbfaults.py")
    for slug, kind in types.items():
        kind.description = DESCRIPTIONS.get(slug, "")
    return dict(sorted(types.items(), key=lambda item: (item[1].status, item[0])))


def type_uri(slug: str) -> str:
    """The `type` of a problem: a path on the platform, where its page is served (RFC 9457 allows a reference)."""
    return PROBLEM_TYPE_BASE + slug


def markdown() -> str:
    """docs/errors.md."""
    out = [
        "# Problem types and codes",
        "",
        "<!-- Generated by `python -m api.problems > docs/errors.md` from the code; do not edit by hand. -->",
        "",
        "Every error is RFC 9457 `application/problem+json`: `type` (a path on the platform, served as a page: "
        "`GET /problems/{slug}`), `title`, `status`, `detail`, `instance`, and often `code`, finer than the type "
        "and as stable (match on `type` and `code`, never on `title` or `detail`, which follow `Accept-Language`). "
        "A 422 lists `errors[]`, each with `pointer` (RFC 6901), `code` and `detail`. Validation codes not listed "
        "here are pydantic's error types (`int_parsing`, `greater_than`, …), some renamed: `required`, "
        "`unknown_field`, `too_short`, `too_long`, `too_few_items`, `too_many_items`, `json.invalid`, "
        "`type.object`, `type.array`.",
        "",
        "| status | type | title | codes |",
        "| --- | --- | --- | --- |",
    ]
    kinds = catalogue()
    for kind in kinds.values():
        codes = ", ".join(f"`{c}`" for c in sorted(kind.codes)) or "—"
        out.append(f"| {kind.status} | [`{kind.slug}`](#{kind.slug}) | {kind.title} | {codes} |")
    for kind in kinds.values():
        out += ["", f"## {kind.slug}", "", f"`{type_uri(kind.slug)}` · {kind.status} {kind.title}", "",
                kind.description]  # fmt: skip
        if kind.codes:
            out += ["", "| code | raised in |", "| --- | --- |"]
            out += [f"| `{c}` | {', '.join(f'`{p}`' for p in sorted(kind.codes[c]))} |" for c in sorted(kind.codes)]
    return "\n".join(out) + "\n"


router = APIRouter(include_in_schema=False)


def _page(title: str, body: str) -> HTMLResponse:
    return HTMLResponse(
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        '<meta name="viewport" content="width=device-width, initial-scale=1"></head>'
        f'<body style="font-family: system-ui, sans-serif; max-width: 50rem; margin: 2rem auto">{body}</body></html>',
        headers={"Cache-Control": "public, max-age=3600"},
    )


@router.get("/problems/")
def problem_index() -> HTMLResponse:
    """Every problem type, linked."""
    rows = "".join(
        f'<li><a href="{type_uri(k.slug)}"><code>{k.slug}</code></a> — {k.status} {html.escape(k.title)}</li>'
        for k in catalogue().values()
    )
    return _page("smartgate problem types", f"<h1>Problem types</h1><ul>{rows}</ul>")


@router.get("/problems/{slug}")
def problem_page(slug: str) -> HTMLResponse:
    """What one problem type means, what to do, and its codes."""
    kind = catalogue().get(slug)
    if kind is None:
        return problem(404, "Not found", "Not Found", type_slug="not-found")  # type: ignore[return-value]
    codes = "".join(f"<li><code>{html.escape(c)}</code></li>" for c in sorted(kind.codes))
    body = (
        f"<h1><code>{kind.slug}</code></h1><p>{kind.status} {html.escape(kind.title)}</p>"
        f"<p>{html.escape(kind.description)}</p>" + (f"<h2>Codes</h2><ul>{codes}</ul>" if codes else "")
        + '<p><a href="/problems/">All problem types</a></p>'
    )  # fmt: skip
    return _page(f"{kind.slug} — smartgate", body)


if __name__ == "__main__":
    sys.stdout.write(markdown())
