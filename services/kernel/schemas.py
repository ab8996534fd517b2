"""Pydantic bases: read schemas load from ORM objects; input schemas reject unknown fields."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.json_schema import models_json_schema
from pydantic_core import PydanticCustomError


class Schema(BaseModel):
    """Base of every response schema."""

    model_config = ConfigDict(from_attributes=True)


class InputSchema(BaseModel):
    """Base of every request schema: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        """NUL is never meaningful in text, and PostgreSQL text columns refuse it."""
        if _has_nul(value):
            raise PydanticCustomError("string.nul", "text must not contain NUL characters")
        return value


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, list | tuple):
        return any(_has_nul(v) for v in value)
    return False


class Problem(BaseModel):
    """RFC 9457 problem details: the body of every error response (`application/problem+json`). Match on `code`
    (or `type`), never on `title` or `detail`, which are in the request's `Accept-Language` (vi, zh, en)."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "type": "/problems/not-found",
                    "title": "Not found",
                    "status": 404,
                    "detail": "declaration not found",
                    "instance": "/api/v1/declarations/0192f0c4-7d55-7a3e-9c1b-3b8f4e2a9d10",
                },
                {
                    "type": "/problems/database-unavailable",
                    "title": "Database unavailable",
                    "status": 503,
                    "detail": "the database is unavailable or did not answer in time; nothing was stored. Retry later.",
                    "instance": "/api/v1/declarations",
                    "code": "database.unavailable",
                },
            ]
        },
    )

    type: str = Field(
        "about:blank",
        description="URI of the problem type: a path on this platform (`/problems/<slug>`) that serves a page "
        "explaining it (catalogue: docs/errors.md), or `about:blank` when the HTTP status says it all.",
        examples=["/problems/conflict"],
    )
    title: str = Field(
        description="Short summary of the problem type, in the language negotiated by `Accept-Language` "
        "(Content-Language says which); the same for every occurrence of the type.",
        examples=["Conflict"],
    )
    status: int = Field(description="The HTTP status code of the response, repeated.", examples=[409])
    detail: str = Field(
        description="What went wrong with this request, for a person to read (localised like `title`).",
        examples=["the declaration changed since you read it"],
    )
    instance: str | None = Field(
        None, description="Path of the request that failed.", examples=["/api/v1/declarations"]
    )
    code: str | None = Field(
        None,
        description="Stable machine-readable code of the problem (dotted, e.g. `decision.stale`), present "
        "where one status covers several causes; never translated — match on this in an ERP.",
        examples=["decision.stale"],
    )


class ValidationErrorItem(BaseModel):
    """One thing wrong in a request, as listed in a 422 `ValidationProblem`."""

    pointer: str = Field(
        description='RFC 6901 JSON Pointer to the offending member of the request body (`""` for the whole '
        "body, e.g. JSON that does not parse); for a parameter (see `in`), `/` and its name, e.g. `/limit`.",
        examples=["/goods/0/hs_code"],
    )
    code: str = Field(
        description="Stable machine-readable code of the error: `required`, `unknown_field`, `too_short`, "
        "`too_long`, `too_few_items`, `too_many_items`, `json.invalid`, `type.object`, `type.array`, "
        "`string.nul`, or pydantic's own type (`string_pattern_mismatch`, `datetime_from_date_parsing`, "
        "`greater_than`, `enum`, ...).",
        examples=["string_pattern_mismatch"],
    )
    detail: str = Field(
        description="What is wrong, in words; for dates, times and decimals, the format expected.",
        examples=["String should match pattern '^[0-9]{8}$'"],
    )
    line: int | None = Field(
        None, ge=1, description="For JSON that does not parse: line (from 1) where parsing stopped.", examples=[3]
    )
    column: int | None = Field(
        None, ge=1, description="For JSON that does not parse: column (from 1) where parsing stopped.", examples=[17]
    )
    in_: Literal["body", "query", "path", "header", "cookie"] | None = Field(
        None,
        alias="in",
        description="Where the offending value is: `query`, `path`, `header` or `cookie` for a parameter, `body` "
        "(or absent) for the request body.",
        examples=["query"],
    )


class ValidationProblem(Problem):
    """The 422 answer to a request the server cannot accept as sent (RFC 9457 problem+json with `errors[]`):
    every error found, each with a JSON Pointer to where it is."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "type": "/problems/validation",
                    "title": "Validation failed",
                    "status": 422,
                    "detail": "2 problem(s) in the request",
                    "instance": "/api/v1/declarations",
                    "errors": [
                        {"pointer": "/goods/0/hs_code", "code": "string_pattern_mismatch",
                         "detail": "String should match pattern '^[0-9]{8}$'"},
                        {"pointer": "/importer", "code": "required", "detail": "Field required"},
                    ],
                },
                {
                    "type": "/problems/validation",
                    "title": "Validation failed",
                    "status": 422,
                    "detail": "1 problem(s) in the request",
                    "instance": "/api/v1/declarations",
                    "errors": [
                        {"pointer": "", "code": "json.invalid", "line": 3, "column": 17,
                         "detail": "invalid JSON at line 3, column 17: expected ',' or '}'"}
                    ],
                },
            ]
        },
    )  # fmt: skip

    errors: list[ValidationErrorItem] = Field(
        default_factory=list,
        description="Every error found in the request (body, query, path and headers), in the order found. A "
        "422 raised by the service itself (not by the schema) may carry a `code` instead and no `errors`.",
    )


PROBLEM_REF = "#/components/schemas/Problem"
VALIDATION_PROBLEM_REF = "#/components/schemas/ValidationProblem"


def problem_components() -> dict[str, Any]:
    """The component schemas that `problems()` refers to (api/docs.py adds them to every document)."""
    _, defs = models_json_schema(
        [(Problem, "serialization"), (ValidationProblem, "serialization")],
        ref_template="#/components/schemas/{model}",
        by_alias=True,
    )
    return dict(defs["$defs"])


def problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for error statuses, all served as RFC 9457 problem+json: `ValidationProblem` for 422 (with
    `errors[]`), `Problem` for the others."""
    return {
        code: {
            "description": "Validation failed: problem details (RFC 9457) with `errors[]`"
            if code == 422
            else "Problem details (RFC 9457)",
            "content": {
                "application/problem+json": {"schema": {"$ref": VALIDATION_PROBLEM_REF if code == 422 else PROBLEM_REF}}
            },
        }
        for code in codes
    }
