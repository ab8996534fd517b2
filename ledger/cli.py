"""`smartgate ledger …` commands that need no database: verify a provenance bundle, monitor a log through its
tiles, create a signing key."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

if TYPE_CHECKING:
    from ledger.bundle import BundleReport, TraceReport
    from ledger.keyring import KeyHistory

app = typer.Typer(help="Verifiable ledger: offline bundle verification and key tools.", no_args_is_help=True)

# How to recompute an event's hash from the event, by the `?ver=` of its hash (`ni:///sha-256;…?ver=CBV2.0`): the
# CBV 2.0 algorithm lives with the traceability service, which this library does not import; the `smartgate` CLI
# registers it, so `verify-bundle` on a trace bundle recomputes every event hash where it can.
EVENT_HASHERS: dict[str, Callable[[dict[str, Any]], str]] = {}


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


@app.command("verify-bundle")
def verify_bundle_cmd(
    file: Annotated[Path, typer.Argument(help="bundle JSON file", exists=False)],
    rpc: Annotated[str | None, typer.Option("--rpc", help="JSON-RPC URL: also check the anchors on chain")] = None,
    key: Annotated[
        list[str] | None,
        typer.Option(
            "--key",
            help="trusted verifier key (name+keyid+base64); pins the log's key; repeatable (any of them, at any size)",
        ),
    ] = None,
    keys: Annotated[
        Path | None,
        typer.Option(
            "--keys",
            help="the log's key history (the JSON of /api/v1/ledger/public-keys, or lines 'VKEY VALID_FROM_SIZE'): "
            "the checkpoint must be signed by the key valid at its size",
        ),
    ] = None,
    witness: Annotated[
        list[str] | None,
        typer.Option("--witness", help="trusted witness vkey (C2SP cosignature/v1, type 0x04); repeatable"),
    ] = None,
    quorum: Annotated[
        int | None,
        typer.Option("--quorum", min=1, help="valid cosignatures required from the --witness keys (default: all)"),
    ] = None,
) -> None:
    """Verify a provenance bundle, or a trace bundle (`smartgate trace bundle`), offline (no database); with --rpc,
    also check its anchors on chain."""
    from ledger.anchor import connect
    from ledger.checkpoint import Verifier
    from ledger.keyring import KeyHistory
    from ledger.verify import VerificationError
    from ledger.witness import CosignatureVerifier

    witnesses = witness or []
    trace = False
    if quorum is not None and not witnesses:
        _fail("--quorum needs at least one --witness key")
        return
    try:
        data = file.read_bytes()
    except OSError as exc:
        _fail(f"cannot read {file}: {exc.strerror}")
        return
    try:
        history = read_key_history(keys) if keys is not None else None
        pinned = [Verifier.from_vkey(vkey) for vkey in key or []]
        if pinned:
            history = KeyHistory.any_of(pinned) if history is None else history.pinned(pinned)
        cosigners = [CosignatureVerifier.from_vkey(vkey) for vkey in witnesses]
        need = len({c.vkey for c in cosigners}) if quorum is None else quorum
        w3 = connect(rpc) if rpc else None
        trace = _trace_format(data)
        report, traced = _verify(data, trace, keys=history, w3=w3, witnesses=cosigners, quorum=need)
    except VerificationError as exc:
        _fail(f"{'trace ' if trace else ''}bundle does NOT verify: {exc}")
        return
    if traced is not None:
        typer.echo(f"OK: trace of {traced.key}: {len(traced.events)} events, each in the log at the same checkpoint")
        for digest, index in traced.events:
            typer.echo(f"  event:      {digest} entry {index}")
        recomputed = "recomputed from each event (CBV 2.0)" if traced.hashes_recomputed else "NOT recomputed"
        typer.echo(f"  hashes:     {recomputed}")
    else:
        typer.echo(f"OK: subject {report.subject!r}: {len(report.entries)} entries {report.entries}")
    typer.echo(f"  checkpoint: {report.origin} size {report.tree_size} root {report.root_hash.hex()}")
    pin = (
        ("pinned with --keys" if keys is not None else "pinned with --key")
        if report.key_pinned
        else "NOT pinned: compare it with the operator's published key"
    )
    typer.echo(f"  signed by:  {report.key} ({pin})")
    if report.checkpoint_key != report.key or report.checkpoint_key_span is not None:
        span = f", valid for sizes {report.checkpoint_key_span}" if report.checkpoint_key_span is not None else ""
        typer.echo(f"  checkpoint: signed by {report.checkpoint_key}{span}")
    if report.quorum:
        typer.echo(f"  witnessed:  {len(report.cosignatures)} of {len(witnesses)} witnesses (quorum {report.quorum})")
    for cosig in report.cosignatures:
        when = datetime.fromtimestamp(cosig.timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        typer.echo(f"  cosigned:   {cosig.witness.vkey} at {when}")
    if report.other_signatures:
        typer.echo(
            f"  unchecked:  {report.other_signatures} other signature line(s), e.g. cosignatures by witnesses not "
            "given with --witness"
        )
    elif not report.quorum:
        typer.echo("  witnesses:  none checked (give --witness and --quorum to require a witnessed checkpoint)")
    if not report.anchors:
        typer.echo("  anchors:    none (the checkpoint is not anchored)")
    shown = {
        "verified": "verified on chain",
        "missing": "MISSING on chain",
        "invalid": "does NOT verify on chain",
        "other-chain": "not checked (another chain)",
        "unchecked": "not checked on chain (give --rpc)",
    }
    for check in report.anchor_checks:
        receipt = check.receipt
        detail = f": {check.detail}" if check.detail and check.status != "other-chain" else ""
        typer.echo(
            f"  anchor:     chain {receipt.chain_id} ({receipt.chain_label}) contract {receipt.contract} "
            f"tx {receipt.tx_hash} block {receipt.block_number}: {shown[check.status]}{detail}"
        )
    if rpc and report.anchors_checked_on_chain == 0:
        why = "the bundle has no anchor" if not report.anchors else "none of its anchors is on the --rpc chain"
        typer.echo(f"  WARNING:    no anchor was checked on chain ({why}): only the log's signature vouches for it")


def _verify(data: bytes, trace: bool, **pins: Any) -> tuple[BundleReport, TraceReport | None]:
    """Verify a subject bundle, or a trace bundle (then also report the trace)."""
    from ledger.bundle import verify_bundle, verify_trace_bundle

    if not trace:
        return verify_bundle(data, **pins), None
    traced = verify_trace_bundle(data, event_hash=EVENT_HASHERS.get("CBV2.0"), **pins)
    return traced.checkpoint, traced


def _trace_format(data: bytes) -> bool:
    """Whether the file is a trace bundle (any other content is verified, and reported, as a subject bundle)."""
    import json

    from ledger.bundle import TRACE_FORMAT

    try:
        parsed = json.loads(data)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return False
    return isinstance(parsed, dict) and parsed.get("format") == TRACE_FORMAT


def read_key_history(path: Path) -> KeyHistory:
    """Read a key history file (`--keys`); a file that cannot be read is a CheckpointError (one line)."""
    from ledger.keyring import parse_key_list
    from ledger.verify import CheckpointError

    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"cannot read the key history {path}: {getattr(exc, 'strerror', None) or exc}") from exc
    return parse_key_list(text)


@app.command("keygen")
def keygen_cmd(name: Annotated[str, typer.Argument(help="key name shown on every checkpoint signature")]) -> None:
    """Print a new Ed25519 checkpoint signing key for the settings (keep it secret); its public vkey goes to stderr
    (to give witnesses before a key rotation)."""
    from ledger.keys import DEV_KEY_SUFFIX, generate_key_string, load_signer

    if name.endswith(DEV_KEY_SUFFIX):
        _fail(f"names ending in {DEV_KEY_SUFFIX!r} are reserved for development keys")
    try:
        skey = generate_key_string(name)
    except ValueError as exc:
        _fail(str(exc))
        return
    typer.echo(skey)
    typer.echo(f"vkey: {load_signer(skey).verifier.vkey}", err=True)


@app.command("build-contract")
def build_contract_cmd() -> None:
    """Print the Anchor contract's init code (hex), as deployed by the ledger."""
    from ledger.anchor import INIT_CODE_HEX

    typer.echo(INIT_CODE_HEX)


