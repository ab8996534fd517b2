"""Checkpoints in the C2SP tlog-checkpoint format, signed as C2SP signed notes with Ed25519."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from ledger.merkle import HASH_SIZE
from ledger.verify import CheckpointError

ED25519_ALG = b"\x01"
SIGNATURE_PREFIX = "\u2014 "  # em dash and a space start every signature line
_KEY_NAME = re.compile(r"[^\s+]+")
_DECIMAL = re.compile(r"0|[1-9][0-9]*")


def key_id(name: str, public_key: bytes) -> bytes:
    """Return the signed-note key id: the first 4 bytes of SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)."""
    return hashlib.sha256(name.encode() + b"\n" + ED25519_ALG + public_key).digest()[:4]


def _check_name(name: str) -> None:
    if not _KEY_NAME.fullmatch(name):
        raise ValueError(f"key name {name!r} must be non-empty without spaces or '+'")


@dataclass(frozen=True, slots=True)
class Verifier:
    """An Ed25519 signed-note verifier key."""

    name: str
    public_key: bytes

    @property
    def key_id(self) -> bytes:
        """Return the 4-byte key id."""
        return key_id(self.name, self.public_key)

    @property
    def vkey(self) -> str:
        """Return the verifier key string `name+hex(keyid)+base64(0x01 ‖ pubkey)`."""
        encoded = base64.b64encode(ED25519_ALG + self.public_key).decode()
        return f"{self.name}+{self.key_id.hex()}+{encoded}"

    @classmethod
    def from_vkey(cls, vkey: str) -> Verifier:
        """Parse a verifier key string, checking that its key id matches."""
        try:
            name, hex_id, encoded = vkey.strip().split("+", 2)
            raw = base64.b64decode(encoded, validate=True)
            kid = bytes.fromhex(hex_id)
        except (ValueError, binascii.Error) as exc:
            raise CheckpointError(f"malformed verifier key: {exc}") from exc
        if len(raw) != 33 or raw[:1] != ED25519_ALG:
            raise CheckpointError("verifier key is not an Ed25519 key", expected=33, found=len(raw))
        verifier = cls(name, raw[1:])
        _check_name(name)
        if verifier.key_id != kid:
            raise CheckpointError("verifier key id does not match its key", expected=verifier.key_id, found=kid)
        return verifier

    def verify(self, message: bytes, signature: bytes) -> bool:
        """Return whether `signature` is this key's Ed25519 signature of `message`."""
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except InvalidSignature:
            return False
        return True


