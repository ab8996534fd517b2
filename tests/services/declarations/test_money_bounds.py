"""Money stays within RFC 8785's exact range and no amount gives 500 (issue 13 §4), over HTTP on both backends.

The audit's cases: a customs value of 9,000,000,000,000.01 USD produced duties of 11430000000000013 (beyond 2^53, so a
JavaScript verifier hashes the ledger entry differently), and 999,999,999,999,999.99 gave HTTP 500.
"""

from __future__ import annotations

import copy
import datetime as dt
import itertools
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from api.cli import app as cli_app
from services.declarations import consumers
from services.declarations.duties import MAX_CUSTOMS_VALUE_VND, MAX_VND_PER_UNIT
from services.declarations.models import Declaration, ExchangeRate, Payment, RiskAssessment
from services.declarations.tariff import DEMO_RATES, post_rate
from services.kernel.database import unit_of_work
from services.kernel.idempotency import IdempotencyRecord
from services.kernel.outbox import MAX_EXACT_INTEGER, Event, InexactInteger, OutboxEvent, inexact_integers, record_event
from tests.services.declarations.test_review import confirm, pay, queued

BASE = "/api/v1/declarations"
_keys = itertools.count()


def post(gate, body: dict[str, Any], *, submit: bool = True, key: str | None = None) -> Any:
    headers = {**gate["trader"], "Idempotency-Key": key or f"money-{next(_keys)}"}
    return gate["client"].post(f"{BASE}?submit={'true' if submit else 'false'}", json=body, headers=headers)


def valued(declaration_body: dict[str, Any], *values: str, currency: str = "USD") -> dict[str, Any]:
    """The example body with one line per value (masses split evenly so the totals still add up)."""
    body = copy.deepcopy(declaration_body)
    line = body["items"][0]
    body["items"] = [{**line, "customs_value": v, "currency": currency, "gross_mass_kg": "1000", "net_mass_kg": "900"}
                     for v in values]  # fmt: skip
    body["total_gross_mass_kg"], body["total_net_mass_kg"] = str(1000 * len(values)), str(900 * len(values))
    return body


def problem_of(resp: Any, code: str) -> dict[str, Any]:
    assert resp.status_code == 422, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = resp.json()
    assert code in {problem.get("code")} | {e["code"] for e in problem.get("errors", [])}, problem
    return problem


def stored(runtime) -> dict[str, int]:
    """How many rows the filing tables hold (a refusal leaves every count at zero)."""
    with unit_of_work(runtime.read_sessions) as session:
        return {
            model.__name__: int(session.scalar(select(func.count()).select_from(model)) or 0)
            for model in (Declaration, RiskAssessment, OutboxEvent, IdempotencyRecord)
        }


def every_event_integer_is_exact(runtime) -> None:
    with unit_of_work(runtime.read_sessions) as session:
        for event in session.scalars(select(OutboxEvent)):
            assert inexact_integers(event.payload) == [], (event.type, event.payload)


# ---- the audit's two cases --------------------------------------------------------------------------------------


def test_nine_trillion_usd_is_refused_with_a_pointer_and_nothing_is_stored(gate, declaration_body, runtime):
    before = stored(runtime)
    resp = post(gate, valued(declaration_body, "9000000000000.01"), key="nine-trillion")
    problem = problem_of(resp, "customs_value.too_large")
    assert problem["code"] == "customs_value.too_large"
    assert problem["errors"] == [{"pointer": "/items/0/customs_value", "code": "customs_value.too_large",
                                  "detail": problem["detail"]}]  # fmt: skip
    # 9e12 USD at 25,400 VND: the total in VND is named, and the bound.
    assert str(int(Decimal("9000000000000.01") * DEMO_RATES["USD"])) in problem["detail"]
    assert str(MAX_CUSTOMS_VALUE_VND) in problem["detail"]
    assert stored(runtime) == before
    # Not an idempotent replay of a stored answer: the same key refuses again, and still stores nothing.
    again = post(gate, valued(declaration_body, "9000000000000.01"), key="nine-trillion")
    assert again.status_code == 422
    assert "Idempotent-Replayed" not in again.headers
    assert stored(runtime) == before


@pytest.mark.parametrize("submit", [True, False])
def test_999_trillion_is_a_422_not_a_500_and_nothing_is_stored(gate, declaration_body, runtime, submit):
    before = stored(runtime)
    resp = post(gate, valued(declaration_body, "999999999999999.99"), submit=submit)
    problem = problem_of(resp, "customs_value.too_large")
    assert {"pointer": "/items/0/customs_value", "code": "customs_value.too_large"}.items() <= problem["errors"][
        0
    ].items()
    assert stored(runtime) == before


# ---- the bound, from both sides ---------------------------------------------------------------------------------


