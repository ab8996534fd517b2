"""Pydantic bases: read schemas load from ORM objects; input schemas reject unknown fields."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator
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
    """RFC 9457 problem details (documented in OpenAPI for error responses)."""

    model_config = ConfigDict(extra="allow")

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    instance: str | None = None


_PROBLEM_CONTENT = {"application/problem+json": {"schema": Problem.model_json_schema()}}


def problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for error statuses, all served as RFC 9457 problem+json."""
    return {code: {"description": "Problem details (RFC 9457)", "content": _PROBLEM_CONTENT} for code in codes}
