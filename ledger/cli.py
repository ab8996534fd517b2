"""`smartgate ledger …` commands that need no database: verify a provenance bundle, create a signing key."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from ledger.keyring import KeyHistory

app = typer.Typer(help="Verifiable ledger: offline bundle verification and key tools.", no_args_is_help=True)


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
    """Verify a provenance bundle offline (no database); with --rpc, also check its anchors on chain."""
    from ledger.anchor import connect
    from ledger.bundle import verify_bundle
    from ledger.checkpoint import Verifier
    from ledger.keyring import KeyHistory
    from ledger.verify import VerificationError
    from ledger.witness import CosignatureVerifier

    witnesses = witness or []
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
        report = verify_bundle(data, keys=history, w3=w3, witnesses=cosigners, quorum=need)
    except VerificationError as exc:
        _fail(f"bundle does NOT verify: {exc}")
        return
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