@app.command("monitor")
def monitor_cmd(
    url: Annotated[str, typer.Argument(help="the log's tlog-tiles prefix, e.g. https://host/api/v1/ledger/log")],
    state: Annotated[
        Path | None, typer.Option("--state", help="JSON file keeping the last verified checkpoint (written atomically)")
    ] = None,
    key: Annotated[
        str | None, typer.Option("--key", help="the log's verifier key (needed until the state file pins it)")
    ] = None,
    witness: Annotated[
        list[str] | None,
        typer.Option("--witness", help="witness vkey (C2SP cosignature/v1, type 0x04) whose cosignature counts"),
    ] = None,
    quorum: Annotated[
        int | None, typer.Option("--quorum", min=1, help="cosignatures required from the --witness keys (default: all)")
    ] = None,
    once: Annotated[bool, typer.Option("--once", help="check once and exit (0 consistent, 1 inconsistent)")] = False,
    interval: Annotated[
        float, typer.Option("--interval", min=0.1, max=86400, help="seconds between checks when following")
    ] = 30.0,
) -> None:
    """Follow a log through its C2SP tiles: verify each checkpoint's signature (and witnesses), recompute the tree
    from the entries, and check it extends the checkpoint verified before. Exit 1 with one line on any
    inconsistency (rollback, fork, root mismatch, bad signature, a tile that lies), 2 when it cannot check."""
    import time

    from ledger.checkpoint import Verifier
    from ledger.monitor import FetchError, Inconsistency, Monitor, StateError, TileFetcher, load_state, save_state
    from ledger.verify import CheckpointError
    from ledger.witness import CosignatureVerifier

    witnesses = witness or []
    if quorum is not None and not witnesses:
        _fail_code("--quorum needs at least one --witness key", 2)
    try:
        trusted = Verifier.from_vkey(key) if key else None
        cosigners = [CosignatureVerifier.from_vkey(vkey) for vkey in witnesses]
        current = load_state(state) if state is not None else None
        if trusted is None and current is None:
            _fail_code("give --key (the log's verifier key) on the first run; the state file keeps it after", 2)
        distinct = len({c.vkey for c in cosigners})
        if quorum is not None and quorum > distinct:
            _fail_code(f"--quorum {quorum} is more than the {distinct} --witness keys given", 2)
        fetcher = TileFetcher(url)  # checks the URL before it opens anything
        monitor = Monitor(fetcher, key=trusted, witnesses=cosigners, quorum=quorum)
    except (CheckpointError, StateError, ValueError) as exc:
        _fail_code(str(exc), 2)
        return
    try:
        while True:
            try:
                current, report = monitor.check(current)
            except Inconsistency as exc:
                _fail_code(f"ALERT [{exc.kind}] {exc}", 1)
            except FetchError as exc:
                if once:
                    _fail_code(f"cannot check the log: {exc}", 2)
                typer.echo(f"warning: cannot check the log now: {exc}", err=True)
            else:
                if state is not None:
                    try:
                        save_state(state, current)
                    except OSError as exc:
                        _fail_code(f"cannot write the state file {state}: {exc.strerror}", 2)
                grown = report.size - report.previous_size
                witnessed = f", cosigned by {len(report.cosignatures)}" if report.cosignatures else ""
                typer.echo(
                    f"OK: {current.origin} size {report.size} (+{grown} entries verified, {report.requests} requests"
                    f"{witnessed}) root {report.root_hash.hex()}"
                )
            if once:
                return
            time.sleep(interval)
    except KeyboardInterrupt:
        return
    finally:
        fetcher.close()


def _fail_code(message: str, code: int) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)
