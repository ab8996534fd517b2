"""Twin mode: the scenario's trucks driven through the real platform over HTTP (both backends)."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from stdnum import iso6346
from typer.testing import CliRunner

from services.declarations.assessment import VN_TZ
from services.declarations.tariff import DEMO_RATES, post_rate
from services.kernel.database import unit_of_work
from simulator.cli import app as sim_app
from simulator.scenario import load_scenario
from simulator.twin import TwinError, TwinSettings, plan, run

BASELINE = load_scenario("baseline-2025")


def test_plan_is_reproducible_and_follows_the_scenario():
    day = dt.date(2026, 11, 28)
    first = plan(BASELINE, trucks=200, seed=7, day=day)
    assert first == plan(BASELINE, trucks=200, seed=7, day=day)
    assert first != plan(BASELINE, trucks=200, seed=8, day=day)
    assert [t.arrival_s for t in first] == sorted(t.arrival_s for t in first)
    assert first[0].arrival_s == 0
    loaded = {name for name, c in BASELINE.classes.items() if c.loaded}
    counts = Counter(t.truck_class for t in first)
    assert set(counts) <= loaded  # empty trucks file no goods declaration
    assert counts["import_general"] > counts["export_general"]  # 170 vs 25 a day in the scenario
    for t in first:
        body = t.body
        assert body["kind"] == t.direction
        assert iso6346.is_valid(body["containers"][0]["number"])
        assert (body["consignor"]["country"], body["consignee"]["country"]) == (
            ("CN", "VN") if t.direction == "import" else ("VN", "CN")
        )
        assert ("preferential_origin" in body) == (t.direction == "import")


def test_a_scenario_without_loaded_trucks_is_refused():
    empty_only = BASELINE.model_copy(update={"classes": {k: c for k, c in BASELINE.classes.items() if not c.loaded}})
    with pytest.raises(TwinError, match="no loaded truck class"):
        plan(empty_only, trucks=5, seed=1)


@pytest.fixture
def platform(served: str, runtime: Any, keys: Any) -> Iterator[dict[str, Any]]:
    """The platform over HTTP with today's exchange rates, a trader, an officer (off duty) and the treasury."""
    with unit_of_work(runtime.sessions) as session:
        for currency, rate in DEMO_RATES.items():
            day = dt.datetime.now(VN_TZ).date()
            post_rate(session, currency=currency, day=day, vnd_per_unit=rate, source="t", actor="t")
    clear = lambda headers: headers["Authorization"].removeprefix("Bearer ")  # noqa: E731
    with httpx.Client(base_url=served) as http:  # the API as the twin sees it: over the network
        yield {"url": served, "http": http, "trader": clear(keys.make("trader", "Lao Cai Fruit Export JSC")),
               "officer": clear(keys.make("officer")), "admin": clear(keys.make("admin")),
               "treasury": clear(keys.make("treasury"))}  # fmt: skip


def test_twin_files_reviews_pays_and_releases_through_the_api(platform):
    client = platform["http"]
    trucks = plan(BASELINE, trucks=24, seed=3)
    settings = TwinSettings(url=platform["url"], trader_key=platform["trader"], officer_key=platform["officer"],
                            treasury_key=platform["treasury"], speedup=1e6, concurrency=8,
                            review_minutes=5)  # fmt: skip
    result = run(trucks, settings)
    assert result["errors"] == []
    assert result["filed"] == result["released"] == 24
    assert sum(result["channels"].values()) == 24
    reviewed = result["channels"]["yellow"] + result["channels"]["red"]
    assert reviewed > 0  # a new trader's imports go to review: the officer's side ran
    assert result["decisions"].get("clear") == reviewed
    assert result["decisions"].get("inspect", 0) == result["channels"]["red"]
    assert result["latency_ms"]["file"]["n"] == 24
    assert result["release_wall_s"]["n"] == 24
    # What the platform holds agrees: every declaration released, with the officer in its history when reviewed.
    officer = {"Authorization": f"Bearer {platform['officer']}"}
    page = client.get("/api/v1/declarations?limit=100&status=released", headers=officer).json()
    assert len(page["items"]) == 24
    reviewed_ids = [d["id"] for d in page["items"] if d["channel"] != "green"]
    history = client.get(f"/api/v1/declarations/{reviewed_ids[0]}/history", headers=officer).json()
    assert any(t["actor"].startswith("officer:") and t["action"] == "clear" for t in history["transitions"])
    # Released by the treasury's confirmation, never by the trader's claim alone.
    paid = [d for d in page["items"] if d["duties_due_vnd"] > 0]
    assert paid
    payments = client.get(f"/api/v1/declarations/{paid[0]['id']}/payments", headers=officer).json()
    assert [(p["status"], p["recorded_by"][:7], p["decided_by"][:9]) for p in payments] == [
        ("confirmed", "trader:", "treasury:")
    ]
    # A second run on the same platform (as against `make run`'s database) releases its trucks too.
    again = run(plan(BASELINE, trucks=10, seed=4), settings)
    assert again["errors"] == []
    assert again["released"] == 10


