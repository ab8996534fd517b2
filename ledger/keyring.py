"""The log's signing keys over time: which key signs the checkpoints of which sizes (key rotation).

Each key of the history signs the checkpoints of size >= its `valid_from_size` and below the next key's. The log
records a new key when it starts signing with it (`record_signing_key`); verifiers check each checkpoint under the
key valid at its size (`KeyHistory.open`), so a checkpoint signed by a retired key, or by a key before its time,
fails with the key's validity in the message. The origin line never changes: it names the log, not the key.

A history comes from the log's `ledger_keys` table (`from_rows`), from the public-keys endpoint's JSON document or a
text file of `VKEY VALID_FROM_SIZE` lines (`parse_key_list`), or is a set of pinned keys without validity
(`KeyHistory.any_of`, what several `--key` options give).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from ledger import storage
from ledger.checkpoint import Checkpoint, Verifier, open_checkpoint, parse_body
from ledger.verify import CheckpointError, KeyValidityError
from ledger.witness import split_note

FORMAT = "smartgate-ledger-keys/v1"


class KeyRotationError(Exception):
    """The configured signing key may not sign: it was retired by a later key (a retired key never signs again)."""


@dataclass(frozen=True, slots=True)
class LogKey:
    """One key of the log and the checkpoint sizes it signs: [valid_from_size, valid_until_size)."""

    verifier: Verifier
    valid_from_size: int = 0
    valid_until_size: int | None = None  # exclusive; None: still the current key
    recorded_at: dt.datetime | None = None

    @property
    def vkey(self) -> str:
        """The C2SP verifier key."""
        return self.verifier.vkey

    def covers(self, size: int) -> bool:
        """Whether this key is the one that signs a checkpoint of `size`."""
        return self.valid_from_size <= size and (self.valid_until_size is None or size < self.valid_until_size)

    @property
    def span(self) -> str:
        """The sizes this key signs, for messages: `0..41` or `42..` (inclusive)."""
        end = "" if self.valid_until_size is None else str(self.valid_until_size - 1)
        return f"{self.valid_from_size}..{end}"

    def to_json(self) -> dict[str, Any]:
        """The JSON form of the public-keys endpoint."""
        return {
            "vkey": self.vkey,
            "name": self.verifier.name,
            "key_id": self.verifier.key_id.hex(),
            "valid_from_size": self.valid_from_size,
            "valid_until_size": self.valid_until_size,
            "recorded_at": self.recorded_at.isoformat() if self.recorded_at is not None else None,
            "current": self.valid_until_size is None,
        }


@dataclass
class KeyHistory:
    """The keys of one log with their validity (or, from `any_of`, pinned keys valid at every size)."""

    keys: list[LogKey] = field(default_factory=list)
    validity: bool = True  # False: every key may sign every size (keys pinned without a history)
    trusted: frozenset[str] | None = None  # when set, only these vkeys count as the log's (pinned with --key)

    @classmethod
    def from_keys(cls, keys: Iterable[tuple[int, Verifier, dt.datetime | None]]) -> KeyHistory:
        """Build a history from (valid_from_size, verifier, recorded_at); sizes and keys must be distinct."""
        items = sorted(keys, key=lambda k: k[0])
        sizes = [k[0] for k in items]
        vkeys = [k[1].vkey for k in items]
        if len(set(sizes)) != len(sizes) or any(s < 0 for s in sizes):
            raise CheckpointError("key history: valid_from_size values must be distinct and not negative", found=sizes)
        if len(set(vkeys)) != len(vkeys):
            raise CheckpointError("key history: a key appears twice (a key signs one range of sizes)")
        out = []
        for i, (start, verifier, at) in enumerate(items):
            until = items[i + 1][0] if i + 1 < len(items) else None
            out.append(LogKey(verifier, start, until, at))
        return cls(out)

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[int, str, Any]]) -> KeyHistory:
        """Build the history from `storage.key_rows`."""
        return cls.from_keys((int(start), Verifier.from_vkey(vkey), at) for start, vkey, at in rows)

    @classmethod
    def single(cls, verifier: Verifier) -> KeyHistory:
        """A log that always had one key."""
        return cls([LogKey(verifier)])

    @classmethod
    def any_of(cls, verifiers: Iterable[Verifier]) -> KeyHistory:
        """Pinned keys without validity: a checkpoint of any size may be signed by any of them."""
        unique = list({v.vkey: v for v in verifiers}.values())
        return cls([LogKey(v) for v in unique], validity=False)

    def pinned(self, verifiers: Iterable[Verifier]) -> KeyHistory:
        """This history, with only `verifiers` trusted: a checkpoint whose key is not among them fails."""
        return KeyHistory(self.keys, self.validity, frozenset(v.vkey for v in verifiers))

    def __len__(self) -> int:
        """The number of keys."""
        return len(self.keys)

    @property
    def current(self) -> LogKey | None:
        """The key that signs from now on (the one with the largest valid_from_size)."""
        return self.keys[-1] if self.keys else None

    def find(self, verifier: Verifier) -> LogKey | None:
        """The history's entry of `verifier`, if it is one of the log's keys."""
        return next((k for k in self.keys if k.verifier == verifier), None)

    def candidates(self, size: int) -> list[LogKey]:
        """The keys that may sign a checkpoint of `size` (one with a history; every pinned key without one)."""
        return [k for k in self.keys if not self.validity or k.covers(size)]

    def describe(self) -> str:
        """One line naming each key and its sizes."""
        if not self.validity:
            return ", ".join(k.vkey for k in self.keys)
        return ", ".join(f"{k.vkey} (sizes {k.span})" for k in self.keys)

    def open(self, note: bytes, *, origin: str | None = None, index: int | None = None) -> tuple[Checkpoint, LogKey]:
        """Verify a checkpoint note under the key valid at its size; return the checkpoint and that key.

        A note signed by another key of the history (outside its validity) raises KeyValidityError, naming both."""
        body, _ = split_note(note)
        size = parse_body(body, index=index).size
        where = size if index is None else index
        candidates = self.candidates(size)
        first_error: CheckpointError | None = None
        for key in candidates:
            try:
                checkpoint = open_checkpoint(note, key.verifier, origin=origin, index=index)
            except CheckpointError as exc:
                first_error = first_error or exc
                continue
            if self.trusted is not None and key.vkey not in self.trusted:
                raise CheckpointError(
                    f"checkpoint is not signed by the expected key: the key valid at size {size} is not pinned",
                    index=where,
                    expected=sorted(self.trusted),
                    found=key.vkey,
                )
            return checkpoint, key
        for key in self.keys:
            if key in candidates:
                continue
            try:
                open_checkpoint(note, key.verifier, origin=origin, index=index)
            except CheckpointError:
                continue
            valid = candidates[0].vkey if candidates else "none"
            raise KeyValidityError(
                f"checkpoint {size} is signed by key {key.verifier.name} valid only for sizes {key.span}, "
                f"not by the key valid at size {size}",
                index=where,
                expected=valid,
                found=key.vkey,
            )
        if not candidates:
            raise KeyValidityError(
                f"no key of the log's history is valid at size {size}",
                index=where,
                expected=self.describe(),
                found=None,
            )
        assert first_error is not None
        raise first_error

    def to_json(self, origin: str) -> dict[str, Any]:
        """The public-keys document: the log's origin and every key with its validity."""
        return {"format": FORMAT, "origin": origin, "keys": [k.to_json() for k in self.keys]}


