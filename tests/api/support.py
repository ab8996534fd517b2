"""Helpers shared by the kernel, declarations and API tests."""

from __future__ import annotations

import copy
import uuid
from typing import Any

from services.declarations import repository, service
from services.kernel.database import unit_of_work
from services.kernel.runtime import Runtime

BASE = "/api/v1/declarations"
ORG_A = "Lao Cai Fruit Export JSC"
ORG_B = "Hekou Border Trading Co."


class Api:
    """Files and drives declarations through the HTTP API the way a client would."""

    def __init__(self, client: Any, runtime: Runtime, body: dict[str, Any]) -> None:
        self.client = client
        self.runtime = runtime
        self.body = body

    def file(
        self,
        headers: dict[str, str],
        body: dict[str, Any] | None = None,
        *,
        submit: bool = False,
        key: str | None = None,
    ) -> dict[str, Any]:
        """POST a declaration (a fresh Idempotency-Key unless given) and return the 201 body."""
        response = self.client.post(
            BASE + ("?submit=true" if submit else ""),
            json=body if body is not None else self.body,
            headers={**headers, "Idempotency-Key": key or uuid.uuid4().hex},
        )
        assert response.status_code == 201, response.text
        result: dict[str, Any] = response.json()
        return result

    def system(self, decl_id: str, *actions: str) -> None:
        """Apply platform transitions (clear, release, exit, expire) as other workflows would."""
        for action in actions:
            with unit_of_work(self.runtime.sessions) as session:
                decl = repository.get(session, decl_id)
                assert decl is not None
                service.transition(session, decl=decl, action=action, actor="officer:test")

    def variant(self, **changes: Any) -> dict[str, Any]:
        """A copy of the example body with top-level changes."""
        body = copy.deepcopy(self.body)
        body.update(changes)
        return body


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    """An RFC 9457 problem+json response with `status`."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert {"type", "title", "status", "detail"} <= body.keys()
    assert body["status"] == status
    assert response.headers.get("x-request-id")
    return body
