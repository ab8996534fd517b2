"""The distributed deployment for real: each service in its own process (`smartgate serve --services NAME`), events
between them over NATS JetStream, one PostgreSQL database, and `smartgate gateway` in front. A declaration filed at
the gateway reaches the provenance process (ledger), the inspection process (its read model) and the webhooks
process (a delivery to the trader), each only through the bus."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from api.gateway import PREFIXES, parse_routes, service_for
from services.declarations.schemas import EXAMPLE
from services.kernel.settings import SERVICES
from tests.conftest import _free_port, pg_server_url
from tests.processes import (
    APP_ROLE,
    SMARTGATE,
    Processes,
    as_service_role,
    make_keys,
    pg_database,
    require,
    seed_rates,
    server_env,
    until,
    wait_ready,
)
from tests.services.kernel.test_nats_bus import NATS_URL, _reachable
from tests.services.webhooks.test_webhooks import Receiver

# ---------------------------------------------------------------------------------------------- routing, statically


def test_the_gateway_routes_every_path_to_the_service_that_serves_it(tmp_path: Path) -> None:
    """Each service's own app (as its process builds it) against the gateway's table, so a route added to any
    service is checked too."""
    from api.app import create_app
    from services.kernel.settings import KernelSettings

    assert set(SERVICES) == set(PREFIXES)
    routes = {name: f"http://{name}:8000" for name in SERVICES}
    for name in SERVICES:
        settings = KernelSettings(environment="test", secret_key=secrets.token_urlsafe(40), services=name,
                                  database_url=f"sqlite:///{tmp_path / 'x.db'}", var_dir=tmp_path / name)  # fmt: skip
        app = create_app(settings)
        paths = [path for path in app.openapi()["paths"] if path.startswith("/api/")]
        assert paths, name
        for path in paths:
            concrete = path.replace("{", "x").replace("}", "")
            assert service_for(concrete, routes) == name, path
        app.state.runtime.close()
    assert service_for("/api/v1/declarationsX", routes) is None
    assert service_for("/api/v1/ledger", {"declarations": "http://d"}) is None  # not routed here


@pytest.mark.parametrize(
    ("items", "message"),
    [
        ([], "no routes"),
        (["declarations"], "expected NAME=http"),
        (["declarations=ftp://x"], "expected NAME=http"),
        (["billing=http://x"], "unknown service 'billing'"),
        (["webhooks=http://a", "webhooks=http://b"], "given twice"),
    ],
)
def test_bad_routes_are_refused(items: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_routes(items)


def test_the_cli_refuses_bad_routes_and_unknown_services_in_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "SMARTGATE_VAR_DIR": str(tmp_path)}
    bad = subprocess.run([SMARTGATE, "gateway", "--route", "billing=http://x"], env=env, capture_output=True,
                         text=True, timeout=60)  # fmt: skip
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        "smartgate: error: route 'billing=http://x': unknown service 'billing'; known: "
        "declarations, provenance, inspection, webhooks, traceability, exchange"
    ]
    typo = subprocess.run([SMARTGATE, "serve", "--services", "declaration"], env=env, capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert typo.returncode == 2
    assert "unknown service(s) declaration" in typo.stderr
    assert len(typo.stderr.strip().splitlines()) == 1


def test_the_gateway_alone_bounds_bodies_refuses_ambiguous_paths_and_reports_a_dead_service() -> None:
    from fastapi.testclient import TestClient

    from api.gateway import create_gateway
    from services.kernel.settings import KernelSettings

    settings = KernelSettings(environment="test", secret_key=secrets.token_urlsafe(40))
    dead = f"http://127.0.0.1:{_free_port()}"  # nothing listens there
    with TestClient(create_gateway(settings, parse_routes([f"declarations={dead}"]))) as gw:
        big = gw.post("/console/login", content=b"key=" + b"x" * (settings.max_body_bytes + 1),
                      headers={"content-type": "application/x-www-form-urlencoded"})  # fmt: skip
        assert big.status_code == 413
        assert gw.get("/api/v1/declarations/%2e%2e/x").status_code == 400
        assert gw.get("/api/v1/ledger/checkpoint").status_code == 404  # provenance is not routed here
        down = gw.get("/api/v1/declarations")
        assert down.status_code == 503
        assert down.headers["retry-after"] == "5"
        assert down.json()["detail"] == "the declarations service is unreachable; try again shortly"
        ready = gw.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["services"] == {"declarations": "ConnectError"}


# ---------------------------------------------------------------------------------------------- the real thing


class Deployment:
    def __init__(self, url: str, db_url: str, secret: str, processes: Processes) -> None:
        self.url, self.db_url, self.secret, self.processes = url, db_url, secret, processes


@pytest.fixture
def deployment(_templates: dict[str, str], tmp_path: Path) -> Iterator[Deployment]:
    require(None if pg_server_url() else "PostgreSQL: set SMARTGATE_TEST_DATABASE_URL (.ci/run does)")
    require(None if _reachable(NATS_URL) else f"NATS not reachable at {NATS_URL}")
    tag = uuid.uuid4().hex[:10]
    processes = Processes(tmp_path / "logs")
    with pg_database(_templates["postgresql"], "sg_dist") as db_url:
        # As deployed (scripts/run-distributed.sh, compose.yaml): the services connect as the least-privilege role
        # that may only read and append to the ledger; the test itself keeps the owner's URL for its checks.
        env = server_env(
            as_service_role(db_url),
            tmp_path / "var",
            SMARTGATE_BUS_URL=NATS_URL,
            SMARTGATE_BUS_STREAM=f"SGDIST_{tag}",
            SMARTGATE_BUS_PREFIX=f"sgdist{tag}",
            SMARTGATE_LEDGER_CHECKPOINT_SECONDS="0.5",
            SMARTGATE_WEBHOOK_POLL_SECONDS="0.2",
        )
        ports = {s: _free_port() for s in SERVICES}
        gateway_port = _free_port()
        try:
            for service, port in ports.items():
                processes.start(service, [SMARTGATE, "serve", "--port", str(port), "--services", service,
                                          "--no-console"], env)  # fmt: skip
            routes = [f"--route={s}=http://127.0.0.1:{p}" for s, p in ports.items()]
            processes.start("gateway", [SMARTGATE, "gateway", "--port", str(gateway_port), *routes], env)
            url = f"http://127.0.0.1:{gateway_port}"
            # Our gateway (not whatever else took a port meanwhile), with every service ready.
            wait_ready(url, processes, accept=lambda body: set(body.get("services", {})) == set(SERVICES))
            yield Deployment(url, db_url, env["SMARTGATE_SECRET_KEY"], processes)
        finally:
            processes.stop_all()

            async def drop_stream() -> None:
                import nats

                nc = await nats.connect(NATS_URL)
                try:
                    await nc.jetstream().delete_stream(f"SGDIST_{tag}")
                finally:
                    await nc.close()

            try:
                asyncio.run(drop_stream())
            except Exception:  # noqa: BLE001 - nothing was published, or NATS went away: not this test's failure
                pass


@pytest.mark.xdist_group("distributed")
def test_a_declaration_crosses_every_service_through_the_gateway_and_the_bus(deployment: Deployment) -> None:
    from ledger.bundle import verify_bundle
    from ledger.checkpoint import Verifier

    keys = make_keys(deployment.db_url, deployment.secret)
    seed_rates(deployment.db_url)  # duties that cannot be assessed are never cleared
    trader, supervisor = keys["trader"], keys["supervisor"]
    receiver = Receiver()
    try:
        with httpx.Client(base_url=deployment.url, timeout=30) as api:
            hook = api.post("/api/v1/webhooks", json={"url": receiver.url}, headers=trader)
            assert hook.status_code == 201, hook.text
            rid = uuid.uuid4().hex
            filed = api.post("/api/v1/declarations?submit=true", json=EXAMPLE,
                             headers={**trader, "Idempotency-Key": uuid.uuid4().hex, "X-Request-ID": rid})  # fmt: skip
            assert filed.status_code == 201, filed.text
            assert filed.headers.get_list("x-request-id") == [rid]  # carried to the service and back, once
            decl = filed.json()
            assert decl["channel"] in ("yellow", "red")

            # webhooks process: a signed delivery of the declaration's events
            until(lambda: len(receiver.requests) >= 3)
            from standardwebhooks import Webhook

            types = [Webhook(hook.json()["secret"]).verify(r["body"], r["headers"])["type"] for r in receiver.requests]
            assert types[:3] == ["declaration.created", "declaration.submitted", "declaration.assessed"]

            # a supervisor decides (on the version filed: If-Match) through the gateway; the decision reaches the
            # ledger in the provenance process
            decided = api.post(f"/api/v1/declarations/{decl['id']}/decisions",
                               headers={**supervisor, "If-Match": filed.headers["ETag"]},
                               json={"outcome": "clear", "reason": "documents in order"})  # fmt: skip
            assert decided.status_code == 200, decided.text

            def bundle() -> Any:  # created, submitted, assessed, cleared: all appended and checkpointed
                resp = api.get(f"/api/v1/ledger/subjects/{decl['id']}/bundle", headers=trader)
                return resp if resp.status_code == 200 and len(resp.json().get("entries", [])) >= 4 else None

            got = until(bundle)
            key = api.get("/api/v1/ledger/public-key").text.strip()
            report = verify_bundle(got.content, trusted_key=Verifier.from_vkey(key))
            assert report.subject == decl["id"]
            assert len(report.entries) >= 4

            # inspection process: its read model of declarations expected at the gate
            engine = create_engine(deployment.db_url)
            try:

                def expected() -> Any:
                    with engine.connect() as conn:
                        return conn.execute(text("SELECT status FROM gate_expected_declarations WHERE "
                                                 "declaration_id = :id"), {"id": decl["id"]}).scalar()  # fmt: skip

                assert until(lambda: expected() == decided.json()["status"])
                with engine.connect() as conn:  # every service process connected as the least-privilege role
                    users = conn.execute(text("SELECT DISTINCT usename FROM pg_stat_activity WHERE datname = "
                                              "current_database() AND pid <> pg_backend_pid()")).scalars()  # fmt: skip
                    assert set(users) == {APP_ROLE}
            finally:
                engine.dispose()
            assert api.get("/api/v1/gate/events", headers=supervisor).status_code == 200

            # one OpenAPI document for all; the console served by the gateway
            doc = api.get("/openapi.json").json()
            assert {"/api/v1/declarations", "/api/v1/ledger/public-key", "/api/v1/gate/events",
                    "/api/v1/webhooks"} <= set(doc["paths"])  # fmt: skip
            assert "x-missing-services" not in doc["info"]
            assert api.get("/console/login").status_code == 200
            signed_in = api.post("/console/login", data={"key": supervisor["Authorization"][7:]})
            assert signed_in.status_code == 303
            queue = api.get("/console", cookies=signed_in.cookies)
            assert queue.status_code == 200

            # a path must mean to the service what it meant to the gateway
            for sneaky in ("/api/v1/ledger/%2e%2e/webhooks", "/api/v1/ledger/..%2F..%2F..%2Fconsole/login",
                           "/api/v1/declarations/a%2Fb"):  # fmt: skip
                refused = api.get(sneaky, headers=trader)
                assert refused.status_code == 400, sneaky
                assert refused.headers["content-type"] == "application/problem+json"
            key_resp = api.get("/api/v1/ledger/public-key")
            assert len(key_resp.headers.get_list("date")) == 1  # the gateway's own, not the service's as well
            assert int(key_resp.headers["content-length"]) == len(key_resp.content)

            # errors stay problems: an unknown path, and a service that is down
            missing = api.get("/api/v1/nothing")
            assert missing.status_code == 404
            assert missing.headers["content-type"] == "application/problem+json"
            deployment.processes.kill("webhooks", signal.SIGTERM)
            down = api.get("/api/v1/webhooks", headers=trader)
            assert down.status_code == 503
            assert down.headers["content-type"] == "application/problem+json"
            assert "webhooks" in down.json()["detail"]
            assert api.get("/readyz").status_code == 503
            assert api.get(f"/api/v1/declarations/{decl['id']}", headers=trader).status_code == 200  # others go on
    finally:
        receiver.close()