def test_just_below_the_bound_is_assessed_and_every_amount_in_the_events_is_exact(gate, declaration_body, runtime):
    # The largest USD value below 10^13 VND at 25,400 VND per USD, Form E off: MFN duty and VAT on top.
    largest = (Decimal(MAX_CUSTOMS_VALUE_VND - 1) / DEMO_RATES["USD"]).quantize(Decimal("0.01"), rounding="ROUND_DOWN")
    body = valued(declaration_body, str(largest))
    body["preferential_origin"] = None
    resp = post(gate, body)
    assert resp.status_code == 201, resp.text
    decl = resp.json()
    assert decl["duties"]["lines"][0]["value_vnd"] < MAX_CUSTOMS_VALUE_VND
    assert 0 < decl["duties_due_vnd"] <= MAX_EXACT_INTEGER
    every_event_integer_is_exact(runtime)


def test_lines_each_below_but_together_above_point_at_the_items(gate, declaration_body, runtime):
    half = str((Decimal(MAX_CUSTOMS_VALUE_VND) / DEMO_RATES["USD"] / 2).quantize(Decimal("0.01")) + 1)
    before = stored(runtime)
    problem = problem_of(post(gate, valued(declaration_body, half, half)), "customs_value.too_large")
    assert [e["pointer"] for e in problem["errors"]] == ["/items"]
    assert stored(runtime) == before


def test_a_draft_is_kept_but_cannot_be_registered_or_amended_beyond_the_bound(gate, declaration_body, runtime):
    client, trader = gate["client"], gate["trader"]
    draft = post(gate, valued(declaration_body, "9000000000000.01"), submit=False)
    assert draft.status_code == 201, draft.text  # no exchange rate applies before registration
    decl_id, etag = draft.json()["id"], draft.headers["ETag"]
    events_before = stored(runtime)["OutboxEvent"]
    problem_of(client.post(f"{BASE}/{decl_id}/submit", json={}, headers=trader), "customs_value.too_large")
    now = client.get(f"{BASE}/{decl_id}", headers=trader).json()
    assert (now["status"], now["number"], now["duties"]) == ("draft", None, None)
    assert stored(runtime)["OutboxEvent"] == events_before
    # Registered at a sane value, then amended to the audit's value: refused, the registered version stays.
    sane = client.post(
        f"{BASE}/{decl_id}/amend", json=valued(declaration_body, "9600.00"), headers={**trader, "If-Match": etag}
    )
    assert sane.status_code == 200, sane.text
    registered = client.post(f"{BASE}/{decl_id}/submit", json={}, headers=trader)
    assert registered.status_code == 200, registered.text
    amend = client.post(f"{BASE}/{decl_id}/amend", json=valued(declaration_body, "9000000000000.01"),
                       headers={**trader, "If-Match": registered.headers["ETag"]})  # fmt: skip
    problem_of(amend, "customs_value.too_large")
    after = client.get(f"{BASE}/{decl_id}", headers=trader)
    assert after.headers["ETag"] == registered.headers["ETag"]
    assert after.json()["body"]["items"][0]["customs_value"] == "9600.00"


def test_a_gate_mismatch_never_stops_on_a_value_made_too_large_by_a_reposted_rate(gate, declaration_body, runtime):
    largest = (Decimal(MAX_CUSTOMS_VALUE_VND - 1) / DEMO_RATES["USD"]).quantize(Decimal("0.01"), rounding="ROUND_DOWN")
    decl = queued(gate, valued(declaration_body, str(largest)))
    with unit_of_work(runtime.sessions) as session:  # the same day's rate, posted again higher
        post_rate(session, currency="USD", day=dt.datetime.now(dt.timezone(dt.timedelta(hours=7))).date(),
                  vnd_per_unit=DEMO_RATES["USD"] * 2, source="t", actor="t")  # fmt: skip
    mismatch = {"declaration_id": decl["id"], "gate_event_id": "ge-1", "lane": "L1", "direction": "in",
                "camera_id": "KT-IN-1", "taken_at": "2026-12-03T08:00:00Z", "declaration_number": decl["number"],
                "reasons": ["seal mismatch"], "match": "container_mismatch", "codes": []}  # fmt: skip
    event = Event(id="e" * 8, type="gate.mismatch", subject=decl["id"], payload=mismatch,
                  occurred_at=dt.datetime.now(dt.UTC))  # fmt: skip
    with unit_of_work(runtime.sessions) as session:
        consumers.on_gate_mismatch(session, event)
    with unit_of_work(runtime.read_sessions) as session:
        row = session.get(Declaration, decl["id"])
        assert row is not None
        assert (row.status, row.channel, row.duties_due_vnd) == ("submitted", "red", decl["duties_due_vnd"])
    every_event_integer_is_exact(runtime)


# ---- exchange rates: the API and the CLI ------------------------------------------------------------------------


