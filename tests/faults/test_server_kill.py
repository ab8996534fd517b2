"""kill -9 of `smartgate serve` under a filing load, on SQLite and on PostgreSQL: after a restart on the same
database, and the clients' retries with their same Idempotency-Keys, nothing acknowledged is lost or changed, no
key took effect twice, the outbox drains into the ledger exactly once, and `smartgate ledger verify` passes."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine

from tests.conftest import _free_port
from tests.faults.invariants import (
    assert_acknowledged_intact,
    assert_ledger_verifies,
    pending,
    summary,
    wait_settled,
)
from tests.faults.load import PATH, Filer
from tests.processes import SMARTGATE, Processes, make_keys, server_env, wait_ready

# Filings acknowledged before the kill: enough for requests, relay passes and checkpoints to be in flight.
BEFORE_KILL = 40


@pytest.mark.slow
def test_kill_9_under_load_loses_nothing_acknowledged(
    database_url: str, declaration_body: dict[str, Any], processes: Processes, tmp_path: Path
) -> None:
    env = server_env(database_url, tmp_path / "var", SMARTGATE_LEDGER_CHECKPOINT_SECONDS="0.5")
    trader = make_keys(database_url, env["SMARTGATE_SECRET_KEY"])["trader"]
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    serve = [SMARTGATE, "serve", "--port", str(port)]
    processes.start("server", serve, env)
    wait_ready(url, processes)
    engine = create_engine(database_url)
    filer = Filer(url, trader, declaration_body, threads=4)
    try:
        filer.start()
        try:
            filer.wait_acked(BEFORE_KILL)
            processes.kill("server")  # SIGKILL to the process group: no shutdown, no final relay drain
        finally:
            filer.stop()
        acked_before = len(filer.acked)
        assert filer.unknown, "the kill should leave requests without an answer"
        left_pending = pending(engine)

        restarted = time.monotonic()
        processes.start("server", serve, env)
        ready = wait_ready(url, processes)
        retried = filer.retry_unknown()
        wait_settled(engine)
        settled = time.monotonic() - restarted
        # Keys acknowledged before the kill still answer with their first response (and file nothing new).
        with httpx.Client(base_url=url, timeout=30) as client:
            for key in sorted(filer.acked)[:5]:
                again = client.post(PATH, json=declaration_body, headers={**trader, "Idempotency-Key": key})
                assert again.status_code == 201, again.text
                assert again.headers.get("idempotent-replayed") == "true"
                assert again.json() == filer.acked[key]

        assert_acknowledged_intact(engine, url, trader, filer)
        assert set(retried) <= set(filer.acked)
        verified = assert_ledger_verifies(env)
        print(  # noqa: T201 - the figures of docs/reliability.md (`pytest -s` shows them)
            "\nkill-9:",
            summary(
                filer,
                acked_before_kill=acked_before,
                retried=len(retried),
                pending_at_kill=left_pending,
                ready=ready,
                settled=settled,
            ),
            "|",
            verified,
        )
    finally:
        engine.dispose()
