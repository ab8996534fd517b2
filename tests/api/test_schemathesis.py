"""Property-based run over the OpenAPI document: no 5xx, and every response matches its documented schema.

Uses schemathesis' strategies under plain Hypothesis: its pytest integration (`from_fixture`) fails on pytest 9
(`Function` has no `_nodeid`), and the app under test needs this suite's per-test database fixtures anyway.
"""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from tests.api.support import Api

# Operations x examples is the size of the run: a few hundred cases in all.
POSITIVE_EXAMPLES = 10
NEGATIVE_EXAMPLES = 5

CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


def run_operation(operation: Any, mode: GenerationMode, examples: int, headers: dict[str, str]) -> int:
    """Generate and send up to `examples` cases of one operation; returns how many ran."""
    ran = 0

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    def check(case: Any) -> None:
        nonlocal ran
        ran += 1
        case.call_and_validate(headers={**(case.headers or {}), **headers}, checks=CHECKS)

    try:
        check()
    except Unsatisfiable:
        pass  # nothing to negate in this operation (no parameters, or free-form strings only)
    return ran


def test_no_server_errors_and_responses_match_the_schema(app, api: Api, trader: dict[str, str]) -> None:
    api.file(trader)  # something to find
    api.file(trader, submit=True)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures: list[str] = []
    total = 0
    operations = [result.ok() for result in schema.get_all_operations() if isinstance(result, Ok)]
    assert len(operations) >= 9
    for operation in operations:
        for mode, examples in (
            (GenerationMode.POSITIVE, POSITIVE_EXAMPLES),
            (GenerationMode.NEGATIVE, NEGATIVE_EXAMPLES),
        ):
            try:
                total += run_operation(operation, mode, examples, trader)
            except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - report every failing operation
                failures.append(f"{operation.method.upper()} {operation.path} [{mode.value}]: {str(exc)[:1500]}")
    assert total >= 200, total
    assert not failures, "\n\n".join(failures)
