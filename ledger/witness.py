"""Witness cosignatures (C2SP tlog-cosignature v1, Ed25519) and the witness itself (C2SP tlog-witness).

A cosignature is a signed-note signature line whose key id uses the algorithm byte 0x04 and whose signature is a
`timestamped_signature`: an 8-byte big-endian POSIX time followed by the 64-byte Ed25519 signature of

    "cosignature/v1\\n" "time <decimal seconds>\\n" <the checkpoint note body, with its final newline>

The witness keeps, per log origin, the latest checkpoint it cosigned and cosigns a new one only when the log's
signature verifies and a consistency proof from that checkpoint holds (`Witness.add_checkpoint`): it never signs two
views of one log that contradict each other, and never a smaller tree after a larger one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import sqlite3
import struct
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from ledger.checkpoint import SIGNATURE_PREFIX, Checkpoint, Verifier, open_checkpoint, parse_body
from ledger.merkle import HASH_SIZE
from ledger.verify import CheckpointError, VerificationError, verify_consistency

COSIGNATURE_ALG = b"\x04"
COSIGNATURE_HEADER = b"cosignature/v1\n"
MAX_TIMESTAMP = 2**63 - 1
MAX_PROOF_LINES = 63
SIZE_CONTENT_TYPE = "text/x.tlog.size"
_KEY_NAME = re.compile(r"[^\s+]+")
_DECIMAL = re.compile(r"0|[1-9][0-9]*")


def cosigner_key_id(name: str, public_key: bytes) -> bytes:
    """Return the cosignature key id: SHA-256(name ‖ 0x0A ‖ 0x04 ‖ 32-byte Ed25519 public key)[:4]."""
    return hashlib.sha256(name.encode() + b"\n" + COSIGNATURE_ALG + public_key).digest()[:4]


def cosigned_message(body: bytes, timestamp: int) -> bytes:
    """Return the bytes a cosignature/v1 signs for a checkpoint note body at `timestamp`."""
    if not 0 <= timestamp <= MAX_TIMESTAMP:
        raise ValueError(f"cosignature timestamp {timestamp} out of range")
    return COSIGNATURE_HEADER + f"time {timestamp}\n".encode() + body


def _check_name(name: str) -> None:
    if not _KEY_NAME.fullmatch(name):
        raise ValueError(f"key name {name!r} must be non-empty without spaces or '+'")


def split_note(note: bytes) -> tuple[bytes, list[str]]:
    """Split a signed note into its body (ending in a newline) and its signature lines (without newlines)."""
    split = note.rfind(b"\n\n")
    if split < 0 or not note.endswith(b"\n"):
        raise CheckpointError("not a signed note: no blank line before the signatures")
    try:
        lines = note[split + 2 :].decode("utf-8").split("\n")[:-1]
    except UnicodeDecodeError as exc:
        raise CheckpointError("signature lines are not UTF-8") from exc
    return note[: split + 1], lines


def _parse_line(line: str) -> tuple[str, bytes] | None:
    """Return (name, decoded signature) of a signature line, or None when it is malformed."""
    if not line.startswith(SIGNATURE_PREFIX):
        return None
    parts = line[len(SIGNATURE_PREFIX) :].split(" ")
    if len(parts) != 2:
        return None
    try:
        return parts[0], base64.b64decode(parts[1], validate=True)
    except binascii.Error:
        return None


@dataclass(frozen=True, slots=True)
class Cosignature:
    """One verified cosignature: who and when."""

    witness: CosignatureVerifier
    timestamp: int
    line: str


@dataclass(frozen=True, slots=True)
class CosignatureVerifier:
    """A witness's Ed25519 cosignature/v1 public key."""

    name: str
    public_key: bytes

    @property
    def key_id(self) -> bytes:
        """Return the 4-byte key id (algorithm byte 0x04)."""
        return cosigner_key_id(self.name, self.public_key)

    @property
    def vkey(self) -> str:
        """Return the C2SP vkey `name+hex(keyid)+base64(0x04 ‖ pubkey)`."""
        return f"{self.name}+{self.key_id.hex()}+{base64.b64encode(COSIGNATURE_ALG + self.public_key).decode()}"

    @classmethod
    def from_vkey(cls, vkey: str) -> CosignatureVerifier:
        """Parse a witness vkey (signature type 0x04), checking its key id."""
        try:
            name, hex_id, encoded = vkey.strip().split("+", 2)
            raw = base64.b64decode(encoded, validate=True)
            kid = bytes.fromhex(hex_id)
        except (ValueError, binascii.Error) as exc:
            raise CheckpointError(f"malformed witness key: {exc}") from exc
        if len(raw) != 33 or raw[:1] != COSIGNATURE_ALG:
            raise CheckpointError("witness key is not an Ed25519 cosignature/v1 key (type 0x04)", found=raw[:1].hex())
        try:
            _check_name(name)
        except ValueError as exc:
            raise CheckpointError(str(exc)) from exc
        verifier = cls(name, raw[1:])
        if verifier.key_id != kid:
            raise CheckpointError("witness key id does not match its key", expected=verifier.key_id, found=kid)
        return verifier

    def verify_line(self, body: bytes, line: str) -> int | None:
        """Return the timestamp of `line` when it is this witness's valid cosignature of `body`, else None."""
        parsed = _parse_line(line)
        if parsed is None:
            return None
        name, raw = parsed
        if name != self.name or len(raw) != 4 + 8 + 64 or raw[:4] != self.key_id:
            return None
        (timestamp,) = struct.unpack(">Q", raw[4:12])
        if timestamp > MAX_TIMESTAMP:
            return None
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(raw[12:], cosigned_message(body, timestamp))
        except InvalidSignature:
            return None
        return int(timestamp)


