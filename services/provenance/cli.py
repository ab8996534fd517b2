"""`smartgate ledger …`: the ledger library's offline commands plus `verify`, which checks the platform's database."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from ledger import cli as ledger_cli

if TYPE_CHECKING:
    from sqlalchemy import Engine

app = typer.Typer(
    help="Verifiable ledger: check the platform's log, verify provenance bundles offline, key tools.",
    no_args_is_help=True,
)
# The library's database-free commands, registered on this app (the library's own Typer app stays untouched).
app.command("verify-bundle")(ledger_cli.verify_bundle_cmd)
app.command("keygen")(ledger_cli.keygen_cmd)
app.command("build-contract")(ledger_cli.build_contract_cmd)
app.command("monitor")(ledger_cli.monitor_cmd)

# Problems listed after the summary line; the full list can be long after a bad tampering.
SHOWN_PROBLEMS = 20


def _fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _is_address(value: str) -> bool:
    return len(value) == 42 and value[:2] in ("0x", "0X") and all(c in "0123456789abcdefABCDEF" for c in value[2:])


def _deployed_contracts(engine: Engine, chain_id: int) -> list[str]:
    """The Anchor contracts the provenance service recorded deploying on this chain (none if the table is gone)."""
    from sqlalchemy import select
    from sqlalchemy.exc import SQLAlchemyError

    from services.provenance.models import AnchorContract

    try:
        with engine.connect() as conn:
            query = select(AnchorContract.contract).where(AnchorContract.chain_id == chain_id)
            return [str(c) for c in conn.scalars(query)]
    except SQLAlchemyError:
        return []


@app.command("verify")
def verify_cmd(
    key: Annotated[
        str | None,
        typer.Option("--key", help="verifier key (name+keyid+base64) to check against; default: the configured key"),
    ] = None,
    rpc: Annotated[
        str | None,
        typer.Option(
            "--rpc",
            help="JSON-RPC URL: also check every anchor of that chain on chain, and the log against every "
            "checkpoint anchored there (a deleted suffix is a rollback)",
        ),
    ] = None,
    contract: Annotated[
        list[str] | None,
        typer.Option(
            "--contract",
            help="Anchor contract address of this log on the --rpc chain (repeatable); added to those the "
            "database names, so that a log stripped of its anchor rows is still held to the chain",
        ),
    ] = None,
) -> None:
    """Recompute the whole ledger from its entries: leaves, payloads, tree, subject chains, checkpoints, anchors.

    Prints one summary line; on a problem, names the first bad index with its evidence and exits 1. With --rpc,
    the log is also held to what its contracts anchored on chain: a rollback (a deleted or rewritten suffix) fails
    with a one-line `[rollback]` error. Without --rpc (or witnesses) a suffix deleted together with its checkpoints
    and anchors leaves a log consistent with itself, and cannot be detected.
    """
    from pydantic import ValidationError
    from sqlalchemy.exc import SQLAlchemyError

    from ledger.anchor import connect
    from ledger.checkpoint import Verifier
    from ledger.fsck import fsck
    from ledger.keys import KeyConfigError, resolve_signer
    from ledger.verify import VerificationError
    from services.kernel.database import make_engine
    from services.provenance.settings import ProvenanceSettings

    try:
        settings = ProvenanceSettings()
    except ValidationError as exc:
        _fail(f"invalid settings: {exc.errors()[0]['msg']}", 2)
    try:
        if key:
            verifier = Verifier.from_vkey(key)
        else:
            verifier = resolve_signer(
                settings.ledger_signing_key.get_secret_value(),
                environment=settings.key_environment,
                dev_key_dir=settings.var_dir,
            ).verifier
    except (KeyConfigError, VerificationError) as exc:
        _fail(f"no key to verify with: {exc}", 2)
    if contract and not rpc:
        _fail("--contract needs --rpc (the chain to read the contract's anchors from)", 2)
    bad = [c for c in contract or [] if not _is_address(c)]
    if bad:
        _fail(f"--contract {bad[0]!r} is not an address (0x and 40 hex digits)", 2)
    try:
        w3 = connect(rpc) if rpc else None
    except VerificationError as exc:
        _fail(str(exc), 3)
    engine = make_engine(settings.resolved_database_url)
    try:
        contracts = list(contract or [])
        if w3 is not None:
            contracts += _deployed_contracts(engine, int(w3.eth.chain_id))
        report = fsck(engine, verifier, origin=settings.ledger_origin, w3=w3, contracts=contracts)
    except SQLAlchemyError as exc:
        first_line = str(getattr(exc, "orig", exc) or exc).strip().splitlines()[0]
        _fail(f"cannot read the ledger (migrated? `smartgate migrate`): {first_line}", 3)
    finally:
        engine.dispose()

    on_chain = f", {report.anchors_checked_on_chain} checked on chain" if rpc else ""
    counts = f"{report.size} entries, {report.checkpoints} checkpoints, {report.anchors} anchors{on_chain}"
    if report.ok:
        typer.echo(f"OK: ledger {settings.ledger_origin}: {counts}; signed by {verifier.vkey}")
        if rpc is None:
            typer.echo(
                "  note: without --rpc (or witnesses) a suffix deleted with its checkpoints and anchors cannot be "
                "detected; give --rpc URL to hold the log to the chain"
            )
        elif report.chain_events:
            typer.echo(
                f"  chain: {report.chain_events} checkpoint(s) of this log anchored on that chain, "
                f"the latest of size {report.latest_chain_anchor}: no rollback"
            )
        elif report.chain_events is None:
            typer.echo(
                "  chain: no Anchor contract of this log is known on that chain (give --contract ADDRESS): "
                "a rollback cannot be checked"
            )
        else:
            typer.echo("  chain: no checkpoint of this log is anchored on that chain: a rollback cannot be checked")
        return
    rollback = report.rollback
    if rollback is not None:
        typer.echo(f"FAILED: ledger {settings.ledger_origin}: {counts}; {len(report.problems)} problem(s)")
        _fail(f"ledger does NOT verify: [rollback] {rollback}")
    indexed = [p for p in report.problems if p.index is not None]
    first = min(indexed, key=lambda p: p.index or 0) if indexed else report.problems[0]
    more = "+" if report.truncated else ""
    typer.echo(f"FAILED: ledger {settings.ledger_origin}: {counts}; {len(report.problems)}{more} problem(s)")
    for problem in report.problems[:SHOWN_PROBLEMS]:
        typer.echo(f"  [{problem.kind}] {problem}")
    where = f"first bad index {first.index}" if first.index is not None else "problem"
    _fail(f"ledger does NOT verify: {where}: [{first.kind}] {first}")