def parse_key_list(text: str) -> KeyHistory:
    """Parse a key history: the public-keys endpoint's JSON document, or text lines `VKEY VALID_FROM_SIZE` (blank
    lines and `#` comments ignored; a single line may omit the size, meaning 0)."""
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            doc = json.loads(stripped)
            items = [(int(k["valid_from_size"]), Verifier.from_vkey(str(k["vkey"])), None) for k in doc["keys"]]
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"key history is not a public-keys document: {exc}") from exc
        if not items:
            raise CheckpointError("key history has no key")
        return KeyHistory.from_keys(items)
    lines = [ln.split("#", 1)[0].strip() for ln in stripped.splitlines()]
    lines = [ln for ln in lines if ln]
    if not lines:
        raise CheckpointError("key history has no key")
    parsed: list[tuple[int, Verifier, dt.datetime | None]] = []
    for number, line in enumerate(lines, 1):
        parts = line.split()
        if len(parts) == 1 and len(lines) == 1:
            parts.append("0")
        if len(parts) != 2 or not parts[1].isdigit():
            raise CheckpointError(f"key history line {number}: expected 'VKEY VALID_FROM_SIZE'", found=line)
        parsed.append((int(parts[1]), Verifier.from_vkey(parts[0]), None))
    return KeyHistory.from_keys(parsed)


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """What `record_signing_key` found or did."""

    history: KeyHistory
    recorded: tuple[LogKey, ...] = ()  # keys recorded by this call
    unrecorded_below: int | None = None  # checkpoints below this size are signed by a key nobody recorded


