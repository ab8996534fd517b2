"""`smartgate witness …`: run a C2SP tlog-witness, and create its key."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Witness other logs: cosign their checkpoints (C2SP tlog-witness).", no_args_is_help=True)


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


@app.command("keygen")
def keygen_cmd(
    name: Annotated[str, typer.Argument(help="witness name, a schema-less URL such as witness.example.org/w1")],
    out: Annotated[Path | None, typer.Option("--out", help="write the private key here (mode 0600)")] = None,
) -> None:
    """Create an Ed25519 cosignature/v1 key; print the private key (or write it to --out) and the public vkey."""
    import os

    from ledger.witness import Cosigner

    try:
        cosigner = Cosigner.generate(name)
    except ValueError as exc:
        _fail(str(exc))
        return
    if out is None:
        typer.echo(cosigner.skey())
    else:
        try:
            fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as exc:
            _fail(f"cannot create {out}: {exc.strerror}")
            return
        with os.fdopen(fd, "w") as fh:
            fh.write(cosigner.skey() + "\n")
    typer.echo(cosigner.verifier.vkey, err=out is None)


@app.command("serve")
def serve_cmd(
    key: Annotated[Path, typer.Option("--key", help="file holding the witness private key (from `witness keygen`)")],
    log: Annotated[
        list[str],
        typer.Option("--log", help="ORIGIN=VKEY of a log to witness (repeatable; several keys per origin ok)"),
    ],
    state: Annotated[Path, typer.Option("--state", help="SQLite file of the latest cosigned checkpoint per log")],
    port: Annotated[int, typer.Option("--port", help="TCP port")] = 8070,
    host: Annotated[str, typer.Option("--host", help="interface to listen on")] = "127.0.0.1",
) -> None:
    """Serve POST /add-checkpoint: cosign each log's checkpoints while they stay consistent with what it saw."""
    import sqlite3

    import uvicorn

    from ledger.checkpoint import Verifier
    from ledger.verify import CheckpointError
    from ledger.witness import Cosigner, Witness, WitnessState
    from ledger.witness_server import create_witness_app

    try:
        cosigner = Cosigner.from_skey(key.read_text())
    except OSError as exc:
        _fail(f"cannot read {key}: {exc.strerror}")
        return
    except ValueError as exc:
        _fail(f"{key}: {exc}")
        return
    logs: dict[str, list[Verifier]] = {}
    for item in log:
        origin, sep, vkey = item.partition("=")
        if not sep or not origin:
            _fail(f"--log {item!r}: expected ORIGIN=VKEY")
        try:
            logs.setdefault(origin, []).append(Verifier.from_vkey(vkey))
        except CheckpointError as exc:
            _fail(f"--log {origin}: {exc}")
    try:
        witness = Witness(cosigner, logs, WitnessState(state))
    except (sqlite3.Error, OSError) as exc:
        _fail(f"cannot open state {state}: {exc}")
        return
    typer.echo(f"witness {cosigner.verifier.vkey} on http://{host}:{port}/add-checkpoint for {', '.join(logs)}")
    uvicorn.run(create_witness_app(witness), host=host, port=port, log_config=None, access_log=False)
