"""What must hold after any fault, checked from the outside (the database, the API, the CLI), never from how the
relay or the consumers work: acknowledged declarations are intact, no key took effect twice, every event reached
the ledger exactly once, nothing is left pending, and the ledger verifies."""

from __future__ import annotations

import subprocess
import time
from typing import Any

import httpx
from sqlalchemy import Engine, text

from tests.faults.load import Filer
from tests.processes import SMARTGATE

# Outbox events that are not in the ledger exactly once, and ledger entries that come from no outbox event.
_NOT_ONCE = text(
    "SELECT o.id, COUNT(l.event_id) AS n FROM outbox_events o LEFT JOIN ledger_entries l ON l.event_id = o.id "
    "GROUP BY o.id HAVING COUNT(l.event_id) <> 1"
)
_STRAY = text(
    "SELECT l.event_id FROM ledger_entries l WHERE NOT EXISTS (SELECT 1 FROM outbox_events o WHERE o.id = l.event_id)"
)


def pending(engine: Engine) -> int:
    """Outbox events not yet published."""
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT COUNT(*) FROM outbox_events WHERE published_at IS NULL")).scalar_one())


def unpublished_ids(engine: Engine) -> set[str]:
    """Ids of the outbox events not yet published (a backlog to follow)."""
    with engine.connect() as conn:
        return {r[0] for r in conn.execute(text("SELECT id FROM outbox_events WHERE published_at IS NULL"))}


def missing_from_ledger(engine: Engine, event_ids: set[str]) -> int:
    """How many of `event_ids` have no ledger entry yet."""
    with engine.connect() as conn:
        found = {r[0] for r in conn.execute(text("SELECT event_id FROM ledger_entries"))}
    return len(event_ids - found)


def ledger_problems(engine: Engine) -> list[str]:
    """Events not in the ledger exactly once, entries of no event, and a ledger not covered by a checkpoint."""
    with engine.connect() as conn:
        out = [f"event {r.id} is in the ledger {r.n} times" for r in conn.execute(_NOT_ONCE)]
        out += [f"ledger entry of unknown event {r.event_id}" for r in conn.execute(_STRAY)]
        size = int(conn.execute(text("SELECT COUNT(*) FROM ledger_entries")).scalar_one())
        signed = conn.execute(text("SELECT MAX(size) FROM ledger_checkpoints")).scalar()
    if size and (signed or 0) != size:
        out.append(f"latest checkpoint covers {signed} of {size} entries")
    return out


def wait_settled(engine: Engine, timeout: float = 60) -> float:
    """Seconds until the outbox is drained and the ledger holds every event once under a checkpoint; raises
    AssertionError with what is still wrong after `timeout`."""
    start = time.monotonic()
    while True:
        left = pending(engine)
        problems = ledger_problems(engine) if left == 0 else []
        if left == 0 and not problems:
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not settled after {timeout:.0f} s: {left} events pending; {problems[:5]}")
        time.sleep(0.1)


def assert_acknowledged_intact(engine: Engine, url: str, headers: dict[str, str], filer: Filer) -> None:
    """Every acknowledged declaration reads back as acknowledged; one declaration per key; each in the ledger."""
    assert not filer.refused, filer.refused[:5]
    assert not filer.unknown, f"{len(filer.unknown)} requests were never acknowledged"
    ids = {body["id"] for body in filer.acked.values()}
    assert len(ids) == len(filer.acked), "two keys answered with the same declaration"
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        for body in filer.acked.values():
            got = client.get(f"/api/v1/declarations/{body['id']}")
            assert got.status_code == 200, got.text
            assert got.json() == body
    with engine.connect() as conn:
        stored = {r[0] for r in conn.execute(text("SELECT id FROM declarations"))}
        in_ledger = {r[0] for r in conn.execute(text("SELECT DISTINCT subject FROM ledger_entries"))}
    # Exactly the acknowledged ones: a retried key that had already taken effect did not file a second one.
    assert stored == ids, f"{len(stored - ids)} declarations nobody was told of; {len(ids - stored)} lost"
    assert ids <= in_ledger, f"{len(ids - in_ledger)} acknowledged declarations have no ledger entry"


def assert_ledger_verifies(env: dict[str, str]) -> str:
    """`smartgate ledger verify` (with the server's settings) exits 0; returns its summary line."""
    run = subprocess.run([SMARTGATE, "ledger", "verify"], env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.startswith("OK: "), run.stdout
    return run.stdout.strip()


def summary(filer: Filer, **figures: Any) -> str:
    """One line for the test's output: the load and the measured figures."""
    measured = ", ".join(f"{k}={v:.2f}s" if isinstance(v, float) else f"{k}={v}" for k, v in figures.items())
    return f"acked={len(filer.acked)} replayed={len(filer.replayed)} {measured}"