def test_exchange_rates_above_a_million_vnd_are_refused_by_the_api(gate, runtime):
    client, admin = gate["client"], gate["admin"]
    day = "2026-11-27"
    top = client.post("/api/v1/exchange-rates", json={"currency": "KWD", "day": day, "vnd_per_unit": "1000000"},
                      headers=admin)  # fmt: skip
    assert top.status_code == 201, top.text
    for value in ("1000000.000001", "1e30", "99999999999999"):
        resp = client.post("/api/v1/exchange-rates", json={"currency": "KWD", "day": day, "vnd_per_unit": value},
                           headers=admin)  # fmt: skip
        assert resp.status_code == 422, (value, resp.text)
        assert resp.json()["errors"][0]["pointer"] == "/vnd_per_unit"
    with unit_of_work(runtime.read_sessions) as session:
        assert session.get(ExchangeRate, ("KWD", dt.date.fromisoformat(day))).vnd_per_unit == MAX_VND_PER_UNIT


def test_exchange_rates_above_a_million_vnd_are_refused_by_the_cli(settings, runtime, monkeypatch):
    monkeypatch.setenv("SMARTGATE_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("SMARTGATE_SECRET_KEY", settings.secret_key)
    monkeypatch.setenv("SMARTGATE_ENVIRONMENT", "test")
    cli = CliRunner()
    for value in ("1000000.01", "NaN", "Infinity"):
        result = cli.invoke(cli_app, ["tariff", "rate", "KWD", value, "--day", "2026-11-27"])
        assert result.exit_code == 2, (value, result.output)
        assert len(result.output.strip().splitlines()) == 1, result.output
    assert "at most 1,000,000 VND" in cli.invoke(cli_app, ["tariff", "rate", "KWD", "1000001"]).output
    ok = cli.invoke(cli_app, ["tariff", "rate", "KWD", "1000000", "--day", "2026-11-27"])
    assert ok.exit_code == 0, ok.output
    with unit_of_work(runtime.read_sessions) as session:
        assert session.scalar(select(func.count()).select_from(ExchangeRate).where(ExchangeRate.currency == "KWD")) == 1


# ---- payments -------------------------------------------------------------------------------------------------


def test_confirmed_payments_stop_at_two_to_the_53_minus_one(gate, declaration_body, runtime):
    decl = queued(gate, declaration_body)  # in review: payments accumulate, nothing is released
    most = 10**15  # the largest single payment the API takes
    for n in range(MAX_EXACT_INTEGER // most):
        resp = pay(gate, decl["id"], f"TRE-{n:04d}", most, who="treasury")
        assert resp.status_code == 201, resp.text
    paid = (MAX_EXACT_INTEGER // most) * most
    # The treasury's own record, one dong too many: refused, nothing recorded.
    over = pay(gate, decl["id"], "TRE-OVER", MAX_EXACT_INTEGER - paid + 1, who="treasury")
    problem_of(over, "amount_vnd.too_large")
    assert over.json()["errors"][0]["pointer"] == "/amount_vnd"
    # A trader's claim that could never be confirmed: refused at once.
    problem_of(pay(gate, decl["id"], "CLAIM-OVER", MAX_EXACT_INTEGER - paid + 1), "amount_vnd.too_large")
    # A claim that fits when made, but not once more money was confirmed: its confirmation is refused.
    claim = pay(gate, decl["id"], "CLAIM-FITS", MAX_EXACT_INTEGER - paid)
    assert claim.status_code == 201, claim.text
    assert pay(gate, decl["id"], "TRE-LAST", 1, who="treasury").status_code == 201
    problem_of(confirm(gate, claim.json()["id"]), "amount_vnd.too_large")
    with unit_of_work(runtime.read_sessions) as session:
        row = session.get(Declaration, decl["id"])
        assert row is not None
        assert row.paid_vnd == paid + 1 <= MAX_EXACT_INTEGER
        assert session.get(Payment, claim.json()["id"]).status == "claimed"  # still for the treasury to reject
        references = set(session.scalars(select(Payment.bank_reference).where(Payment.declaration_id == decl["id"])))
        assert not {"TRE-OVER", "CLAIM-OVER"} & references
    every_event_integer_is_exact(runtime)


# ---- the last line of defence: nothing inexact reaches the outbox, hence the ledger ------------------------------


@pytest.mark.usefixtures("raw_events")  # any event type: the bound holds for every payload, catalogued or not
def test_no_event_payload_holds_an_integer_beyond_two_to_the_53(runtime):
    assert inexact_integers({"a": [1, {"b": MAX_EXACT_INTEGER}], "c": "9" * 40, "d": True, "e": 1.5}) == []
    assert sorted(inexact_integers({"a": [0, {"b/c": -(MAX_EXACT_INTEGER + 1)}], "d": 2**64})) == ["/a/1/b~1c", "/d"]
    with pytest.raises(InexactInteger, match="/duties_total_vnd"), unit_of_work(runtime.sessions) as session:
        record_event(session, type="t.x", subject="s", payload={"duties_total_vnd": 11430000000000013})
    with unit_of_work(runtime.sessions) as session:
        record_event(
            session,
            type="t.x",
            subject="s",
            payload={"duties_total_vnd": MAX_EXACT_INTEGER, "as_text": "11430000000000013"},
        )
    with unit_of_work(runtime.read_sessions) as session:
        assert [e.payload["duties_total_vnd"] for e in session.scalars(select(OutboxEvent))] == [MAX_EXACT_INTEGER]