class Cosigner:
    """A witness's Ed25519 cosigning key; the private key never leaves this object."""

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        """Wrap a named Ed25519 private key."""
        _check_name(name)
        self.name = name
        self._key = private_key
        public = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.verifier = CosignatureVerifier(name, public)

    @classmethod
    def generate(cls, name: str) -> Cosigner:
        """Create a cosigner with a fresh random key."""
        return cls(name, Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, name: str, seed: bytes) -> Cosigner:
        """Create a cosigner from a 32-byte Ed25519 seed."""
        return cls(name, Ed25519PrivateKey.from_private_bytes(seed))

    @classmethod
    def from_skey(cls, skey: str) -> Cosigner:
        """Parse `PRIVATE+KEY+name+hex(keyid)+base64(0x04 ‖ seed)` (the signed-note private key form, type 0x04)."""
        prefix = "PRIVATE+KEY+"
        text = skey.strip()
        parts = text.removeprefix(prefix).split("+", 2)
        if not text.startswith(prefix) or len(parts) != 3:
            raise ValueError("a witness key looks like PRIVATE+KEY+<name>+<keyid>+<base64>")
        name, hex_id, encoded = parts
        try:
            raw = base64.b64decode(encoded, validate=True)
        except binascii.Error as exc:
            raise ValueError(f"witness key is not base64: {exc}") from exc
        if len(raw) != 33 or raw[:1] != COSIGNATURE_ALG:
            raise ValueError("witness key is not an Ed25519 cosignature/v1 key (type 0x04)")
        cosigner = cls.from_seed(name, raw[1:])
        if cosigner.verifier.key_id.hex() != hex_id:
            raise ValueError("witness key id does not match its key")
        return cosigner

    def skey(self) -> str:
        """Return the private key string."""
        seed = self._key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        encoded = base64.b64encode(COSIGNATURE_ALG + seed).decode()
        return f"PRIVATE+KEY+{self.name}+{self.verifier.key_id.hex()}+{encoded}"

    def cosign(self, body: bytes, timestamp: int) -> str:
        """Return the cosignature line (with its newline) for a checkpoint note body."""
        sig = self._key.sign(cosigned_message(body, timestamp))
        raw = self.verifier.key_id + struct.pack(">Q", timestamp) + sig
        return f"{SIGNATURE_PREFIX}{self.name} {base64.b64encode(raw).decode()}\n"


