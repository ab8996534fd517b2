"""One error base rendered as RFC 9457 problem+json, and the handlers that render every error that way."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.orm.exc import StaleDataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.kernel.i18n import N_, SOURCE_LANGUAGE, TAGS, localise_problem, negotiate, problem_catalog
from services.kernel.responses import JSONResponse

logger = logging.getLogger("smartgate.errors")

PROBLEM_JSON = "application/problem+json"
# A problem's `type` is a path on the platform, which serves a page on it (api/problems.py; docs/errors.md).
PROBLEM_TYPE_BASE = "/problems/"
# Starlette's own details (a route that does not exist, a method a route does not take), for the catalog.
FRAMEWORK_DETAILS = (N_("Not Found"), N_("Method Not Allowed"))


class AppError(Exception):
    """An expected failure with an HTTP status, a short title and a human-readable detail."""

    status: int = 400
    title: str = "Bad request"
    type_slug: str = "bad-request"

    def __init__(self, detail: str = "", *, headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.headers = headers or {}
        self.extra = extra


class NotFound(AppError):
    status, title, type_slug = 404, "Not found", "not-found"


class Unauthorized(AppError):
    status, title, type_slug = 401, "Unauthorized", "unauthorized"

    def __init__(self, detail: str = "A valid API key is required", **extra: Any) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer realm="smartgate"'}, **extra)


class Forbidden(AppError):
    status, title, type_slug = 403, "Forbidden", "forbidden"


class Conflict(AppError):
    status, title, type_slug = 409, "Conflict", "conflict"


class PreconditionFailed(AppError):
    status, title, type_slug = 412, "Precondition failed", "precondition-failed"


class PreconditionRequired(AppError):
    status, title, type_slug = 428, "Precondition required", "precondition-required"


class Unprocessable(AppError):
    status, title, type_slug = 422, "Unprocessable content", "validation"


class PayloadTooLarge(AppError):
    status, title, type_slug = 413, "Content too large", "too-large"


class ServiceUnavailable(AppError):
    status, title, type_slug = 503, "Service unavailable", "unavailable"


class InsufficientStorage(AppError):
    status, title, type_slug = 507, "Insufficient storage", "insufficient-storage"


def problem(
    status: int,
    title: str,
    detail: str,
    *,
    type_slug: str = "about:blank",
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    language: str | None = None,
    **extra: Any,
) -> JSONResponse:
    """A problem+json response; with `language` (see `problem_language`), its title and detail in that language
    (services/kernel/i18n.py), told by Content-Language."""
    body: dict[str, Any] = {
        "type": type_slug if type_slug == "about:blank" else PROBLEM_TYPE_BASE + type_slug,
        "title": title,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    body.update(extra)
    if language is not None:
        body = localise_problem(body, language)
        headers = {**(headers or {}), "Content-Language": TAGS[language], "Vary": "Accept-Language"}
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def problem_language(headers: Any) -> str:
    """The language of a problem's texts: the request's `Accept-Language` among vi, zh (Simplified) and en; English
    without one (what an ERP integrating the API reads and matches on; the `code` never changes)."""
    return negotiate(headers.get("accept-language") if headers is not None else None, SOURCE_LANGUAGE)


def pointer(loc: tuple[Any, ...] | list[Any]) -> str:
    """Turn a pydantic error location into an RFC 6901 JSON Pointer (dropping the 'body' prefix)."""
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:]
    return "/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in parts) if parts else ""


_PYDANTIC_CODES = {
    "missing": "required",
    "extra_forbidden": "unknown_field",
    "string_too_short": "too_short",
    "string_too_long": "too_long",
    "too_short": "too_few_items",
    "too_long": "too_many_items",
    "json_invalid": "json.invalid",
    "model_attributes_type": "type.object",
    "dict_type": "type.object",
    "list_type": "type.array",
}


# What a value of these types must look like, said where pydantic's own message does not.
_FORMAT_HINTS = (
    ("datetime_", N_("ISO 8601 with offset, e.g. 2026-11-28T08:30:00+07:00")),
    ("date_", N_("ISO 8601 date, e.g. 2026-11-28")),
    ("time_", N_("ISO 8601 time, e.g. 08:30:00")),
    ("decimal_", N_('a number, or a string of digits with a decimal point, e.g. "1234.50"')),
)
WITH_HINT = N_("%(detail)s; expected %(hint)s")
INVALID_JSON = N_("invalid JSON at line %(line)s, column %(column)s: %(reason)s")

# pydantic's messages by error type, as msgids of the problems catalog with the error's `ctx` as placeholders: an
# errors[] item's `detail` in vi and zh (English keeps pydantic's own words; `code` and `pointer` never change).
PYDANTIC_MESSAGES = {
    "missing": N_("Field required"),
    "extra_forbidden": N_("Extra inputs are not permitted"),
    "string_type": N_("Input should be a valid string"),
    "string_too_short": N_("String should have at least %(min_length)s character(s)"),
    "string_too_long": N_("String should have at most %(max_length)s character(s)"),
    "string_pattern_mismatch": N_("String should match pattern '%(pattern)s'"),
    "string_unicode": N_("Input should be a valid string, unable to parse raw data as a unicode string"),
    "int_type": N_("Input should be a valid integer"),
    "int_parsing": N_("Input should be a valid integer, unable to parse string as an integer"),
    "int_from_float": N_("Input should be a valid integer, got a number with a fractional part"),
    "float_type": N_("Input should be a valid number"),
    "float_parsing": N_("Input should be a valid number, unable to parse string as a number"),
    "finite_number": N_("Input should be a finite number"),
    "bool_type": N_("Input should be a valid boolean"),
    "bool_parsing": N_("Input should be a valid boolean, unable to interpret input"),
    "literal_error": N_("Input should be %(expected)s"),
    "enum": N_("Input should be %(expected)s"),
    "greater_than": N_("Input should be greater than %(gt)s"),
    "greater_than_equal": N_("Input should be greater than or equal to %(ge)s"),
    "less_than": N_("Input should be less than %(lt)s"),
    "less_than_equal": N_("Input should be less than or equal to %(le)s"),
    "multiple_of": N_("Input should be a multiple of %(multiple_of)s"),
    "too_short": N_(
        "%(field_type)s should have at least %(min_length)s item(s) after validation, not %(actual_length)s"
    ),
    "too_long": N_("%(field_type)s should have at most %(max_length)s item(s) after validation, not %(actual_length)s"),
    "datetime_type": N_("Input should be a valid datetime"),
    "datetime_parsing": N_("Input should be a valid datetime, %(error)s"),
    "datetime_from_date_parsing": N_("Input should be a valid datetime or date, %(error)s"),
    "date_type": N_("Input should be a valid date"),
    "date_parsing": N_("Input should be a valid date in the format YYYY-MM-DD, %(error)s"),
    "date_from_datetime_parsing": N_("Input should be a valid date or datetime, %(error)s"),
    "time_parsing": N_("Input should be in a valid time format, %(error)s"),
    "timezone_aware": N_("Input should have timezone info"),
    "decimal_type": N_("Decimal input should be an integer, float, string or Decimal object"),
    "decimal_parsing": N_("Input should be a valid decimal"),
    "decimal_max_digits": N_("Decimal input should have no more than %(max_digits)s digit(s) in total"),
    "decimal_max_places": N_("Decimal input should have no more than %(decimal_places)s decimal place(s)"),
    "decimal_whole_digits": N_(
        "Decimal input should have no more than %(whole_digits)s digit(s) before the decimal point"
    ),
    "model_attributes_type": N_("Input should be a valid dictionary or object to extract fields from"),
    "dict_type": N_("Input should be a valid dictionary"),
    "model_type": N_("Input should be a valid dictionary or instance of %(class_name)s"),
    "list_type": N_("Input should be a valid list"),
    "uuid_parsing": N_("Input should be a valid UUID, %(error)s"),
    "json_invalid": N_("Invalid JSON: %(error)s"),
}


# What pydantic's date and time parser says went wrong (the `error` in its message), for the usual mistakes.
PARSER_ERRORS = frozenset(
    {
        N_("input is too short"),
        N_("input is too long"),
        N_("invalid character in year"),
        N_("invalid character in month"),
        N_("invalid character in day"),
        N_("invalid character in hour"),
        N_("invalid character in minute"),
        N_("invalid date separator, expected `-`"),
        N_("invalid datetime separator, expected `T`, `t`, `_` or space"),
        N_("invalid time separator, expected `:`"),
        N_("month value is outside expected range of 1-12"),
        N_("day value is outside expected range"),
        N_("hour value is outside expected range of 0-23"),
        N_("minute value is outside expected range of 0-59"),
        N_("timezone offset must be less than 24 hours"),
        N_("unexpected extra characters at the end of the input"),
    }
)


def _localised(language: str, msgid: str, values: dict[str, Any], english: str) -> str:
    """`msgid % values` in `language`; `english` when the catalog has no translation or the values do not fit."""
    if language == SOURCE_LANGUAGE:
        return english
    translated = problem_catalog(language).gettext(msgid)
    if translated == msgid:
        return english
    try:
        return translated % values
    except (KeyError, ValueError, TypeError):
        return english


def _error_detail(err: dict[str, Any], kind: str, language: str) -> str:
    """An error's message in `language`: a pydantic type's by its msgid and `ctx`; our own (PydanticCustomError)
    through the catalog like any problem text; pydantic's English otherwise."""
    english = str(err.get("msg", "invalid"))
    msgid = PYDANTIC_MESSAGES.get(kind)
    if msgid is None:
        return problem_catalog(language).localise(english) if language != SOURCE_LANGUAGE else english
    ctx = {k: str(v) for k, v in (err.get("ctx") or {}).items()}
    if ctx.get("error") in PARSER_ERRORS:
        ctx["error"] = _localised(language, ctx["error"], {}, ctx["error"])
    return _localised(language, msgid, ctx, english)


