"""The catalogue of problem types and codes (api/problems.py): collected from the code, served, documented."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from api import problems
from tests.api.support import BASE, Api, assert_problem

REPO = Path(__file__).resolve().parents[2]


def test_docs_errors_md_is_generated_from_the_code() -> None:
    assert (REPO / "docs" / "errors.md").read_text(encoding="utf-8") == problems.markdown(), (
        "docs/errors.md is stale: run `python -m api.problems > docs/errors.md`"
    )


def test_every_type_is_described_and_every_code_found_where_it_is_raised() -> None:
    kinds = problems.catalogue()
    assert not [slug for slug, kind in kinds.items() if not kind.description], "describe it in api/problems.py"
    assert not [slug for slug, kind in kinds.items() if not 400 <= kind.status < 600]
    # Codes passed to a class, to problem(), inside errors[] items and by a subclass's own __init__.
    assert "services/declarations/review.py" in kinds["validation"].codes["decision.duties_unassessed"]
    assert "decision.stale" in kinds["precondition-failed"].codes
    assert "customs_value.too_large" in kinds["validation"].codes  # CustomsValueTooLarge's super().__init__
    assert "iso3166.code" in kinds["validation"].codes  # a code list's PydanticCustomError
    assert {"database.unavailable", "database.commit_unknown"} <= set(kinds["database-unavailable"].codes)


def test_a_problems_type_is_a_page_the_platform_serves(api: Api, trader: dict[str, str], client: Any) -> None:
    refused = assert_problem(api.client.post(BASE, json={}, headers={**trader, "Idempotency-Key": "t"}), 422)
    assert refused["type"] == "/problems/validation"
    page = client.get(refused["type"])
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "errors[]" in page.text
    for slug in problems.catalogue():
        assert client.get(problems.type_uri(slug)).status_code == 200, slug
    index = client.get("/problems/")
    assert all(f'href="/problems/{slug}"' in index.text for slug in problems.catalogue())
    assert_problem(client.get("/problems/no-such-type"), 404)
