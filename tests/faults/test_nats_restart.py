"""NATS JetStream killed (-9) and restarted under a filing load in the distributed deployment: the declarations and
provenance services as separate processes on PostgreSQL, on a nats-server of this test's own. Filing goes on while
NATS is down (events wait in the outbox); once it is back, every acknowledged declaration reaches the ledger exactly
once, the outbox drains, the consumers catch up and `smartgate ledger verify` passes."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine

from tests.conftest import _free_port
from tests.faults.invariants import (
    assert_acknowledged_intact,
    assert_ledger_verifies,
    missing_from_ledger,
    summary,
    unpublished_ids,
    wait_settled,
)
from tests.faults.load import Filer
from tests.faults.natsserver import NatsServer
from tests.processes import SMARTGATE, Processes, make_keys, server_env, until, wait_ready

SERVICES = ("declarations", "provenance")


@pytest.mark.slow
def test_nats_restart_under_load_loses_no_event(
    pg_url: str, declaration_body: dict[str, Any], processes: Processes, tmp_path: Path
) -> None:
    nats = NatsServer(processes, tmp_path / "jetstream")
    nats.start()
    stream = f"SGFAULT_{uuid.uuid4().hex[:10]}"
    env = server_env(pg_url, tmp_path / "var", SMARTGATE_BUS_URL=nats.url, SMARTGATE_BUS_STREAM=stream,
                     SMARTGATE_BUS_PREFIX=stream.lower(), SMARTGATE_LEDGER_CHECKPOINT_SECONDS="0.5")  # fmt: skip
    urls = {}
    for service in SERVICES:
        port = _free_port()
        urls[service] = f"http://127.0.0.1:{port}"
        processes.start(service, [SMARTGATE, "serve", "--port", str(port), "--services", service, "--no-console"],
                        env)  # fmt: skip
    for url in urls.values():
        wait_ready(url, processes)
    trader = make_keys(pg_url, env["SMARTGATE_SECRET_KEY"])["trader"]
    engine = create_engine(pg_url)
    # Paced below what the provenance consumer appends per second over NATS on this machine (~30 events/s, 3 per
    # filing): the recovery measured is the outage's, not a backlog the load would build anyway.
    filer = Filer(urls["declarations"], trader, declaration_body, threads=2, pause=0.25)
    try:
        filer.start()
        try:
            filer.wait_acked(20)
            until(lambda: nats.consumers(stream), message="the provenance consumer did not subscribe")
            nats.kill()
            # Filing does not need the bus: it goes on, its events waiting in the outbox.
            filer.wait_acked(filer.count() + 15, timeout=45)
            backlog = unpublished_ids(engine)
            assert backlog, "events filed while NATS is down cannot have been published"
            back = time.monotonic()
            nats.start()
            # Recovery: the backlog of the outage in the ledger (provenance got it over NATS), under load.
            until(lambda: missing_from_ledger(engine, backlog) == 0, timeout=60,
                  message="the events held during the outage did not reach the ledger")  # fmt: skip
            recovered = time.monotonic() - back
            filer.wait_acked(filer.count() + 15, timeout=45)
        finally:
            filer.stop()
        retried = filer.retry_unknown()
        wait_settled(engine)
        settled = time.monotonic() - back

        def caught_up() -> bool:
            consumers = nats.consumers(stream)
            return bool(consumers) and all(counts == (0, 0) for counts in consumers.values())

        # A message delivered just before the kill, whose ack died with the connection, is redelivered (and
        # deduplicated) only when the consumer's ack wait (30 s from its delivery) runs out.
        until(caught_up, timeout=60, message=f"the NATS consumers did not catch up: {nats.consumers(stream)}")
        caught = time.monotonic() - back
        assert_acknowledged_intact(engine, urls["declarations"], trader, filer)
        verified = assert_ledger_verifies(env)
        print(  # noqa: T201 - the figures of docs/reliability.md (`pytest -s` shows them)
            "\nnats-restart:",
            summary(
                filer,
                retried=len(retried),
                backlog=len(backlog),
                recovered=recovered,
                settled=settled,
                consumers=caught,
            ),
            "|",
            verified,
        )
    finally:
        engine.dispose()
