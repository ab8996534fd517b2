"""The OpenAPI document: every POST body has a complete example that the model accepts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
from fastapi.testclient import TestClient
from pydantic import TypeAdapter

from services.declarations.schemas import DeclarationIn


def _build() -> tuple[dict[str, Any], dict[str, Any]]:
    """The OpenAPI document as served, and the body annotation of each POST (rendering needs no database)."""
    import tempfile

    from fastapi.routing import APIRoute

    from api.app import create_app
    from services.kernel.settings import KernelSettings

    app = create_app(KernelSettings(environment="development", var_dir=Path(tempfile.mkdtemp(prefix="sg-openapi-"))))
    doc: dict[str, Any] = TestClient(app).get("/openapi.json").json()
    app.state.runtime.close()
    bodies = {}
    for route in app.routes:
        if isinstance(route, APIRoute) and "POST" in (route.methods or ()) and route.dependant.body_params:
            params = route.dependant.body_params
            bodies[route.path_format] = params[0].field_info.annotation if len(params) == 1 else None
    return doc, bodies


DOCUMENT, BODY_TYPES = _build()
POSTS = sorted(p for p, item in DOCUMENT["paths"].items() if "post" in item)


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return DOCUMENT


def resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        schema = document["components"]["schemas"][name]
    return schema


def examples_of(document: dict[str, Any], media: dict[str, Any]) -> list[Any]:
    found = [e["value"] for e in media.get("examples", {}).values()]
    if "example" in media:
        found.append(media["example"])
    schema = media.get("schema", {})
    found += resolve(document, schema).get("examples", []) if "$ref" in schema else schema.get("examples", [])
    return found


def missing_members(document: dict[str, Any], schema: dict[str, Any], value: Any, where: str = "") -> list[str]:
    """Properties the schema defines that the example leaves out (recursively): a complete example has all."""
    schema = resolve(document, schema)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [resolve(document, s) for s in schema[key] if s.get("type") != "null"]
            if value is None or not options:
                return []
            return min((missing_members(document, o, value, where) for o in options), key=len)
    out = []
    if isinstance(value, dict) and "properties" in schema:
        for name, sub in schema["properties"].items():
            if name not in value:
                out.append(f"{where}/{name}")
            else:
                out += missing_members(document, sub, value[name], f"{where}/{name}")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            out += missing_members(document, schema["items"], item, f"{where}/{i}")
    return out


@pytest.mark.parametrize("path", POSTS)
def test_every_post_body_has_a_complete_example_that_validates(document: dict[str, Any], path: str) -> None:
    """Each example validates against the JSON schema and the endpoint's own model, and the examples together fill
    every field (an export and an import each fill their own: `items[].trace` is an export's, `partner_reference`
    an import's)."""
    body = document["paths"][path]["post"].get("requestBody")
    if body is None:
        return  # nothing to exemplify
    for media_type, media in body["content"].items():
        examples = examples_of(document, media)
        assert examples, f"POST {path} ({media_type}) has no example"
        schema = media["schema"]
        validator = jsonschema_rs.validator_for({**schema, "components": document["components"]})
        unfilled: set[str] | None = None
        for example in examples:
            errors = [e.message for e in validator.iter_errors(example)]
            assert not errors, errors
            annotation = BODY_TYPES.get(path)
            if annotation is not None and media_type == "application/json":
                TypeAdapter(annotation).validate_python(example)
            missing = set(missing_members(document, schema, example))
            unfilled = missing if unfilled is None else unfilled & missing
        assert sorted(unfilled or ()) == [], f"no example of POST {path} fills these"


def test_the_declaration_example_is_complete_at_every_level(document: dict[str, Any]) -> None:
    from services.declarations.schemas import EXAMPLE

    schema = document["components"]["schemas"]["DeclarationIn-Input"]
    assert missing_members(document, schema, EXAMPLE) == []
    assert DeclarationIn.model_validate(EXAMPLE).model_dump(mode="json")


def test_error_responses_are_documented_as_problems(document: dict[str, Any]) -> None:
    """422 everywhere; 401 and 403 where a key is needed (public operations read none: tests/api/test_api_docs.py)."""
    for path, item in document["paths"].items():
        if not path.startswith("/api/"):
            continue
        for method, op in item.items():
            for status in ("401", "403", "422") if "security" in op else ("422",):
                assert status in op["responses"], (method, path, status)


def undocumented_problem_responses(document: dict[str, Any]) -> list[str]:
    """Error responses whose documented media types leave out application/problem+json (what is served)."""
    out = []
    for path, item in document["paths"].items():
        for method, op in item.items():
            for status, response in op["responses"].items():
                if status[0] in "45" and "application/problem+json" not in response.get("content", {}):
                    out.append(f"{method.upper()} {path} {status}")
    return out


def test_error_responses_are_documented_with_the_media_type_served(document: dict[str, Any]) -> None:
    assert undocumented_problem_responses(document) == []
