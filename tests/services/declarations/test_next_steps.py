"""What a declaration asks of its trader next (`next_steps`): documents requested with the officer's reason, the
inspection ordered, duties due with the amount, and nothing once cleared and paid; in every view that shows it."""

from __future__ import annotations

import copy
import datetime as dt
import uuid
from typing import Any

from tests.services.declarations.test_review import confirm, decide, pay, queued


def trader_view(gate: dict[str, Any], decl_id: str) -> dict[str, Any]:
    resp = gate["client"].get(f"/api/v1/declarations/{decl_id}", headers=gate["trader"])
    assert resp.status_code == 200, resp.text
    found: dict[str, Any] = resp.json()
    return found


def actions(view: dict[str, Any]) -> list[str]:
    return [s["action"] for s in view["next_steps"]]


def test_a_draft_is_to_be_submitted(gate, declaration_body):
    resp = gate["client"].post(
        "/api/v1/declarations", json=declaration_body,
        headers={**gate["trader"], "Idempotency-Key": uuid.uuid4().hex},
    )  # fmt: skip
    assert resp.status_code == 201, resp.text
    assert resp.json()["next_steps"] == [
        {"action": "submit", "link": f"/api/v1/declarations/{resp.json()['id']}/submit"}
    ]


def test_documents_then_inspection_then_duties_then_nothing(gate, declaration_body):
    decl = queued(gate, declaration_body)
    due = decl["duties_due_vnd"]
    assert due > 0
    pay_step = {"action": "pay_duties", "amount_vnd": due, "link": f"/api/v1/declarations/{decl['id']}/payments"}
    # Under review: nothing asked yet but the duties, which may be paid already.
    assert trader_view(gate, decl["id"])["next_steps"] == [pay_step]

    asked = decide(gate, decl["id"], "request_documents", reason="phytosanitary certificate for the lychee, please")
    assert asked.status_code == 200, asked.text
    view = trader_view(gate, decl["id"])
    documents = view["next_steps"][0]
    assert documents["action"] == "provide_documents"
    assert documents["reason"] == "phytosanitary certificate for the lychee, please"
    assert documents["link"] == f"/api/v1/declarations/{decl['id']}/documents"
    history = gate["client"].get(f"/api/v1/declarations/{decl['id']}/history", headers=gate["trader"]).json()
    asked_at = dt.datetime.fromisoformat(history["transitions"][-1]["at"])
    assert dt.datetime.fromisoformat(documents["since"]) == asked_at
    assert view["next_steps"][1:] == [pay_step]
    # The list answers the same (read for the whole page), and officers see what the trader was asked.
    listed = gate["client"].get("/api/v1/declarations", headers=gate["trader"]).json()["items"]
    assert next(d for d in listed if d["id"] == decl["id"])["next_steps"] == view["next_steps"]
    queue = gate["client"].get("/api/v1/review/queue?status=awaiting_documents", headers=gate["supervisor"]).json()
    assert next(d for d in queue if d["id"] == decl["id"])["next_steps"] == view["next_steps"]

    upload = gate["client"].post(
        f"/api/v1/declarations/{decl['id']}/documents",
        files={"file": ("phyto.pdf", b"%PDF-1.7 phytosanitary certificate", "application/pdf")},
        headers=gate["trader"],
    )
    assert upload.status_code == 201, upload.text
    assert actions(trader_view(gate, decl["id"])) == ["pay_duties"]  # the request is answered

    assert decide(gate, decl["id"], "inspect", reason="seal number differs from the manifest").status_code == 200
    view = trader_view(gate, decl["id"])
    assert actions(view) == ["present_goods_for_inspection", "pay_duties"]
    assert view["next_steps"][0]["reason"] == "seal number differs from the manifest"
    assert view["next_steps"][0]["since"] is not None

    assert decide(gate, decl["id"], "clear").json()["status"] == "cleared"
    short = pay(gate, decl["id"], f"VCB-{uuid.uuid4().hex[:8]}", due - 1000)
    assert confirm(gate, short.json()["id"]).status_code == 200
    assert trader_view(gate, decl["id"])["next_steps"] == [{**pay_step, "amount_vnd": 1000}]
    rest = pay(gate, decl["id"], f"VCB-{uuid.uuid4().hex[:8]}", 1000)
    assert confirm(gate, rest.json()["id"]).json()["declaration_status"] == "released"
    assert trader_view(gate, decl["id"])["next_steps"] == []  # cleared and paid: nothing left to do


def test_a_rejected_or_cancelled_declaration_asks_nothing(gate, declaration_body):
    decl = queued(gate, copy.deepcopy(declaration_body))
    assert decide(gate, decl["id"], "reject", reason="goods prohibited").status_code == 200
    assert trader_view(gate, decl["id"])["next_steps"] == []
