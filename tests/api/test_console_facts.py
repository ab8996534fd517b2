"""The console puts facts first: the declaration page's order, the queue's goods, plate, names and "documents just
provided", one search box, cleared-but-unpaid declarations, and gate holds in a declaration's history."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from services.kernel.auth import Role, create_key
from services.kernel.database import unit_of_work
from tests.api.test_console import BASE, Console
from tests.services.inspection.conftest import FakeReader, door, taken_at


@pytest.fixture
def console(client: Any, runtime: Any, keys: Any, declaration_body: dict[str, Any]) -> Console:
    return Console(client, runtime, keys, declaration_body)


def _labelled_officer(console: Console, label: str) -> dict[str, str]:
    with unit_of_work(console.runtime.sessions) as session:
        _, clear = create_key(session, secret_key=console.runtime.settings.secret_key, role=Role.officer, label=label)
    return {"Authorization": f"Bearer {clear}"}


def _at_the_gate(console: Console, keys: Any, container: str) -> dict[str, Any]:
    """A truck with `container` passes the exit camera (the declarations' events reach the gate first)."""
    console.runtime.relay.drain()
    console.runtime.extras["inspection.ocr"].reader = FakeReader(container)
    posted = console.client.post(
        "/api/v1/gate/events",
        data={"lane": "OUT-1", "direction": "out", "camera_id": "KT-OUT-1", "taken_at": taken_at()},
        files=[("image", ("door.png", door(container), "image/png"))],
        headers=keys.make("gate"),
    )
    assert posted.status_code == 201, posted.text
    console.runtime.relay.drain()  # the mismatch reaches the declarations service
    event: dict[str, Any] = posted.json()
    return event


def _sections(html: str) -> list[str]:
    return re.findall(r'<section[^>]* id="([a-z]+)"', html)


def test_the_declaration_page_shows_the_facts_then_the_decision(console, keys):
    decl = console.file()
    event = _at_the_gate(console, keys, decl["body"]["containers"][0]["number"])
    assert event["decision"] == "hold"  # submitted, not cleared: the truck waits
    console.sign_in()
    html = console.page(f"/console/declarations/{decl['id']}").text
    order = _sections(html)
    assert order[: order.index("decision") + 1] == [
        "channel", "goods", "partner", "documents", "gate", "parties", "containers", "decision",
    ]  # fmt: skip
    assert order[order.index("decision") + 1 :] == ["history", "ledger"]
    # Duties with what they were computed from: the exchange rate of the registration day and the VAT rate.
    line = console.api(decl["id"])["duties"]["lines"][0]
    assert line["vat_rate"] is not None
    assert line["vnd_per_unit"] is not None
    goods = html[html.index('id="goods"') : html.index('id="documents"')]
    assert f"{float(line['vat_rate']):g} %" in goods
    assert "Exchange rate used: 1 USD = ₫" in goods
    # The camera's images are links from the declaration itself.
    gate = html[html.index('id="gate"') : html.index('id="parties"')]
    link = re.search(rf'href="(/console/gate/{event["id"]}/images/[0-9a-f]{{64}})"', gate)
    assert link, gate
    assert console.page(link.group(1)).headers["content-type"] == "image/png"
    # The hold raised the risk: the history says so, with the gate's reason and the channel it left.
    history = html[html.index('id="history"') : html.index('id="ledger"')]
    row = re.search(r'<tr class="gate-raised">.*?</tr>', history, re.S)
    assert row, history
    assert "gate mismatch: risk reassessed" in row.group(0)
    assert "declaration not cleared" in row.group(0)
    assert "gate:KT-OUT-1" in row.group(0)
    channel = console.api(decl["id"])["channel"]
    assert f"channel now {channel} channel" in row.group(0)


def test_the_queue_shows_goods_plate_officer_names_and_documents_just_provided(console):
    body = copy.deepcopy(console.body)
    body["items"].append({**body["items"][0], "description": "Dried longans", "hs_code": "08134010"})
    body["total_gross_mass_kg"], body["total_net_mass_kg"] = "26000", "24000"
    first, second = console.file(), console.file(body)
    named = _labelled_officer(console, "Nguyễn Thị Lan")
    assert console.client.put("/api/v1/review/duty", json={"on_duty": True}, headers=named).status_code == 200
    officer_id = console.client.get("/api/v1/review/duty", headers=console.officer).json()["officer_key_id"]
    # The supervisor's way to give a declaration to a named officer.
    boss = console.client.post(
        f"{BASE}/{second['id']}/assignment",
        json={"officer_key_id": console.client.get("/api/v1/review/duty", headers=named).json()["officer_key_id"]},
        headers=_supervisor(console),
    )
    assert boss.status_code == 200, boss.text
    console.sign_in()
    # Documents asked for, then provided: the declaration comes back marked.
    html = console.page(f"/console/declarations/{first['id']}").text
    asked = console.client.post(
        f"/console/declarations/{first['id']}/decide",
        data={"outcome": "request_documents", "reason": "C/O form E", "csrf": console.csrf(html),
              "if_match": console.if_match(html)},
    )  # fmt: skip
    assert asked.status_code == 200
    up = console.client.post(
        f"{BASE}/{first['id']}/documents", files={"file": ("co.pdf", b"%PDF-1.4", "application/pdf")},
        headers=console.trader,
    )  # fmt: skip
    assert up.status_code == 201, up.text

    queue = console.page("/console").text
    rows = {
        n: re.search(rf"<tr>(?:(?!</tr>).)*{n}(?:(?!</tr>).)*</tr>", queue, re.S)
        for n in (first["number"], second["number"])
    }
    one, two = rows[first["number"]].group(0), rows[second["number"]].group(0)
    assert "Fresh lychees, in cartons" in one
    assert "HS 08109020" in one
    assert "more line" not in one
    assert "24C-123.45" in one
    assert "documents just provided" in one
    assert "documents just provided" not in two
    assert "1 more line" in two
    assert "Nguyễn Thị Lan" in two  # by name, not key id
    assert officer_id in one  # a key without a label stays its id
    # The declaration page names its assignee the same way.
    page = console.page(f"/console/declarations/{second['id']}").text
    assert "assigned to Nguyễn Thị Lan" in page
    history = page[page.index('id="history"') : page.index('id="ledger"')]
    assert "Trần Văn Minh" in history  # the supervisor who assigned it, by name
    assert "supervisor:" not in history
    # And the API's list of officers is for customs only.
    assert console.client.get("/api/v1/review/officers", headers=console.trader).status_code == 403


def _supervisor(console: Console) -> dict[str, str]:
    with unit_of_work(console.runtime.sessions) as session:
        _, clear = create_key(
            session, secret_key=console.runtime.settings.secret_key, role=Role.supervisor, label="Trần Văn Minh"
        )
    return {"Authorization": f"Bearer {clear}"}


def test_one_box_searches_number_container_plate_and_trader(console):
    body = copy.deepcopy(console.body)
    body["transport"]["truck_plate"] = "29H-555.66"
    body["containers"][0]["number"] = "MSCU1234566"
    body["consignee"]["name"] = "Công ty Vải thiều Bắc Giang"
    lychee, other = console.file(), console.file(body)
    console.sign_in()

    def found(q: str) -> set[str]:
        got = console.client.get("/console/search", params={"q": q})
        assert got.status_code == 200
        return set(re.findall(r'href="/console/declarations/([0-9a-f-]{36})"', got.text))

    assert found(other["number"]) == {other["id"]}
    assert found("MSCU 123456 6") == {other["id"]}
    assert found("29h 55566") == {other["id"]}  # case, spaces, dots and dashes do not matter
    assert found("24C-123.45") == {lychee["id"]}
    assert found("vải thiều") == {other["id"]}
    assert found("Lao Cai") == {lychee["id"]}
    assert found("Hekou Fruit") == {lychee["id"], other["id"]}  # the consignor's name too
    assert found("nothing like this") == set()
    page = console.client.get("/console/search", params={"q": "29H-555.66"}).text
    assert "truck plate" in page
    assert console.page("/console/search").status_code == 200  # an empty box: the page, no search
    # Bad input is a page, never a 500.
    for q in ("'; drop table declarations; --", "%", "x" * 500, "\u202e"):
        assert console.client.get("/console/search", params={"q": q}).status_code == 200
    for query in ("plate=%3Cscript%3E", "trader=a%00b", "number=x%20y", "trader=a"):
        bad = console.client.get(f"{BASE}?{query}", headers=console.officer)
        assert bad.status_code == 422, query
        assert bad.headers["content-type"] == "application/problem+json"
    assert console.client.get("/console/search", params={"q": "ab\x00cd"}).status_code == 200


def test_cleared_but_unpaid_declarations_are_listed(console):
    waiting, cleared = console.file(), console.file()
    console.sign_in()
    html = console.page(f"/console/declarations/{cleared['id']}").text
    done = console.client.post(
        f"/console/declarations/{cleared['id']}/decide",
        data={"outcome": "clear", "csrf": console.csrf(html), "if_match": console.if_match(html)},
    )
    assert done.status_code == 200
    after = console.api(cleared["id"])
    assert after["status"] == "cleared"
    assert after["duties_due_vnd"] > after["paid_vnd"]
    page = console.page("/console/unpaid").text
    assert cleared["number"] in page
    assert waiting["number"] not in page
    assert "₫89,001,600" in page  # owed, in VND
    listed = console.client.get(f"{BASE}?unpaid=true", headers=console.officer).json()["items"]
    assert [d["id"] for d in listed] == [cleared["id"]]


def test_the_console_knows_the_gates_mismatch_reasons():
    from api.console.routes import MISMATCH_REASONS
    from services.inspection import matching

    assert MISMATCH_REASONS == matching.MISMATCH_REASONS