def cosignatures(note: bytes, witnesses: Iterable[CosignatureVerifier]) -> list[Cosignature]:
    """Return the valid cosignatures on `note` by `witnesses` (one per witness; unknown lines are ignored)."""
    body, lines = split_note(note)
    found: list[Cosignature] = []
    for witness in witnesses:
        for line in lines:
            ts = witness.verify_line(body, line)
            if ts is not None:
                found.append(Cosignature(witness, ts, line))
                break
    return found


def require_quorum(note: bytes, witnesses: Sequence[CosignatureVerifier], quorum: int) -> list[Cosignature]:
    """Return the valid cosignatures, raising CheckpointError when fewer than `quorum` distinct witnesses signed."""
    distinct = list({w.vkey: w for w in witnesses}.values())
    if quorum > len(distinct):
        raise CheckpointError(
            "quorum is larger than the number of witnesses given", expected=len(distinct), found=quorum
        )
    valid = cosignatures(note, distinct)
    if len(valid) < quorum:
        raise CheckpointError(
            "checkpoint is not witnessed: too few valid cosignatures",
            expected=quorum,
            found=[c.witness.name for c in valid],
        )
    return valid


def add_cosignatures(note: bytes, lines: Iterable[str]) -> bytes:
    """Append signature lines to a note, skipping lines it already carries."""
    _, existing = split_note(note)
    out = note
    for line in lines:
        line = line.rstrip("\n")
        if line and line not in existing:
            out += (line + "\n").encode()
            existing.append(line)
    return out


# --- the add-checkpoint request (tlog-witness) ---


class WitnessRequestError(Exception):
    """An add-checkpoint request the witness refuses; `status` is the HTTP status the spec prescribes."""

    def __init__(self, status: int, message: str, *, size: int | None = None) -> None:
        """Record the status, a message, and (only for a 409 on an old-size mismatch) the witness's latest size."""
        super().__init__(message)
        self.status = status
        self.size = size


def encode_add_checkpoint(old_size: int, proof: Sequence[bytes], note: bytes) -> bytes:
    """Return an add-checkpoint request body."""
    lines = [f"old {old_size}\n".encode(), *(base64.b64encode(h) + b"\n" for h in proof), b"\n"]
    return b"".join(lines) + note


def decode_add_checkpoint(body: bytes) -> tuple[int, list[bytes], bytes]:
    """Parse an add-checkpoint request body into (old size, proof hashes, checkpoint note); 400 when malformed."""
    head, sep, note = body.partition(b"\n\n")
    if not sep:
        raise WitnessRequestError(400, "request has no empty line before the checkpoint")
    try:
        lines = head.decode("ascii").split("\n")
    except UnicodeDecodeError as exc:
        raise WitnessRequestError(400, "request header is not ASCII") from exc
    old = lines[0].removeprefix("old ")
    if not lines[0].startswith("old ") or not _DECIMAL.fullmatch(old):
        raise WitnessRequestError(400, "first line must be 'old <size>'")
    if len(lines) - 1 > MAX_PROOF_LINES:
        raise WitnessRequestError(400, f"more than {MAX_PROOF_LINES} consistency proof lines")
    proof: list[bytes] = []
    for line in lines[1:]:
        try:
            h = base64.b64decode(line, validate=True)
        except binascii.Error as exc:
            raise WitnessRequestError(400, "consistency proof line is not base64") from exc
        if len(h) != HASH_SIZE:
            raise WitnessRequestError(400, "consistency proof line is not a 32-byte hash")
        proof.append(h)
    return int(old), proof, note


# --- the witness ---


@dataclass(frozen=True, slots=True)
class WitnessedState:
    """The latest checkpoint a witness cosigned for one origin."""

    origin: str
    size: int
    root_hash: bytes
    note: bytes