def test_twin_refuses_bad_keys_and_an_unreachable_platform(platform):
    trucks = plan(BASELINE, trucks=2, seed=1)
    keys = {"treasury_key": platform["treasury"]}
    swapped = TwinSettings(url=platform["url"], trader_key=platform["officer"], officer_key=platform["officer"], **keys)
    with pytest.raises(TwinError, match="trader key was refused"):
        run(trucks, swapped)
    admin_as_officer = TwinSettings(
        url=platform["url"], trader_key=platform["trader"], officer_key=platform["admin"], **keys
    )
    with pytest.raises(TwinError, match="officer key was refused"):  # admins read the queue but do not decide
        run(trucks, admin_as_officer)
    trader_as_officer = TwinSettings(
        url=platform["url"], trader_key=platform["trader"], officer_key=platform["trader"], **keys
    )
    with pytest.raises(TwinError, match="officer key was refused"):
        run(trucks, trader_as_officer)
    trader_as_treasury = TwinSettings(
        url=platform["url"], trader_key=platform["trader"], officer_key=platform["officer"],
        treasury_key=platform["trader"],
    )  # fmt: skip
    with pytest.raises(TwinError, match="treasury key was refused"):  # a trader never confirms its own payment
        run(trucks, trader_as_treasury)
    nowhere = TwinSettings(url="http://127.0.0.1:9", trader_key="x", officer_key="y", treasury_key="z")
    with pytest.raises(TwinError, match="cannot reach"):
        run(trucks, nowhere)


def test_twin_cli(platform, tmp_path, monkeypatch):
    keys_file = tmp_path / "demo.env"
    keys_file.write_text(f"export TRADER_KEY={platform['trader']}\nexport OFFICER_KEY={platform['officer']}\n"
                         f"export TREASURY_KEY={platform['treasury']}\n")  # fmt: skip
    monkeypatch.delenv("SMARTGATE_TWIN_TRADER_KEY", raising=False)
    monkeypatch.delenv("SMARTGATE_TWIN_OFFICER_KEY", raising=False)
    monkeypatch.delenv("SMARTGATE_TWIN_TREASURY_KEY", raising=False)
    cli = CliRunner()
    missing = cli.invoke(sim_app, ["twin", "baseline-2025", "--url", platform["url"], "--no-progress"])
    assert missing.exit_code == 2
    assert "no API key" in missing.output
    args = ["twin", "baseline-2025", "--url", platform["url"], "--keys-file", str(keys_file), "--trucks", "6",
            "--speedup", "1000000", "--no-progress", "--out", str(tmp_path / "out")]  # fmt: skip
    ok = cli.invoke(sim_app, args)
    assert ok.exit_code == 0, ok.output
    assert "released 6, errors 0" in ok.output
    assert "channels (platform / scenario assumes)" in ok.output
    assert json.loads((tmp_path / "out" / "twin.json").read_text())["released"] == 6
    refused = cli.invoke(sim_app, [*args[:4], "--no-progress"], env={"SMARTGATE_TWIN_TRADER_KEY": "bad",
                                                                     "SMARTGATE_TWIN_OFFICER_KEY": "bad",
                                                                     "SMARTGATE_TWIN_TREASURY_KEY": "bad"})  # fmt: skip
    assert refused.exit_code == 3
    assert "refused" in refused.output


def test_a_503_is_retried_as_the_platform_asks_and_then_given_up() -> None:
    """503 means nothing was stored (a lock or timeout under load): the twin retries a few times, then reports it.
    The server here is an httpx transport; the test above runs the twin against the real platform."""
    import asyncio

    from simulator import twin

    answers: list[int] = []

    def serve(codes: list[int]) -> httpx.MockTransport:
        def handler(request: httpx.Request) -> httpx.Response:
            code = codes[len(answers)] if len(answers) < len(codes) else 200
            answers.append(code)
            if code == 503:
                return httpx.Response(503, json={"title": "Database unavailable"}, headers={"Retry-After": "0"})
            return httpx.Response(200, json={"id": "d-1"})

        return httpx.MockTransport(handler)

    async def once(codes: list[int]) -> tuple[Any, twin.Outcome]:
        answers.clear()
        settings = twin.TwinSettings(url="http://twin.test", trader_key="t", officer_key="o", treasury_key="b")
        async with httpx.AsyncClient(base_url=settings.url, transport=serve(codes)) as http:
            client, out = twin._Client(http, settings), twin.Outcome(n=1, truck_class="import_general")
            try:
                return await client.call(out, "take", "POST", "/x", client.officer), out
            except twin._StepFailed as exc:
                return exc, out

    got, out = asyncio.run(once([503, 503]))
    assert got == {"id": "d-1"}
    assert (out.retries, answers) == (2, [503, 503, 200])
    failed, out = asyncio.run(once([503] * 10))
    assert isinstance(failed, twin._StepFailed)
    assert "HTTP 503" in str(failed)
    assert len(answers) == twin.RETRIES_ON_503 + 1
