"""`smartgate ledger …`: the ledger library's offline commands plus `verify`, which checks the platform's database."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from ledger import cli as ledger_cli

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from ledger.checkpoint import Verifier
    from ledger.fsck import FsckReport
    from ledger.keyring import KeyHistory
    from services.provenance.settings import ProvenanceSettings

app = typer.Typer(
    help="Verifiable ledger: check the platform's log, verify provenance bundles offline, key tools.",
    no_args_is_help=True,
)
# The library's database-free commands, registered on this app (the library's own Typer app stays untouched).
app.command("verify-bundle")(ledger_cli.verify_bundle_cmd)
app.command("keygen")(ledger_cli.keygen_cmd)
app.command("build-contract")(ledger_cli.build_contract_cmd)

# Problems listed after the summary line; the full list can be long after a bad tampering.
SHOWN_PROBLEMS = 20


def _fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _history_to_verify(
    engine: Engine, settings: ProvenanceSettings, given: KeyHistory | None, pinned: list[Verifier]
) -> KeyHistory:
    """The keys `verify` checks checkpoints under: `--keys`, else the log's recorded history, else the configured
    key; with `--key`, only the pinned keys count."""
    from ledger.keyring import KeyHistory
    from ledger.keys import KeyConfigError, resolve_signer

    history = given if given is not None else _recorded_history(engine)
    if history is None and not pinned:
        try:
            configured = resolve_signer(
                settings.ledger_signing_key.get_secret_value(),
                environment=settings.key_environment,
                dev_key_dir=settings.var_dir,
            ).verifier
        except KeyConfigError as exc:
            _fail(f"no key to verify with: {exc}", 2)
        history = KeyHistory.single(configured)
    if pinned:
        history = KeyHistory.any_of(pinned) if history is None else history.pinned(pinned)
    assert history is not None
    return history


def _recorded_history(engine: Engine) -> KeyHistory | None:
    """The key history the log recorded (None when it recorded none, or the table predates key rotation)."""
    from sqlalchemy import inspect

    from ledger import storage
    from ledger.keyring import KeyHistory

    with engine.connect() as conn:
        if not inspect(conn).has_table(storage.keys.name):
            return None
        rows = storage.key_rows(conn)
    return KeyHistory.from_rows(rows) if rows else None


def _cosignature_lines(engine: Engine) -> dict[int, list[str]]:
    """The witnesses' stored cosignature lines per checkpoint size (none if the table is not there)."""
    from sqlalchemy import inspect, select

    from services.kernel.database import table_of
    from services.provenance.models import WitnessCosignature

    table = table_of(WitnessCosignature)
    lines: dict[int, list[str]] = {}
    with engine.connect() as conn:
        if not inspect(conn).has_table(table.name):
            return lines
        for size, line in conn.execute(select(table.c.checkpoint_size, table.c.line).order_by(table.c.witness)):
            lines.setdefault(int(size), []).append(str(line))
    return lines


def _print_ok_notes(report: FsckReport, *, rpc: str | None, quorum: int) -> None:
    """What a clean `verify` adds below its summary: witnesses, and what the chain says (or could not)."""
    if report.witnessed_by:
        typer.echo(
            f"  witnessed: the latest checkpoint carries {len(report.witnessed_by)} valid cosignature(s) "
            f"(quorum {quorum}): {', '.join(report.witnessed_by)}"
        )
    if rpc is None and not report.witnessed_by:
        typer.echo(
            "  note: without --rpc (or witnesses) a suffix deleted with its checkpoints and anchors cannot be "
            "detected; give --rpc URL to hold the log to the chain"
        )
    elif rpc is None:
        return
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
        list[str] | None,
        typer.Option(
            "--key",
            help="pin the log's keys (name+keyid+base64; repeatable): every checkpoint's key must be one of them; "
            "default: the key history the log recorded (or the configured key on a log that recorded none)",
        ),
    ] = None,
    keys: Annotated[
        Path | None,
        typer.Option(
            "--keys",
            help="the log's key history from your own copy (the JSON of /api/v1/ledger/public-keys, or lines "
            "'VKEY VALID_FROM_SIZE') instead of the one the database recorded",
        ),
    ] = None,
    witness: Annotated[
        list[str] | None,
        typer.Option("--witness", help="trusted witness vkey (C2SP cosignature/v1); repeatable"),
    ] = None,
    quorum: Annotated[
        int | None,
        typer.Option(
            "--quorum",
            min=1,
            help="valid cosignatures the latest checkpoint needs from the --witness keys (default: all)",
        ),
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
    from ledger.verify import VerificationError
    from ledger.witness import CosignatureVerifier
    from services.kernel.database import make_engine
    from services.provenance.settings import ProvenanceSettings

    try:
        settings = ProvenanceSettings()
    except ValidationError as exc:
        _fail(f"invalid settings: {exc.errors()[0]['msg']}", 2)
    witnesses = witness or []
    if quorum is not None and not witnesses:
        _fail("--quorum needs at least one --witness key", 2)
    try:
        pinned = [Verifier.from_vkey(vkey) for vkey in key or []]
        history = ledger_cli.read_key_history(keys) if keys is not None else None
        cosigners = [CosignatureVerifier.from_vkey(vkey) for vkey in witnesses]
    except VerificationError as exc:
        _fail(f"no key to verify with: {exc}", 2)
    need = len({c.vkey for c in cosigners}) if quorum is None else quorum
    if need > len({c.vkey for c in cosigners}):
        _fail(f"--quorum {need} is more than the {len(cosigners)} --witness key(s) given", 2)
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
        history = _history_to_verify(engine, settings, history, pinned)
        contracts = list(contract or [])
        if w3 is not None:
            contracts += _deployed_contracts(engine, int(w3.eth.chain_id))
        report = fsck(
            engine,
            history,
            origin=settings.ledger_origin,
            w3=w3,
            contracts=contracts,
            cosignature_lines=_cosignature_lines(engine),
            witnesses=cosigners,
            quorum=need if cosigners else 0,
        )
    except SQLAlchemyError as exc:
        first_line = str(getattr(exc, "orig", exc) or exc).strip().splitlines()[0]
        _fail(f"cannot read the ledger (migrated? `smartgate migrate`): {first_line}", 3)
    except VerificationError as exc:
        _fail(f"the log's recorded key history is unreadable: {exc}", 3)
    finally:
        engine.dispose()
    signed = (
        f"signed by {history.keys[0].vkey}"
        if len(history) == 1
        else f"signed by {len(history)} keys: {history.describe()}"
    )

    on_chain = f", {report.anchors_checked_on_chain} checked on chain" if rpc else ""
    counts = f"{report.size} entries, {report.checkpoints} checkpoints, {report.anchors} anchors{on_chain}"
    if report.ok:
        typer.echo(f"OK: ledger {settings.ledger_origin}: {counts}; {signed}")
        _print_ok_notes(report, rpc=rpc, quorum=need)
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