def _signs(verifier: Verifier, note: bytes, origin: str) -> bool:
    try:
        open_checkpoint(note, verifier, origin=origin)
    except CheckpointError:
        return False
    return True


def _checkpoint_below(conn: Connection, size: int) -> tuple[int, bytes] | None:
    cps = storage.checkpoints
    row = conn.execute(
        select(cps.c.size, cps.c.note).where(cps.c.size < size).order_by(cps.c.size.desc()).limit(1)
    ).first()
    return (int(row.size), bytes(row.note)) if row is not None else None


def record_signing_key(
    conn: Connection,
    current: Verifier,
    *,
    origin: str,
    now: dt.datetime,
    previous: Verifier | None = None,
) -> KeyRecord:
    """Make `current` the log's signing key, recording it (a rotation) if it is not yet; call it inside the
    transaction that signs, after `storage.lock_for_append`.

    A new key signs from the checkpoint after the latest one. On a log that recorded no key yet, the key that signed
    the latest checkpoint (`current`, else `previous`) is recorded from size 0. `previous` (the key being retired,
    when the operator still has it) also fills in a history whose first key does not start at 0. A key that a later
    key replaced raises KeyRotationError: it never signs again."""
    history = KeyHistory.from_rows(storage.key_rows(conn))
    latest = storage.get_checkpoint(conn)
    recorded: list[tuple[int, Verifier]] = []
    found = history.find(current)
    if found is not None and found is not history.current:
        assert history.current is not None
        raise KeyRotationError(
            f"signing key {current.vkey} was retired at checkpoint size {found.valid_until_size} by "
            f"{history.current.vkey}: a retired key never signs again (configure the current key or a new one)"
        )
    if found is None:
        if not history.keys:
            if latest is None or _signs(current, latest[1], origin):
                recorded.append((0, current))
            elif previous is not None and _signs(previous, latest[1], origin):
                recorded += [(0, previous), (latest[0] + 1, current)]
            else:
                recorded.append((latest[0] + 1, current))
        else:
            assert history.current is not None
            start = max(history.current.valid_from_size + 1, latest[0] + 1 if latest is not None else 0)
            recorded.append((start, current))
    elif previous is not None and history.find(previous) is None and history.keys[0].valid_from_size > 0:
        below = _checkpoint_below(conn, history.keys[0].valid_from_size)
        if below is not None and _signs(previous, below[1], origin):
            recorded.append((0, previous))
    for start, verifier in recorded:
        storage.insert_key(conn, start, verifier.vkey, now)
    if recorded:
        history = KeyHistory.from_rows(storage.key_rows(conn))
    new = tuple(k for k in history.keys if any(k.verifier == v for _, v in recorded))
    first = history.keys[0].valid_from_size
    unrecorded_below = first if first > 0 and _checkpoint_below(conn, first) is not None else None
    return KeyRecord(history, new, unrecorded_below)


def predecessor(history: KeyHistory, key: LogKey) -> LogKey | None:
    """The key that signed just before `key`."""
    index = history.keys.index(key)
    return history.keys[index - 1] if index > 0 else None


def log_key_lines(note: bytes, keys: Sequence[LogKey]) -> int:
    """How many signature lines of `note` are by the given log keys (by name and key id)."""
    _, lines = split_note(note)
    prefixes = {(k.verifier.name, k.verifier.key_id) for k in keys}
    count = 0
    for line in lines:
        parts = line.removeprefix("\u2014 ").split(" ")
        if len(parts) != 2:
            continue
        try:
            raw = base64.b64decode(parts[1], validate=True)
        except binascii.Error:
            continue
        if (parts[0], raw[:4]) in prefixes:
            count += 1
    return count
