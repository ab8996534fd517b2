"""Provenance bundles: a subject's entries, proofs, signed checkpoint and anchors in one file, verified offline."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import rfc8785
from sqlalchemy import Engine

from ledger import reader, storage
from ledger.anchor import AnchorReceipt, verify_anchor
from ledger.checkpoint import Signer, Verifier, checkpoint_hash, log_signed_note, open_checkpoint
from ledger.keyring import KeyHistory, LogKey, log_key_lines
from ledger.leaf import Leaf
from ledger.merkle import leaf_hash
from ledger.verify import (
    AnchorError,
    AnchorMissing,
    BundleError,
    ChainBroken,
    CheckpointError,
    PayloadHashMismatch,
    VerificationError,
    verify_inclusion,
)
from ledger.witness import (
    Cosignature,
    CosignatureVerifier,
    add_cosignatures,
    cosignatures,
    require_quorum,
    split_note,
)

if TYPE_CHECKING:
    from web3 import Web3

FORMAT = "smartgate-ledger-bundle/v1"
# Domain separation: what the log key signs for a bundle can never parse as a checkpoint (which is 3 lines).
SIGNATURE_CONTEXT = b"smartgate ledger bundle signature v1\n"
_TOP_FIELDS = {"format", "subject", "origin", "public_key", "checkpoint", "anchors", "entries", "signature"}
_ENTRY_FIELDS = {"index", "leaf", "payload", "inclusion_proof"}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(value: Any, what: str, index: int | None = None) -> bytes:
    if not isinstance(value, str):
        raise BundleError(f"{what} must be a base64 string", index=index, found=type(value).__name__)
    try:
        raw = base64.b64decode(value, validate=True)
    except binascii.Error as exc:
        raise BundleError(f"{what} is not base64", index=index, found=value) from exc
    if _b64(raw) != value:
        raise BundleError(f"{what} is not canonical base64", index=index, found=value)
    return raw


def _signed_message(bundle: dict[str, Any]) -> bytes:
    unsigned = {k: v for k, v in bundle.items() if k != "signature"}
    return SIGNATURE_CONTEXT + rfc8785.dumps(unsigned)


def build_bundle(
    engine: Engine,
    subject: str,
    signer: Signer,
    *,
    size: int | None = None,
    include_payloads: bool = True,
    show_payload: Callable[[bytes], bool] | None = None,
    cosignature_lines: Sequence[str] = (),
) -> dict[str, Any]:
    """Build a bundle for `subject` against the checkpoint at `size` (default: latest anchored, else latest).
    Payloads are left out (null; the bundle still verifies) when `include_payloads` is false, or for the entries
    whose payload `show_payload` refuses. `cosignature_lines` (C2SP cosignatures by witnesses) are appended to the
    checkpoint note, where `verify-bundle --witness` finds them."""
    with engine.connect() as conn:
        if size is None:
            # Latest anchored, else latest: the choice for entries from index 0 on, by index lookups.
            pick = storage.bundle_checkpoint(conn, first=-1, last=-1)
            size = pick[0] if pick is not None else None
        chosen = storage.get_checkpoint(conn, size) if size is not None else None
        if chosen is None:
            raise LookupError("no checkpoint to build a bundle against")
        cp_size, note = chosen
        rows = storage.subject_entries(conn, subject, below=cp_size)
        if not rows:
            raise LookupError(f"subject {subject!r} has no entry in the checkpoint of size {cp_size}")
        origin = note.split(b"\n", 1)[0].decode()
        proofs = reader.inclusion_proofs(conn, [row.index for row in rows], cp_size)
        entries = [
            {
                "index": row.index,
                "leaf": _b64(row.leaf),
                "payload": _b64(row.payload)
                if include_payloads and (show_payload is None or show_payload(bytes(row.payload)))
                else None,
                "inclusion_proof": [_b64(h) for h in proof],
            }
            for row, proof in zip(rows, proofs, strict=True)
        ]
        receipts = [reader.receipt_from_row(r).to_json() for r in storage.anchors_for(conn, cp_size)]
    bundle: dict[str, Any] = {
        "format": FORMAT,
        "subject": subject,
        "origin": origin,
        "public_key": signer.verifier.vkey,
        "checkpoint": add_cosignatures(note, cosignature_lines).decode(),
        "anchors": receipts,
        "entries": entries,
    }
    sig = signer.sign(_signed_message(bundle))
    bundle["signature"] = _b64(signer.verifier.key_id + sig)
    return bundle


def build_bundles(
    engine: Engine, subjects: Sequence[str], signer: Signer, *, size: int, cosignature_lines: Sequence[str] = ()
) -> tuple[list[dict[str, Any]], list[str]]:
    """Bundles of several subjects against the checkpoint at `size`, payloads included, from four queries in all
    (checkpoint, entries, proofs, anchors) rather than four per subject; and the subjects with no entry in it."""
    with engine.connect() as conn:
        chosen = storage.get_checkpoint(conn, size)
        if chosen is None:
            raise LookupError(f"no checkpoint of size {size}")
        cp_size, note = chosen
        wanted = list(dict.fromkeys(subjects))
        rows = storage.subjects_entries(conn, wanted, below=cp_size)
        indices = [row.index for subject in wanted for row in rows.get(subject, [])]
        proofs = dict(zip(indices, reader.inclusion_proofs(conn, indices, cp_size), strict=True))
        receipts = [reader.receipt_from_row(r).to_json() for r in storage.anchors_for(conn, cp_size)]
    origin = note.split(b"\n", 1)[0].decode()
    checkpoint = add_cosignatures(note, cosignature_lines).decode()
    bundles, missing = [], []
    for subject in wanted:
        if subject not in rows:
            missing.append(subject)
            continue
        bundle: dict[str, Any] = {
            "format": FORMAT,
            "subject": subject,
            "origin": origin,
            "public_key": signer.verifier.vkey,
            "checkpoint": checkpoint,
            "anchors": receipts,
            "entries": [
                {
                    "index": row.index,
                    "leaf": _b64(row.leaf),
                    "payload": _b64(row.payload),
                    "inclusion_proof": [_b64(h) for h in proofs[row.index]],
                }
                for row in rows[subject]
            ],
        }
        bundle["signature"] = _b64(signer.verifier.key_id + signer.sign(_signed_message(bundle)))
        bundles.append(bundle)
    return bundles, missing


def dumps(bundle: dict[str, Any]) -> bytes:
    """Serialise a bundle for a file (pretty JSON; verification does not depend on the layout)."""
    return json.dumps(bundle, indent=2, ensure_ascii=False).encode() + b"\n"


@dataclass(frozen=True, slots=True)
class AnchorCheck:
    """What the chain said about one anchor of a bundle."""

    receipt: AnchorReceipt
    status: str  # "verified", "missing" (no contract or transaction there), "invalid", "other-chain", "unchecked"
    detail: str = ""


@dataclass
class BundleReport:
    """What a verified bundle proves."""

    subject: str
    origin: str
    tree_size: int
    root_hash: bytes
    entries: list[int]
    key: str
    key_pinned: bool
    anchors: list[AnchorReceipt] = field(default_factory=list)
    anchors_checked_on_chain: int = 0  # anchors that verified on chain
    anchor_checks: list[AnchorCheck] = field(default_factory=list)
    # Valid cosignatures by the witnesses the verifier named (others' lines are ignored), and the quorum required.
    cosignatures: list[Cosignature] = field(default_factory=list)
    quorum: int = 0
    # Signature lines on the checkpoint beyond the log's own (cosignatures by witnesses not named, say).
    other_signatures: int = 0
    # The log key that signed the checkpoint (the bundle's key unless the checkpoint predates a rotation), and the
    # sizes it signs when a key history was given.
    checkpoint_key: str = ""
    checkpoint_key_span: str | None = None


def verify_bundle(  # noqa: C901 - the verification steps read best in order, as the spec lists them
    data: bytes | dict[str, Any],
    *,
    trusted_key: Verifier | None = None,
    keys: KeyHistory | None = None,
    w3: Web3 | None = None,
    witnesses: Sequence[CosignatureVerifier] = (),
    quorum: int = 0,
) -> BundleReport:
    """Verify a bundle offline (and its anchors on chain when `w3` is given); raise a VerificationError if not.

    `keys` pins the log's keys: a key history (the checkpoint must be signed by the key valid at its size, the
    bundle by one of the log's keys), or several keys without validity (`KeyHistory.any_of`); `trusted_key` pins
    one key. Unpinned, the bundle's own key must sign both. With `quorum` > 0 the checkpoint must carry valid C2SP
    cosignatures from at least `quorum` of `witnesses`."""
    if trusted_key is not None:
        keys = KeyHistory.any_of([trusted_key]) if keys is None else keys.pinned([trusted_key])
    if isinstance(data, bytes | bytearray):
        try:
            bundle = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            # RecursionError: nested deeper than the interpreter allows (a hostile bundle, not a crash)
            raise BundleError(f"bundle is not JSON: {exc}") from exc
    else:
        bundle = data
    if not isinstance(bundle, dict) or set(bundle) != _TOP_FIELDS:
        found = sorted(bundle) if isinstance(bundle, dict) else type(bundle).__name__
        raise BundleError("bundle has the wrong fields", expected=sorted(_TOP_FIELDS), found=found)
    if bundle["format"] != FORMAT:
        raise BundleError("unknown bundle format", expected=FORMAT, found=bundle["format"])
    for name in ("subject", "origin", "public_key", "checkpoint"):
        if not isinstance(bundle[name], str):
            raise BundleError(f"bundle {name} must be a string", found=type(bundle[name]).__name__)

    key = Verifier.from_vkey(bundle["public_key"])
    if keys is not None and (keys.find(key) is None or (keys.trusted is not None and key.vkey not in keys.trusted)):
        pinned = sorted(keys.trusted) if keys.trusted is not None else [k.vkey for k in keys.keys]
        raise BundleError(
            "bundle is signed by another key", expected=pinned[0] if len(pinned) == 1 else pinned, found=key.vkey
        )
    sig = _unb64(bundle["signature"], "signature")
    if sig[:4] != key.key_id or not key.verify(_signed_message(bundle), sig[4:]):
        raise BundleError("bundle signature is invalid: the bundle was edited or signed by another key")

    note = bundle["checkpoint"].encode()
    if keys is not None:
        cp, checkpoint_key = keys.open(note, origin=bundle["origin"])
    else:
        try:
            cp = open_checkpoint(note, key, origin=bundle["origin"])
        except CheckpointError as exc:
            if "not signed by the expected key" not in exc.message:
                raise
            raise CheckpointError(
                "checkpoint is not signed by the bundle's key (signed before a key rotation?): give the log's key "
                "history with --keys FILE",
                index=exc.index,
                expected=exc.expected,
                found=exc.found,
            ) from exc
        checkpoint_key = LogKey(key)
    # Before the entries: a checkpoint the witnesses did not see is not worth checking proofs against.
    cosigned = require_quorum(note, witnesses, quorum) if quorum > 0 else cosignatures(note, witnesses)
    log_keys = keys.keys if keys is not None else [checkpoint_key]
    other_signatures = note.count("\n\u2014 ".encode()) - log_key_lines(note, log_keys)
    entries = bundle["entries"]
    if not isinstance(entries, list) or not entries:
        raise BundleError("bundle has no entries")
    prev: bytes | None = None
    last_index = -1
    indices = []
    for position, item in enumerate(entries):
        if not isinstance(item, dict) or set(item) != _ENTRY_FIELDS:
            raise BundleError("bundle entry has the wrong fields", index=position, expected=sorted(_ENTRY_FIELDS))
        index = item["index"]
        if not isinstance(index, int) or isinstance(index, bool) or not last_index < index < cp.size:
            raise BundleError(
                "entry indices must increase and lie inside the checkpoint",
                index=position,
                expected=f"{last_index} < index < {cp.size}",
                found=index,
            )
        leaf_bytes = _unb64(item["leaf"], "leaf", index)
        leaf = Leaf.from_bytes(leaf_bytes, index=index)
        if leaf.subject != bundle["subject"]:
            raise BundleError(
                "entry is about another subject", index=index, expected=bundle["subject"], found=leaf.subject
            )
        if item["payload"] is not None:
            digest = hashlib.sha256(_unb64(item["payload"], "payload", index)).hexdigest()
            if digest != leaf.payload_sha256:
                raise PayloadHashMismatch(
                    "payload differs from its leaf", index=index, expected=leaf.payload_sha256, found=digest
                )
        # The first entry must open the subject's chain; each next one must name its predecessor.
        if leaf.prev_hash_bytes != prev:
            raise ChainBroken(
                "subject chain broken inside the bundle", index=index, expected=prev, found=leaf.prev_hash_bytes
            )
        proof = item["inclusion_proof"]
        if not isinstance(proof, list):
            raise BundleError("inclusion_proof must be a list", index=index)
        h = leaf_hash(leaf_bytes)
        verify_inclusion(h, index, cp.size, [_unb64(p, "proof hash", index) for p in proof], cp.root_hash)
        prev, last_index = h, index
        indices.append(index)

    anchors = bundle["anchors"]
    if not isinstance(anchors, list):
        raise BundleError("anchors must be a list")
    # Anchors hash the note as the log signed it (one signature line, or two on a key rotation's first checkpoint);
    # cosignature lines are appended after that: the anchored note is the body and the first lines of this one.
    expected_hash = checkpoint_hash(log_signed_note(note, checkpoint_key.verifier))
    anchored_forms = signed_prefix_hashes(note)
    receipts = []
    for receipt_json in anchors:
        receipt = AnchorReceipt.from_json(receipt_json)
        if receipt.checkpoint_sha256 not in anchored_forms:
            raise BundleError(
                "anchor names another checkpoint",
                index=cp.size,
                expected=expected_hash,
                found=receipt.checkpoint_sha256,
            )
        receipts.append(receipt)
    checks = [AnchorCheck(r, "unchecked") for r in receipts] if w3 is None else check_anchors(w3, receipts, cp.size)
    checked = sum(c.status == "verified" for c in checks)
    return BundleReport(
        subject=bundle["subject"],
        origin=cp.origin,
        tree_size=cp.size,
        root_hash=cp.root_hash,
        entries=indices,
        key=key.vkey,
        key_pinned=keys is not None,
        checkpoint_key=checkpoint_key.vkey,
        checkpoint_key_span=checkpoint_key.span if keys is not None and keys.validity else None,
        anchors=receipts,
        anchors_checked_on_chain=checked,
        anchor_checks=checks,
        cosignatures=cosigned,
        quorum=quorum,
        other_signatures=other_signatures - len(cosigned),
    )


def signed_prefix_hashes(note: bytes) -> set[bytes]:
    """The SHA-256 of every form the note could have been anchored in: its body with its first k signature lines,
    for each k >= 1 (witnesses' cosignature lines are only ever appended)."""
    body, lines = split_note(note)
    hashes = set()
    text = body + b"\n"
    for line in lines:
        text += line.encode() + b"\n"
        hashes.add(checkpoint_hash(text))
    return hashes


def check_anchors(w3: Web3, receipts: list[AnchorReceipt], size: int) -> list[AnchorCheck]:
    """Check each anchor on the connected chain: the bundle is anchored when any of them verifies.

    Anchors on other chains are not checked; one that is not there at all (a reset chain, or never real) is
    named missing. If anchors of this chain were checked and none verified, raise the first one's error.
    """
    chain_id = int(w3.eth.chain_id)
    checks: list[AnchorCheck] = []
    failures: list[VerificationError] = []
    for receipt in receipts:
        if receipt.chain_id != chain_id:
            checks.append(AnchorCheck(receipt, "other-chain", f"on chain {receipt.chain_id}, connected to {chain_id}"))
            continue
        try:
            verify_anchor(w3, receipt, receipt.checkpoint_sha256, index=size)
        except AnchorMissing as exc:
            checks.append(AnchorCheck(receipt, "missing", str(exc)))
            failures.append(exc)
        except AnchorError as exc:
            checks.append(AnchorCheck(receipt, "invalid", str(exc)))
            failures.append(exc)
        else:
            checks.append(AnchorCheck(receipt, "verified"))
    if failures and not any(c.status == "verified" for c in checks):
        first = failures[0]
        others = f" (and {len(failures) - 1} more anchor(s) of this chain fail)" if len(failures) > 1 else ""
        raise type(first)(
            f"no anchor of the bundle verifies on chain {chain_id}: {first.message}{others}",
            index=first.index,
            expected=first.expected,
            found=first.found,
        )
    return checks


# --- Trace bundles: the events of one pallet's (or lot's) trace, each with its subject bundle, one checkpoint -----

TRACE_FORMAT = "smartgate-trace-bundle/v1"
TRACE_SIGNATURE_CONTEXT = b"smartgate trace bundle signature v1\n"
_TRACE_FIELDS = {"format", "key", "public_key", "events", "signature"}
_TRACE_EVENT_FIELDS = {"event", "event_hash", "bundle"}


def _trace_message(trace: dict[str, Any]) -> bytes:
    unsigned = {k: v for k, v in trace.items() if k != "signature"}
    return TRACE_SIGNATURE_CONTEXT + rfc8785.dumps(unsigned)


def build_trace_bundle(
    key: str, events: Sequence[tuple[dict[str, Any], str, dict[str, Any]]], signer: Signer
) -> dict[str, Any]:
    """A trace bundle: for each (EPCIS event, its CBV 2.0 event hash, its subject bundle), all subject bundles
    against one checkpoint; signed by the log key over the whole (so no event can be dropped or added unnoticed)."""
    trace: dict[str, Any] = {
        "format": TRACE_FORMAT,
        "key": key,
        "public_key": signer.verifier.vkey,
        "events": [{"event": event, "event_hash": digest, "bundle": bundle} for event, digest, bundle in events],
    }
    trace["signature"] = _b64(signer.verifier.key_id + signer.sign(_trace_message(trace)))
    return trace


@dataclass
class TraceReport:
    """What a verified trace bundle proves: each event's hash is in the log at `tree_size` (entry index each)."""

    key: str
    events: list[tuple[str, int]]  # (event hash, ledger index)
    hashes_recomputed: bool  # each event hash was recomputed from the event itself
    checkpoint: BundleReport  # the report of the first event's bundle: checkpoint, key, witnesses, anchors

    @property
    def tree_size(self) -> int:
        return self.checkpoint.tree_size


def verify_trace_bundle(  # noqa: C901 - the checks read best in order
    data: bytes | dict[str, Any],
    *,
    trusted_key: Verifier | None = None,
    keys: KeyHistory | None = None,
    w3: Web3 | None = None,
    witnesses: Sequence[CosignatureVerifier] = (),
    quorum: int = 0,
    event_hash: Callable[[dict[str, Any]], str] | None = None,
) -> TraceReport:
    """Verify a trace bundle offline: its signature by the log key, every subject bundle (as `verify_bundle`, with
    the same pins, witnesses and chain) against one and the same checkpoint, each logged payload naming the event's
    hash and eventID, and, with `event_hash` (the CBV 2.0 algorithm, which this library does not carry), each hash
    recomputed from the event. Raise a VerificationError if anything fails."""
    if isinstance(data, bytes | bytearray):
        try:
            trace = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise BundleError(f"trace bundle is not JSON: {exc}") from exc
    else:
        trace = data
    if not isinstance(trace, dict) or set(trace) != _TRACE_FIELDS:
        found = sorted(trace) if isinstance(trace, dict) else type(trace).__name__
        raise BundleError("trace bundle has the wrong fields", expected=sorted(_TRACE_FIELDS), found=found)
    if trace["format"] != TRACE_FORMAT:
        raise BundleError("unknown trace bundle format", expected=TRACE_FORMAT, found=trace["format"])
    if not isinstance(trace["key"], str) or not isinstance(trace["public_key"], str):
        raise BundleError("trace bundle key and public_key must be strings")
    key = Verifier.from_vkey(trace["public_key"])
    sig = _unb64(trace["signature"], "signature")
    if sig[:4] != key.key_id or not key.verify(_trace_message(trace), sig[4:]):
        raise BundleError("trace bundle signature is invalid: the bundle was edited or signed by another key")
    items = trace["events"]
    if not isinstance(items, list) or not items:
        raise BundleError("trace bundle has no events")
    first: BundleReport | None = None
    proven: list[tuple[str, int]] = []
    for position, item in enumerate(items):
        if not isinstance(item, dict) or set(item) != _TRACE_EVENT_FIELDS or not isinstance(item["event"], dict):
            raise BundleError("trace event has the wrong fields", index=position, expected=sorted(_TRACE_EVENT_FIELDS))
        inner = item["bundle"]
        if not isinstance(inner, dict) or inner.get("public_key") != trace["public_key"]:
            raise BundleError("trace event's bundle is signed by another key", index=position)
        report = verify_bundle(inner, trusted_key=trusted_key, keys=keys, w3=w3, witnesses=witnesses, quorum=quorum)
        if first is None:
            first = report
        elif (report.tree_size, report.root_hash) != (first.tree_size, first.root_hash):
            raise BundleError(
                "trace events are proven against different checkpoints",
                index=position,
                expected=first.tree_size,
                found=report.tree_size,
            )
        payload = inner["entries"][-1]["payload"]
        if payload is None:
            raise BundleError("trace event's ledger payload is missing", index=position)
        try:
            logged = json.loads(_unb64(payload, "payload", position))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BundleError("trace event's ledger payload is not JSON", index=position) from exc
        if not isinstance(logged, dict) or logged.get("event_hash") != item["event_hash"]:
            raise BundleError(
                "the log names another event hash",
                index=position,
                expected=item["event_hash"],
                found=logged.get("event_hash") if isinstance(logged, dict) else None,
            )
        if item["event"].get("eventID") is not None and logged.get("event_id") != item["event"]["eventID"]:
            raise BundleError(
                "the log names another eventID",
                index=position,
                expected=item["event"]["eventID"],
                found=logged.get("event_id"),
            )
        if event_hash is not None:
            try:
                recomputed = event_hash(item["event"])
            except (KeyError, TypeError, ValueError) as exc:
                raise BundleError(f"the event cannot be hashed: {exc}", index=position) from exc
            if recomputed != item["event_hash"]:
                raise PayloadHashMismatch(
                    "the event does not hash to its logged hash",
                    index=position,
                    expected=item["event_hash"],
                    found=recomputed,
                )
        proven.append((item["event_hash"], report.entries[-1]))
    assert first is not None
    return TraceReport(key=trace["key"], events=proven, hashes_recomputed=event_hash is not None, checkpoint=first)