class Signer:
    """An Ed25519 signed-note signer; the private key never leaves this object."""

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        """Wrap a named Ed25519 private key."""
        _check_name(name)
        self.name = name
        self._key = private_key
        public = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.verifier = Verifier(name, public)

    @classmethod
    def generate(cls, name: str) -> Signer:
        """Create a signer with a fresh random key."""
        return cls(name, Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, name: str, seed: bytes) -> Signer:
        """Create a signer from a 32-byte Ed25519 seed."""
        return cls(name, Ed25519PrivateKey.from_private_bytes(seed))

    @classmethod
    def from_skey(cls, skey: str) -> Signer:
        """Parse a signed-note private key string `PRIVATE+KEY+name+hex(keyid)+base64(0x01 ‖ seed)`."""
        prefix = "PRIVATE+KEY+"
        # maxsplit: the base64 key material may itself contain '+'.
        parts = skey.strip().removeprefix(prefix).split("+", 2)
        if not skey.strip().startswith(prefix) or len(parts) != 3:
            raise ValueError("a signing key looks like PRIVATE+KEY+<name>+<keyid>+<base64>")
        name, hex_id, encoded = parts
        try:
            raw = base64.b64decode(encoded, validate=True)
        except binascii.Error as exc:
            raise ValueError(f"signing key is not base64: {exc}") from exc
        if len(raw) != 33 or raw[:1] != ED25519_ALG:
            raise ValueError("signing key is not an Ed25519 key")
        signer = cls.from_seed(name, raw[1:])
        if signer.verifier.key_id.hex() != hex_id:
            raise ValueError("signing key id does not match its key")
        return signer

    def skey(self) -> str:
        """Return the private key string (for settings or the development key file)."""
        seed = self._key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        encoded = base64.b64encode(ED25519_ALG + seed).decode()
        return f"PRIVATE+KEY+{self.name}+{self.verifier.key_id.hex()}+{encoded}"

    def sign(self, message: bytes) -> bytes:
        """Return the Ed25519 signature of `message` (deterministic)."""
        return self._key.sign(message)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A log checkpoint: origin, tree size and root hash."""

    origin: str
    size: int
    root_hash: bytes

    def body(self) -> bytes:
        """Return the checkpoint text that gets signed (three lines, each ending in a newline)."""
        if not self.origin or "\n" in self.origin:
            raise ValueError("origin must be one non-empty line")
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root_hash).decode()}\n".encode()

    def sign(self, signer: Signer, *cosigners: Signer) -> bytes:
        """Return the signed note: body, blank line, one signature line per signer (the log's key first; a key
        rotation's first checkpoint is cosigned by the retiring key too)."""
        body = self.body()
        lines = []
        for key in (signer, *cosigners):
            sig = base64.b64encode(key.verifier.key_id + key.sign(body)).decode()
            lines.append(f"{SIGNATURE_PREFIX}{key.name} {sig}\n")
        return body + b"\n" + "".join(lines).encode()


def checkpoint_hash(note: bytes) -> bytes:
    """Return the SHA-256 of the signed note bytes: the value anchored on chain."""
    return hashlib.sha256(note).digest()


def log_signed_note(note: bytes, verifier: Verifier) -> bytes:
    """Return the note with only `verifier`'s signature lines: the note as the log signed (and anchored) it, before
    witnesses appended their cosignatures."""
    split = note.rfind(b"\n\n")
    if split < 0 or not note.endswith(b"\n"):
        return note
    prefix = f"{SIGNATURE_PREFIX}{verifier.name} ".encode()
    kept = []
    for line in note[split + 2 :].split(b"\n")[:-1]:
        if not line.startswith(prefix):
            continue
        try:
            raw = base64.b64decode(line[len(prefix) :], validate=True)
        except binascii.Error:
            continue
        if raw[:4] == verifier.key_id:
            kept.append(line + b"\n")
    return note[: split + 2] + b"".join(kept)


def parse_body(body: bytes, *, index: int | None = None) -> Checkpoint:
    """Parse checkpoint text (origin, size, base64 root; extension lines are refused: we never write any)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CheckpointError("checkpoint is not UTF-8", index=index) from exc
    lines = text.split("\n")
    if len(lines) != 4 or lines[3] != "":
        raise CheckpointError("checkpoint must be exactly three lines", index=index, found=len(lines) - 1)
    origin, size_text, root_text = lines[:3]
    if not origin:
        raise CheckpointError("checkpoint origin is empty", index=index)
    if not _DECIMAL.fullmatch(size_text):
        raise CheckpointError("checkpoint size is not a decimal number", index=index, found=size_text)
    try:
        root_hash = base64.b64decode(root_text, validate=True)
    except binascii.Error as exc:
        raise CheckpointError("checkpoint root is not base64", index=index, found=root_text) from exc
    if len(root_hash) != HASH_SIZE or base64.b64encode(root_hash).decode() != root_text:
        raise CheckpointError("checkpoint root is not a canonical 32-byte hash", index=index, found=root_text)
    return Checkpoint(origin, int(size_text), root_hash)


def open_checkpoint(
    note: bytes, verifier: Verifier, *, origin: str | None = None, index: int | None = None
) -> Checkpoint:
    """Verify a signed checkpoint note with `verifier` and return the checkpoint it carries."""
    split = note.rfind(b"\n\n")
    if split < 0 or not note.endswith(b"\n"):
        raise CheckpointError("not a signed note: no blank line before the signatures", index=index)
    body, sig_block = note[: split + 1], note[split + 2 :]
    checkpoint = parse_body(body, index=index)
    if origin is not None and checkpoint.origin != origin:
        raise CheckpointError("checkpoint origin differs", index=index, expected=origin, found=checkpoint.origin)
    try:
        sig_lines = sig_block.decode("utf-8").split("\n")[:-1]
    except UnicodeDecodeError as exc:
        raise CheckpointError("signature lines are not UTF-8", index=index) from exc
    if not sig_lines:
        raise CheckpointError("signed note has no signature", index=index)
    verified = False
    for line in sig_lines:
        if not line.startswith(SIGNATURE_PREFIX):
            raise CheckpointError("malformed signature line", index=index, found=line)
        try:
            name, encoded = line[len(SIGNATURE_PREFIX) :].split(" ")
            raw = base64.b64decode(encoded, validate=True)
        except (ValueError, binascii.Error) as exc:
            raise CheckpointError("malformed signature line", index=index, found=line) from exc
        if len(raw) < 5:
            raise CheckpointError("signature too short", index=index, found=len(raw))
        # Signatures by other keys (witnesses, say) are allowed and ignored, as the signed-note spec says.
        if name != verifier.name or raw[:4] != verifier.key_id:
            continue
        if not verifier.verify(body, raw[4:]):
            raise CheckpointError("checkpoint signature is invalid", index=checkpoint.size if index is None else index)
        verified = True
    if not verified:
        raise CheckpointError(
            "checkpoint is not signed by the expected key",
            index=checkpoint.size if index is None else index,
            expected=verifier.vkey,
            found=[line.split(" ")[1] if " " in line else line for line in sig_lines],
        )
    return checkpoint
