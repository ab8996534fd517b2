"""Every field of the OpenAPI document is explained: each property of each component schema has a description,
and the error responses refer to the documented problem shapes (`Problem`, `ValidationProblem` for 422)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import jsonschema_rs
import pytest

from services.kernel.errors import validation_errors
from tests.api.test_openapi import DOCUMENT


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return DOCUMENT


def properties(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(schema, property, its schema) for every property of every component schema, nested objects included."""

    def walk(where: str, schema: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
        for name, sub in schema.get("properties", {}).items():
            yield where, name, sub
            yield from walk(f"{where}.{name}", sub)

    for name, schema in document["components"]["schemas"].items():
        yield from walk(name, schema)


def undescribed(document: dict[str, Any]) -> list[str]:
    return [f"{schema}.{name}" for schema, name, sub in properties(document) if not sub.get("description")]


def test_every_component_property_has_a_description(document: dict[str, Any], record_property: Any) -> None:
    total = sum(1 for _ in properties(document))
    missing = undescribed(document)
    record_property("described", f"{total - len(missing)} of {total}")  # in the JUnit report (--junitxml)
    assert total > 300
    assert missing == [], f"{len(missing)} of {total} properties without a description"


def test_every_component_schema_has_a_description(document: dict[str, Any]) -> None:
    assert [n for n, s in document["components"]["schemas"].items() if not s.get("description")] == []


def test_error_responses_refer_to_the_problem_shapes(document: dict[str, Any]) -> None:
    """4xx/5xx answer `Problem`; 422 answers `ValidationProblem` (its `errors[]`)."""
    wrong = []
    for path, item in document["paths"].items():
        for method, op in item.items():
            for status, response in op["responses"].items():
                if status[0] not in "45":
                    continue
                schema = response["content"]["application/problem+json"]["schema"]
                expected = "ValidationProblem" if status == "422" else "Problem"
                if schema != {"$ref": f"#/components/schemas/{expected}"}:
                    wrong.append(f"{method.upper()} {path} {status}: {schema}")
    assert wrong == []


def problem_validator(name: str) -> Any:
    return jsonschema_rs.validator_for({"$ref": f"#/components/schemas/{name}", "components": DOCUMENT["components"]})


@pytest.mark.parametrize("name", ["Problem", "ValidationProblem"])
def test_the_problem_examples_fit_their_schema(name: str) -> None:
    schema = DOCUMENT["components"]["schemas"][name]
    assert schema["examples"]
    for example in schema["examples"]:
        problem_validator(name).validate(example)


def test_what_the_server_answers_on_422_fits_validation_problem() -> None:
    """The items the error handler builds (body, query parameter, malformed JSON) are what the schema says."""
    errors = validation_errors(
        [
            {"type": "missing", "loc": ("body", "importer"), "msg": "Field required"},
            {"type": "int_parsing", "loc": ("query", "limit"), "msg": "Input should be a valid integer"},
            {"type": "json_invalid", "loc": ("body", 5), "msg": "JSON decode error", "ctx": {"error": "bad"}},
        ],
        b'{\n "a": ',
    )
    body = {
        "type": "/problems/validation",
        "title": "Validation failed",
        "status": 422,
        "detail": "3",
        "errors": errors,
    }
    problem_validator("ValidationProblem").validate(body)
    assert [e.get("in") for e in errors] == [None, "query", None]
    assert errors[2]["line"] == 2


def exemplified(schema: dict[str, Any]) -> bool:
    """A property shows a value: its own examples, an enum or constant, a referenced schema (which has its own),
    a boolean, a file upload, or an array or union of such."""
    if any(key in schema for key in ("examples", "example", "enum", "const", "$ref")):
        return True
    if any(exemplified(branch) for key in ("anyOf", "oneOf", "allOf") for branch in schema.get(key, [])):
        return True
    if schema.get("type") == "array":
        return exemplified(schema.get("items", {}))
    return schema.get("type") == "boolean" or "contentMediaType" in schema or schema.get("format") == "binary"


def test_every_component_property_has_an_example(document: dict[str, Any]) -> None:
    missing = [
        f"{name}.{prop}"
        for name, schema in document["components"]["schemas"].items()
        if "examples" not in schema
        for prop, sub in schema.get("properties", {}).items()
        if not exemplified(sub)
    ]
    assert missing == []


def test_every_property_example_is_valid_for_its_property(document: dict[str, Any]) -> None:
    """An example a developer copies is accepted (inputs) or is what the server sends (outputs)."""
    invalid = []
    for schema, name, sub in properties(document):
        if "examples" not in sub:
            continue
        validator = jsonschema_rs.validator_for({**sub, "components": document["components"]})
        invalid += [f"{schema}.{name}: {example!r}" for example in sub["examples"] if not validator.is_valid(example)]
    assert invalid == []