class WitnessState:
    """Per-origin state in a small SQLite file; check-and-update runs in one IMMEDIATE transaction."""

    def __init__(self, path: Path | str) -> None:
        """Open (creating) the state file."""
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS witnessed (origin TEXT PRIMARY KEY, size INTEGER NOT NULL,"
            " root_hash BLOB NOT NULL, note BLOB NOT NULL, updated_at INTEGER NOT NULL)"
        )
        self._lock = threading.Lock()

    def get(self, origin: str) -> WitnessedState | None:
        """Return the latest cosigned checkpoint for `origin`, if any."""
        row = self._db.execute("SELECT size, root_hash, note FROM witnessed WHERE origin = ?", (origin,)).fetchone()
        return None if row is None else WitnessedState(origin, int(row[0]), bytes(row[1]), bytes(row[2]))

    def close(self) -> None:
        """Close the state file."""
        self._db.close()


class Witness:
    """A C2SP tlog-witness: cosigns a log's checkpoint only when it extends the last one it cosigned."""

    def __init__(
        self,
        cosigner: Cosigner,
        logs: Mapping[str, Sequence[Verifier]],
        state: WitnessState,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`logs` maps each known origin to the log keys trusted for it."""
        self.cosigner = cosigner
        self.logs = {origin: list(keys) for origin, keys in logs.items()}
        self.state = state
        self._clock = clock

    def _open(self, note: bytes) -> Checkpoint:
        """Verify the log's signature per the spec: 404 for an unknown origin, 403 when no trusted key signed."""
        try:
            body, _ = split_note(note)
            checkpoint = parse_body(body)
        except CheckpointError as exc:
            raise WitnessRequestError(400, f"malformed checkpoint: {exc}") from exc
        keys = self.logs.get(checkpoint.origin)
        if keys is None:
            raise WitnessRequestError(404, f"unknown log origin {checkpoint.origin!r}")
        for key in keys:
            try:
                return open_checkpoint(note, key, origin=checkpoint.origin)
            except CheckpointError:
                continue
        raise WitnessRequestError(403, "no signature on the checkpoint verifies with a trusted log key")

    def add_checkpoint(self, request: bytes) -> str:
        """Handle an add-checkpoint request body; return the cosignature line(s) or raise WitnessRequestError."""
        old_size, proof, note = decode_add_checkpoint(request)
        checkpoint = self._open(note)
        if old_size > checkpoint.size:
            raise WitnessRequestError(400, "old size is larger than the checkpoint size")
        if old_size == 0 and proof:
            raise WitnessRequestError(400, "the consistency proof must be empty when the old size is 0")
        db = self.state._db
        now = int(self._clock())
        with self.state._lock:
            db.execute("BEGIN IMMEDIATE")
            try:
                current = self.state.get(checkpoint.origin)
                have = 0 if current is None else current.size
                if old_size != have:
                    raise WitnessRequestError(409, "old size does not match the witness's latest size", size=have)
                if current is not None and old_size == checkpoint.size:
                    if current.root_hash != checkpoint.root_hash:
                        raise WitnessRequestError(409, "same size, different root hash: the log forked")
                    if proof:
                        raise WitnessRequestError(422, "equal sizes need an empty consistency proof")
                elif current is not None:
                    try:
                        verify_consistency(old_size, checkpoint.size, proof, current.root_hash, checkpoint.root_hash)
                    except VerificationError as exc:
                        raise WitnessRequestError(422, f"consistency proof does not verify: {exc}") from exc
                db.execute(
                    "INSERT INTO witnessed (origin, size, root_hash, note, updated_at) VALUES (?, ?, ?, ?, ?)"
                    " ON CONFLICT (origin) DO UPDATE SET size = excluded.size, root_hash = excluded.root_hash,"
                    " note = excluded.note, updated_at = excluded.updated_at",
                    (checkpoint.origin, checkpoint.size, checkpoint.root_hash, note, now),
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        body, _ = split_note(note)
        return self.cosigner.cosign(body, now)