def _json_position(body: Any, offset: int) -> tuple[int, int]:
    """Line and column (from 1) of a character offset in the request body, as an editor shows them."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes | bytearray) else str(body)
    offset = max(0, min(offset, len(text)))
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def validation_errors(errors: list[Any], body: Any = None, language: str = SOURCE_LANGUAGE) -> list[dict[str, Any]]:
    """Pydantic errors as `{pointer, code, detail}` items with stable codes, `detail` in `language` (vi, en,
    zh_Hans). A body that is not JSON is one error for the whole body (pointer "") with the line and column where
    parsing stopped (`body`: the raw request body)."""
    out: list[dict[str, Any]] = []
    for err in errors:
        kind = str(err.get("type", "invalid"))
        code = _PYDANTIC_CODES.get(kind, kind)
        where = err.get("loc", ())
        section = where[0] if where else "body"
        if kind == "json_invalid" and len(where) == 2 and isinstance(where[1], int) and body is not None:
            # pydantic reports a character offset as the location ("/18" as a pointer): say it as an editor would.
            line, column = _json_position(body, where[1])
            reason = str((err.get("ctx") or {}).get("error") or err.get("msg", "invalid"))
            english = INVALID_JSON % {"line": line, "column": column, "reason": reason}
            detail = _localised(language, INVALID_JSON, {"line": line, "column": column, "reason": reason}, english)
            out.append({"pointer": "", "code": code, "detail": detail, "line": line, "column": column})
            continue
        detail = _error_detail(err, kind, language)
        hint = next((h for prefix, h in _FORMAT_HINTS if kind.startswith(prefix)), None)
        if hint is not None:
            shown = _localised(language, hint, {}, hint)
            detail = _localised(language, WITH_HINT, {"detail": detail, "hint": shown}, f"{detail}; expected {hint}")
        item: dict[str, Any] = {"pointer": pointer(where), "code": code, "detail": detail}
        if section != "body":
            item["in"] = section
        out.append(item)
    return out


def install_error_handlers(app: FastAPI) -> None:
    """Render every error — ours, the framework's and unexpected ones — as problem+json."""

    @app.exception_handler(AppError)
    async def _app_error(request: Request, exc: AppError) -> JSONResponse:
        return problem(
            exc.status,
            exc.title,
            exc.detail,
            type_slug=exc.type_slug,
            instance=request.url.path,
            headers=exc.headers,
            language=problem_language(request.headers),
            **exc.extra,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        language = problem_language(request.headers)
        errors = validation_errors(list(exc.errors()), exc.body, language)
        return problem(
            422,
            "Validation failed",
            f"{len(errors)} problem(s) in the request",
            type_slug="validation",
            instance=request.url.path,
            language=language,
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        titles = {
            400: "Bad request",
            401: "Unauthorized",
            403: "Forbidden",
            404: "Not found",
            405: "Method not allowed",
            413: "Content too large",
        }
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        return problem(
            exc.status_code,
            titles.get(exc.status_code, "HTTP error"),
            detail,
            instance=request.url.path,
            headers=dict(exc.headers or {}),
            language=problem_language(request.headers),
        )

    @app.exception_handler(StaleDataError)
    async def _stale(request: Request, exc: StaleDataError) -> JSONResponse:
        # Optimistic locking lost a race: another request changed the row between our read and our write.
        return problem(
            409,
            "Concurrent change",
            "the resource changed while this request was being processed; read it again and retry",
            type_slug="concurrent-change",
            instance=request.url.path,
            language=problem_language(request.headers),
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        error_id = uuid.uuid4().hex
        logger.exception("unhandled error", extra={"error_id": error_id})
        return problem(
            500,
            "Internal server error",
            "An unexpected error occurred; quote the error id when reporting it.",
            instance=request.url.path,
            language=problem_language(request.headers),
            error_id=error_id,
        )

    install_database_error_handlers(app)


# Seconds a client is asked to wait after a database outage answer (a restart or failover takes a few).
DATABASE_RETRY_AFTER_SECONDS = 2


def database_unavailable(request: Request, code: str, error: str) -> JSONResponse:
    """503 for a database outage: `database.unavailable` (nothing was committed) or `database.commit_unknown`."""
    if code == "database.commit_unknown":
        title = N_("Commit outcome unknown")
        detail = N_(
            "the database stopped answering after this change was sent for commit: it may or may not be stored. "
            "Retry with the same Idempotency-Key (it takes effect at most once) or read the resource."
        )
    else:
        title = N_("Database unavailable")
        detail = N_("the database is unavailable or did not answer in time; nothing was stored. Retry later.")
    logger.warning("database unavailable", extra={"code": code, "path": request.url.path, "error": error})
    return problem(
        503,
        title,
        detail,
        type_slug="database-unavailable",
        instance=request.url.path,
        headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)},
        language=problem_language(request.headers),
        code=code,
    )


def install_database_error_handlers(app: FastAPI) -> None:
    """A database outage (connection refused or lost, no answer, timeout, SQLite locked) answers 503 with
    Retry-After, logged as one warning line; any other database error stays an unexpected 500."""
    import sqlite3

    from sqlalchemy.exc import SQLAlchemyError

    from services.kernel.dbfaults import outage_code, summary

    async def _database(request: Request, exc: Exception) -> JSONResponse:
        code = outage_code(exc)
        if code is None:
            raise exc  # a bug, not an outage: the unexpected-error path logs its traceback and answers 500
        return database_unavailable(request, code, summary(exc))

    classes: list[type[Exception]] = [SQLAlchemyError, sqlite3.OperationalError]
    try:
        import psycopg

        classes.append(psycopg.OperationalError)
    except ImportError:  # pragma: no cover - psycopg is a dependency; SQLite-only installs may lack it
        pass
    for cls in classes:
        app.add_exception_handler(cls, _database)
