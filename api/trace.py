"""`smartgate trace bundle SSCC`: a pallet's whole trace as one offline-verifiable file.

The edge may join what the services keep apart: the trace's events come from the traceability service's tables,
their proofs from the provenance service's ledger (its public bundles, all against the latest checkpoint), and
the log key signs the whole, so no event can be dropped or added unnoticed. `smartgate ledger verify-bundle FILE`
checks it (ledger/bundle.py, `smartgate-trace-bundle/v1`; docs/traceability.md, "The buyer's view").
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from services.provenance.service import Provenance

app = typer.Typer(help="Traceability: a pallet's trace for buyers.", no_args_is_help=True)


class TraceBundleError(Exception):
    """Why no trace bundle was written, and the exit code that says so (2: bad input, 1: nothing to bundle)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def build_trace_bundle(sessions: sessionmaker[Session], prov: Provenance, sscc: str) -> dict[str, Any]:
    """The signed trace bundle of the pallet `sscc`: every event of its trace with its ledger bundle, one
    checkpoint. TraceBundleError when the SSCC is invalid, unknown, or an event is not yet checkpointed."""
    from ledger import bundle as ledger_bundle
    from services.kernel.database import unit_of_work
    from services.kernel.errors import AppError
    from services.provenance import service as provenance
    from services.traceability import resolver, trace

    try:
        key = resolver.parse_key("pallet", sscc.strip())
    except AppError as exc:
        raise TraceBundleError(exc.detail, 2) from exc
    with unit_of_work(sessions) as session:
        found = trace.Trace(session, key)
        try:
            found.build()
        except trace.NotTraced as exc:
            raise TraceBundleError(f"no trace of {key.path}: no event names this pallet") from exc
        rows = found.subjects()
        session.expunge_all()
    answer = provenance.build_public_bundles(prov, sorted(rows))
    if answer["pending"]:
        raise TraceBundleError(
            f"{len(answer['pending'])} of {len(rows)} events are not yet in a signed checkpoint; retry in a few seconds"
        )
    by_subject = {b["subject"]: b for b in answer["bundles"]}
    ordered = sorted(rows.items(), key=lambda item: (item[1].event_time, item[1].id))
    events = [(row.body, row.event_hash, by_subject[subject]) for subject, row in ordered]
    return ledger_bundle.build_trace_bundle(key.uri, events, prov.signer)


@app.command("bundle")
def bundle_cmd(
    sscc: Annotated[str, typer.Argument(help="the pallet's SSCC (18 digits)")],
    out: Annotated[Path | None, typer.Option("--out", help="write the bundle here (default: standard output)")] = None,
) -> None:
    """Write the pallet's trace (every event, its inclusion proof and the signed checkpoint) as one file that
    `smartgate ledger verify-bundle FILE` checks offline. Exit 2 on a bad SSCC, 1 when there is nothing to bundle."""
    from pydantic import ValidationError
    from sqlalchemy.exc import SQLAlchemyError

    from ledger import bundle as ledger_bundle
    from services.kernel.database import make_engine, make_sessionmaker
    from services.provenance.service import Provenance
    from services.provenance.settings import ProvenanceSettings

    def fail(message: str, code: int) -> None:
        typer.echo(f"smartgate: error: {message}", err=True)
        raise typer.Exit(code)

    try:
        settings = ProvenanceSettings()
    except ValidationError as exc:
        fail(f"invalid settings: {exc.errors()[0]['msg']}", 2)
        return
    engine = make_engine(settings.resolved_database_url)
    try:
        sessions = make_sessionmaker(engine)
        prov = Provenance(settings, engine=engine, sessions=sessions)
        document = build_trace_bundle(sessions, prov, sscc)
    except TraceBundleError as exc:
        fail(str(exc), exc.code)
        return
    except (SQLAlchemyError, ValueError) as exc:
        fail(f"cannot read the database: {str(exc).splitlines()[0][:200]}", 1)
        return
    finally:
        engine.dispose()
    data = ledger_bundle.dumps(document)
    if out is None:
        typer.echo(data.decode(), nl=False)
        return
    try:
        out.write_bytes(data)
    except OSError as exc:
        fail(f"cannot write {out}: {exc.strerror}", 1)
    typer.echo(f"wrote the trace of {document['key']} ({len(document['events'])} events) to {out}", err=True)


def register_event_hashers() -> None:
    """Let `smartgate ledger verify-bundle` recompute CBV 2.0 event hashes (the library does not carry them)."""
    from ledger import cli as ledger_cli
    from services.traceability import hashing

    ledger_cli.EVENT_HASHERS.setdefault("CBV2.0", lambda event: hashing.event_hash(event))
