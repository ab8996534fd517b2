"""The provenance service submits each checkpoint to its witnesses: cosignatures are stored and published with the
checkpoint and in bundles; a witness that is down leaves the checkpoint unwitnessed until it is back."""

from __future__ import annotations

import hashlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from typer.testing import CliRunner

from ledger.checkpoint import Signer, open_checkpoint
from ledger.witness import Cosigner, Witness, WitnessState, cosignatures
from ledger.witness_server import create_witness_app
from services.kernel.runtime import Runtime
from services.provenance.checkpointer import Checkpointer
from services.provenance.cli import app as ledger_app
from services.provenance.service import Provenance
from tests.api.support import Api

LEDGER = "/api/v1/ledger"
ORIGIN = "kimthanh.smartgate/ledger"
LOG = Signer.from_seed("smartgate-witness-test", hashlib.sha256(b"log").digest())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Served:
    """A witness served by uvicorn in a thread on 127.0.0.1."""

    def __init__(self, witness: Witness, port: int) -> None:
        self.witness, self.port = witness, port
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        config = uvicorn.Config(create_witness_app(self.witness), host="127.0.0.1", port=self.port, log_config=None)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "witness did not start"
            time.sleep(0.02)

    def stop(self) -> None:
        if self.server is not None and self.thread is not None:
            self.server.should_exit = True
            self.thread.join(timeout=10)


@pytest.fixture
def witnesses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Served]]:
    """Two witnesses of the app's log (only the first one running), configured before the app starts."""
    served = [
        Served(
            Witness(
                Cosigner.from_seed(f"w{i}.partner.test", hashlib.sha256(bytes([i])).digest()),
                {ORIGIN: [LOG.verifier]},
                WitnessState(tmp_path / f"w{i}.sqlite"),
            ),
            _free_port(),
        )
        for i in range(2)
    ]
    monkeypatch.setenv("SMARTGATE_LEDGER_SIGNING_KEY", LOG.skey())
    spec = ",".join(f"http://127.0.0.1:{s.port}|{s.witness.cosigner.verifier.vkey}" for s in served)
    monkeypatch.setenv("SMARTGATE_LEDGER_WITNESSES", spec)
    monkeypatch.setenv("SMARTGATE_LEDGER_WITNESS_QUORUM", "2")
    monkeypatch.setenv("SMARTGATE_LEDGER_WITNESS_TIMEOUT_SECONDS", "1")
    served[0].start()
    try:
        yield served
    finally:
        for s in served:
            s.stop()


def test_checkpoints_are_cosigned_and_a_down_witness_catches_up(
    witnesses: list[Served],
    api: Api,
    trader: dict[str, str],
    client: Any,
    runtime: Runtime,
    prov: Provenance,
    checkpointer: Checkpointer,
    tmp_path: Path,
) -> None:
    keys = [s.witness.cosigner.verifier for s in witnesses]
    filed = api.file(trader, submit=True)
    runtime.relay.drain()
    outcome = checkpointer.checkpoint_now()
    assert outcome.signed is not None
    assert outcome.witnessed is not None
    assert list(outcome.witnessed.by_witness) == [keys[0].vkey]
    assert list(outcome.witnessed.unavailable) == ["w1.partner.test"]
    assert not outcome.witnessed.witnessed  # quorum 2, one witness down: the checkpoint goes on unwitnessed

    note = client.get(f"{LEDGER}/checkpoint").content
    assert open_checkpoint(note, prov.verifier, origin=ORIGIN).size == outcome.signed[0]
    assert [c.witness for c in cosignatures(note, keys)] == [keys[0]]

    # The second witness comes back: the next pass (nothing new to sign) gets its cosignature of the latest one.
    witnesses[1].start()
    again = checkpointer.checkpoint_now()
    assert again.signed is None
    assert again.witnessed is not None
    assert list(again.witnessed.by_witness) == [keys[1].vkey]
    assert checkpointer.checkpoint_now().witnessed is None  # both have cosigned it: nobody is asked again

    bundle = client.get(f"{LEDGER}/subjects/{filed['id']}/bundle", headers=trader)
    path = tmp_path / "bundle.json"
    path.write_bytes(bundle.content)
    runner = CliRunner()
    args = ["verify-bundle", str(path), "--key", LOG.verifier.vkey, "--witness", keys[0].vkey]
    ok = runner.invoke(ledger_app, [*args, "--witness", keys[1].vkey, "--quorum", "2"])
    assert ok.exit_code == 0, ok.output
    assert "witnessed:  2 of 2 witnesses (quorum 2)" in ok.stdout
    assert "anchor:" in ok.stdout

    # A new checkpoint: both witnesses get it with a consistency proof from the size they cosigned.
    api.file(trader, submit=True)
    runtime.relay.drain()
    third = checkpointer.checkpoint_now()
    assert third.witnessed is not None
    assert third.witnessed.witnessed
    assert third.witnessed.refused == {}


def test_the_console_shows_who_cosigned(
    witnesses: list[Served], client: Any, runtime: Runtime, keys: Any, declaration_body: dict[str, Any]
) -> None:
    from tests.api.test_console import Console

    console = Console(client, runtime, keys, declaration_body)
    decl = console.file()
    console.sign_in()
    runtime.relay.drain()
    runtime.extras["provenance.checkpointer"].checkpoint_now()
    html = console.page(f"/console/declarations/{decl['id']}").text
    assert "Verified here" in html
    assert "Not witnessed: cosigned by 1 of 2 witness(es), 2 required." in html
    assert "Cosigned by <code>w0.partner.test</code>" in html
    witnesses[1].start()
    runtime.extras["provenance.checkpointer"].checkpoint_now()
    html = console.page(f"/console/declarations/{decl['id']}").text
    assert "Witnessed: cosigned by 2 of 2 witness(es), 2 required." in html
    assert "Cosigned by <code>w1.partner.test</code>" in html
