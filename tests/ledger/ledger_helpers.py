"""Shared helpers of the ledger tests (a uniquely named module: `conftest` is ambiguous across test folders)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from ledger.writer import Event

REPO = Path(__file__).resolve().parents[2]
ORIGIN = "smartgate.test/ledger"
# A fixed, public test key: never use it for anything but tests.
TEST_SEED = bytes(range(32))
PG_URL_ENV = "SMARTGATE_TEST_DATABASE_URL"
ANVIL_DEV_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"


def make_events(n: int, *, subjects: int = 5, start: int = 0, payload_size: int = 40) -> list[Event]:
    """Deterministic events spread round-robin over a few subjects."""
    t0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
    return [
        Event(
            subject=f"DECL-{i % subjects:04d}",
            event_type="declaration.filed" if i < subjects else "declaration.amended",
            event_id=f"evt-{i:08d}",
            payload=(f'{{"n":{i},"pad":"' + "x" * payload_size + '"}').encode(),
            time=t0 + timedelta(seconds=i),
        )
        for i in range(start, start + n)
    ]
