"""A NATS JetStream server of the test's own (the machine's shared one on 4222 must never be restarted): started,
killed and restarted on the same port and store directory, and asked whether its consumers have caught up."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import time
from pathlib import Path

from tests.conftest import _free_port
from tests.processes import Processes, require

NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"


class NatsServer:
    """`nats-server -js` on a free loopback port, its JetStream store under `store`, run by `processes`."""

    def __init__(self, processes: Processes, store: Path) -> None:
        require(None if os.access(NATS_SERVER, os.X_OK) else "nats-server is not installed")
        self.processes = processes
        self.store = store
        self.port = _free_port()
        self.url = f"nats://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> float:
        """Start (or restart) the server; returns the seconds until it accepted a connection."""
        args = [NATS_SERVER, "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", str(self.store)]
        begin = time.monotonic()
        self.processes.start("nats", args, dict(os.environ))
        while time.monotonic() - begin < timeout:
            self.processes.check_alive()
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return time.monotonic() - begin
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"nats-server did not listen within {timeout:.0f} s: {self.processes.log('nats')}")

    def kill(self) -> None:
        """kill -9: no flush, no goodbye to the clients."""
        self.processes.kill("nats")

    def consumers(self, stream: str) -> dict[str, tuple[int, int]]:
        """Each durable consumer of `stream`: (messages not yet delivered, delivered but not acknowledged)."""

        async def ask() -> dict[str, tuple[int, int]]:
            import nats

            nc = await nats.connect(self.url, connect_timeout=2, allow_reconnect=False)
            try:
                infos = await nc.jetstream(timeout=5).consumers_info(stream)
            finally:
                await nc.close()
            return {c.name: (c.num_pending, c.num_ack_pending) for c in infos}

        return asyncio.run(ask())
