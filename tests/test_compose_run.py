"""compose.yaml run for real, in containers (`make compose-test` brings the deployment up and runs this file): a
declaration filed at the gateway reaches the ledger and the inspection read model and its bundle verifies; a
service killed (SIGKILL, as a crash) comes back by its restart policy, and one cut off the network comes back when
reconnected, with nothing filed meanwhile lost. Skipped unless SMARTGATE_COMPOSE (the docker-compose command line
of the running project) and SMARTGATE_COMPOSE_URL (the gateway) are set."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from services.declarations.schemas import EXAMPLE
from services.declarations.tariff import DEMO_RATES
from tests.processes import until

COMPOSE = shlex.split(os.environ.get("SMARTGATE_COMPOSE", ""))
URL = os.environ.get("SMARTGATE_COMPOSE_URL", "")

pytestmark = [
    pytest.mark.skipif(not (COMPOSE and URL), reason="no compose deployment (make compose-test runs this file)"),
    pytest.mark.xdist_group("compose"),
]


def compose(*args: str, timeout: float = 120) -> str:
    """Run docker-compose on the project under test; its stdout."""
    done = subprocess.run([*COMPOSE, *args], capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{args}: {done.stderr}"
    return done.stdout


def docker(*args: str, timeout: float = 60) -> str:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"docker {args}: {done.stderr}"
    return done.stdout.strip()


def container(service: str) -> str:
    (cid,) = compose("ps", "-q", service).split()
    return cid


def cli(*args: str) -> str:
    """`smartgate ARGS` inside the declarations container (its settings and database)."""
    return compose("exec", "-T", "declarations", "smartgate", *args)


def sql(query: str) -> str:
    return compose("exec", "-T", "postgres", "psql", "-U", "smartgate", "-d", "smartgate", "-tAc", query).strip()


@pytest.fixture(scope="module")
def keys() -> dict[str, dict[str, str]]:
    out = {}
    for role, extra in (("trader", ["--org", f"Compose Test {uuid.uuid4().hex[:6]}"]), ("supervisor", [])):
        made = json.loads(cli("keys", "create", "--role", role, *extra))
        out[role] = {"Authorization": f"Bearer {made['api_key']}"}
    for currency, rate in DEMO_RATES.items():  # duties that cannot be assessed are never cleared
        cli("tariff", "rate", currency, str(rate), "--source", "compose-test")
    return out


@pytest.fixture
def api() -> Iterator[httpx.Client]:
    with httpx.Client(base_url=URL, timeout=30) as client:
        yield client


def file_declaration(api: httpx.Client, trader: dict[str, str]) -> dict[str, Any]:
    """File and submit one declaration through the gateway, retrying while its service is away (a 503)."""
    key = uuid.uuid4().hex

    def post() -> httpx.Response | None:
        resp = api.post("/api/v1/declarations?submit=true", json=EXAMPLE, headers={**trader, "Idempotency-Key": key})
        return resp if resp.status_code != 503 else None

    filed = until(post, timeout=90, message="the declarations service did not take the declaration")
    assert filed.status_code == 201, filed.text
    out: dict[str, Any] = filed.json()
    out["etag"] = filed.headers["ETag"]
    return out


def ledger_entries(api: httpx.Client, trader: dict[str, str], declaration_id: str, count: int) -> Callable[[], Any]:
    def bundle() -> httpx.Response | None:
        resp = api.get(f"/api/v1/ledger/subjects/{declaration_id}/bundle", headers=trader)
        return resp if resp.status_code == 200 and len(resp.json().get("entries", [])) >= count else None

    return bundle


def verify(api: httpx.Client, bundle: httpx.Response, declaration_id: str) -> None:
    from ledger.bundle import verify_bundle
    from ledger.checkpoint import Verifier

    key = api.get("/api/v1/ledger/public-key").text.strip()
    report = verify_bundle(bundle.content, trusted_key=Verifier.from_vkey(key))
    assert report.subject == declaration_id


def ready(api: httpx.Client) -> bool:
    try:
        return api.get("/readyz").status_code == 200
    except httpx.HTTPError:
        return False


def test_a_declaration_reaches_the_ledger_and_the_gate_through_the_containers(
    api: httpx.Client, keys: dict[str, dict[str, str]]
) -> None:
    trader, supervisor = keys["trader"], keys["supervisor"]
    assert api.get("/readyz").json()["services"].keys() >= {"declarations", "provenance", "inspection", "webhooks"}
    decl = file_declaration(api, trader)
    assert decl["channel"] in ("yellow", "red")
    decided = api.post(f"/api/v1/declarations/{decl['id']}/decisions",
                       headers={**supervisor, "If-Match": decl["etag"]},
                       json={"outcome": "clear", "reason": "documents in order"})  # fmt: skip
    assert decided.status_code == 200, decided.text
    got = until(ledger_entries(api, trader, decl["id"], 4), timeout=60)
    verify(api, got, decl["id"])
    status = decided.json()["status"]
    until(lambda: sql(f"SELECT status FROM gate_expected_declarations WHERE declaration_id = '{decl['id']}'") == status)
    doc = api.get("/openapi.json").json()
    assert {"/api/v1/declarations", "/api/v1/ledger/public-key", "/api/v1/gate/events", "/api/v1/webhooks"} <= set(
        doc["paths"]
    )
    assert api.get("/api/v1/webhooks", headers=trader).status_code == 200


def test_a_killed_service_comes_back_by_its_restart_policy_and_nothing_is_lost(
    api: httpx.Client, keys: dict[str, dict[str, str]]
) -> None:
    trader = keys["trader"]
    cid = container("provenance")
    started = docker("inspect", "-f", "{{.State.StartedAt}}", cid)
    # SIGKILL to the container's process from the host, as the OOM killer or a crash would end it. (`docker kill`
    # itself counts as a manual stop, which Docker's restart policies leave stopped on purpose.)
    os.kill(int(docker("inspect", "-f", "{{.State.Pid}}", cid)), signal.SIGKILL)
    # Filed while the ledger's process is dead: the events wait in JetStream.
    decl = file_declaration(api, trader)
    until(lambda: docker("inspect", "-f", "{{.State.StartedAt}}", cid) != started, timeout=60,
          message="the restart policy did not restart provenance")  # fmt: skip
    assert docker("inspect", "-f", "{{.RestartCount}}", cid) != "0"
    got = until(ledger_entries(api, trader, decl["id"], 3), timeout=90)
    verify(api, got, decl["id"])
    until(lambda: ready(api), timeout=60, message="the gateway did not get ready again")


def test_a_service_cut_off_the_network_catches_up_when_reconnected(
    api: httpx.Client, keys: dict[str, dict[str, str]]
) -> None:
    trader = keys["trader"]
    cid = container("provenance")
    network = docker("inspect", "-f", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}", cid).split()[0]
    docker("network", "disconnect", network, cid)
    try:
        # The gateway cannot reach it: a 503 at once on a new connection; a pooled keep-alive connection to the
        # vanished peer waits for the gateway's read timeout (60 s) and answers 503 then.
        cut = api.get("/api/v1/ledger/public-key", timeout=90)
        assert cut.status_code in (503, 504), cut.text
        decl = file_declaration(api, trader)  # the declarations service goes on
        assert api.get(f"/api/v1/declarations/{decl['id']}", headers=trader).status_code == 200
    finally:
        docker("network", "connect", "--alias", "provenance", network, cid)
    got = until(ledger_entries(api, trader, decl["id"], 3), timeout=90)
    verify(api, got, decl["id"])
    until(lambda: ready(api), timeout=60, message="the gateway did not get ready again")
