"""A monitor of a C2SP tlog-tiles log: follows its checkpoints, recomputes the tree from the entries, remembers.

Each `Monitor.check(state)`:

1. fetches `<prefix>/checkpoint` and verifies the log's signature (and, if given, a quorum of witness cosignatures);
2. refuses a checkpoint smaller than the one verified before (rollback), or of the same size with another root (fork);
3. fetches the entry bundles and level-0 tiles of the new entries, checks that every entry hashes to its tile hash,
   and extends the tree it verified before (kept as its right edge: at most 64 hashes) with their leaf hashes: the
   root must be the checkpoint's. This one fold proves both that the entries are the checkpoint's tree and that
   this tree extends the previous checkpoint's (a consistency check that trusts nothing the log computed);
4. checks the upper-level tile hashes the new entries completed against the recomputed nodes;
5. returns the new state (origin, size, root, right edge, the checkpoint note) for `save_state` to write atomically.

Any inconsistency raises `Inconsistency` (its `kind`: signature, witness, origin, rollback, fork, root, entry, tile,
format); a log that cannot be reached raises `FetchError`.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from ledger import tiles
from ledger.checkpoint import Checkpoint, Verifier, open_checkpoint
from ledger.merkle import CompactRange, NodeId, frontier, leaf_hashes
from ledger.verify import CheckpointError
from ledger.witness import Cosignature, CosignatureVerifier, require_quorum

STATE_FORMAT = "smartgate-ledger-monitor/v1"
# Tiles fetched per round trip batch, and in parallel: bounded memory (a batch of bundles is ~20 MB at most).
BATCH_TILES = 64
PARALLEL_FETCHES = 4
TIMEOUT_SECONDS = 30.0
MAX_CHECKPOINT_BYTES = 64 * 1024
MAX_TILE_BYTES = tiles.TILE_WIDTH * (2 + tiles.MAX_ENTRY_BYTES)


class Inconsistency(Exception):
    """The log contradicts itself or what the monitor verified before: somebody must look at it."""

    def __init__(self, kind: str, message: str) -> None:
        """`kind` names the check that failed; the message says what was seen, in one line."""
        super().__init__(message)
        self.kind = kind


class FetchError(Exception):
    """The log could not be read (network error, HTTP error status): nothing was concluded."""


class StateError(Exception):
    """The state file is unreadable or not a monitor state."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@dataclass(frozen=True, slots=True)
class MonitorState:
    """What the monitor verified last: a checkpoint and the right edge of its tree."""

    origin: str
    size: int
    root_hash: bytes
    edge: tuple[bytes, ...]  # hashes of merkle.frontier(size), largest subtree first
    note: str
    log_key: str

    def compact_range(self) -> CompactRange:
        """The verified tree's right edge, ready to extend."""
        ids = frontier(self.size)
        if len(ids) != len(self.edge):
            raise StateError(f"state holds {len(self.edge)} edge hashes, size {self.size} needs {len(ids)}")
        return CompactRange(self.size, {level: h for (level, _), h in zip(ids, self.edge, strict=True)})

    def to_json(self) -> dict[str, Any]:
        """The JSON form written to the state file."""
        return {
            "format": STATE_FORMAT,
            "origin": self.origin,
            "size": self.size,
            "root_hash": _b64(self.root_hash),
            "edge": [_b64(h) for h in self.edge],
            "checkpoint": self.note,
            "log_key": self.log_key,
        }

    @classmethod
    def from_json(cls, data: Any) -> MonitorState:
        """Parse and check a state document (StateError when it is not one)."""
        try:
            if data["format"] != STATE_FORMAT:
                raise StateError(f"state format {data['format']!r} is not {STATE_FORMAT}")
            state = cls(
                origin=str(data["origin"]),
                size=int(data["size"]),
                root_hash=base64.b64decode(data["root_hash"], validate=True),
                edge=tuple(base64.b64decode(h, validate=True) for h in data["edge"]),
                note=str(data["checkpoint"]),
                log_key=str(data["log_key"]),
            )
        except (KeyError, TypeError, ValueError, binascii.Error) as exc:
            raise StateError(f"not a monitor state: {exc}") from exc
        if state.size < 0 or len(state.root_hash) != 32 or any(len(h) != 32 for h in state.edge):
            raise StateError("monitor state holds a bad size or hash")
        if state.compact_range().root() != state.root_hash:
            raise StateError("monitor state's edge does not fold to its root: the file was edited")
        return state


def load_state(path: Path) -> MonitorState | None:
    """Read the state file (None when it does not exist yet)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StateError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        return MonitorState.from_json(json.loads(raw))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise StateError(f"{path} is not JSON: {exc}") from exc


def save_state(path: Path, state: MonitorState) -> None:
    """Write the state atomically: a synced temporary file in the same directory, renamed over the old one."""
    directory = path.resolve().parent
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(state.to_json(), fh, indent=1)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


@dataclass
class CheckReport:
    """What one check did."""

    previous_size: int
    size: int
    root_hash: bytes
    entries: int = 0  # new entries recomputed
    requests: int = 0
    bytes_fetched: int = 0
    cosignatures: list[Cosignature] = field(default_factory=list)


class TileFetcher:
    """GETs of a tlog-tiles prefix over one keep-alive client (httpx), a few in parallel."""

    def __init__(
        self,
        url: str,
        *,
        client: httpx.Client | None = None,
        parallel: int = PARALLEL_FETCHES,
        accept_encoding: str = "gzip, identity",
    ) -> None:
        """`url` is the log's prefix (e.g. https://host/api/v1/ledger/log); entry bundles come gzipped by default
        (the spec: clients SHOULD accept gzip and identity)."""
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"log URL {url!r} must start with http:// or https://")
        self.prefix = url.rstrip("/")
        limits = httpx.Limits(max_connections=parallel, max_keepalive_connections=parallel)
        self._own = client is None
        self.client = client or httpx.Client(timeout=TIMEOUT_SECONDS, limits=limits, follow_redirects=False)
        self.parallel = parallel
        self.accept_encoding = accept_encoding
        self._pool = ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="tiles") if parallel > 1 else None
        self.requests = 0
        self.bytes = 0

    def get(self, path: str, *, limit: int = MAX_TILE_BYTES) -> bytes:
        """The body of `<prefix>/<path>`; FetchError on a network error or a non-200 answer."""
        try:
            with self.client.stream(
                "GET", f"{self.prefix}/{path}", headers={"Accept-Encoding": self.accept_encoding}
            ) as resp:
                if resp.status_code != 200:
                    resp.read()
                    raise FetchError(f"GET {path}: HTTP {resp.status_code}")
                body = bytearray()
                for chunk in resp.iter_bytes():
                    body += chunk
                    if len(body) > limit:
                        raise Inconsistency("format", f"{path}: more than {limit} bytes")
        except httpx.HTTPError as exc:
            raise FetchError(f"GET {path}: {type(exc).__name__}: {exc}") from exc
        self.requests += 1
        self.bytes += len(body)
        return bytes(body)

    def get_many(self, paths: Sequence[str]) -> list[bytes]:
        """Fetch several paths (in parallel), in order."""
        if self._pool is None or len(paths) < 2:
            return [self.get(p) for p in paths]
        return list(self._pool.map(self.get, paths))

    def close(self) -> None:
        """Release the connections and threads."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        if self._own:
            self.client.close()


def _hashes(tile: tiles.Tile, data: bytes) -> list[bytes]:
    try:
        return tiles.split_hashes(data, tile.width)
    except ValueError as exc:
        raise Inconsistency("format", f"{tile.path}: {exc}") from exc


class Monitor:
    """Follows one log: its prefix URL, its key, and optionally witnesses and a quorum."""

    def __init__(
        self,
        fetcher: TileFetcher,
        *,
        key: Verifier | None = None,
        witnesses: Sequence[CosignatureVerifier] = (),
        quorum: int | None = None,
        batch: int = BATCH_TILES,
    ) -> None:
        """`key` may be omitted only when a state pins the log's key; `quorum` defaults to all witnesses."""
        self.fetcher = fetcher
        self.key = key
        self.witnesses = list({w.vkey: w for w in witnesses}.values())
        self.quorum = len(self.witnesses) if quorum is None else quorum
        if self.quorum > len(self.witnesses):
            raise ValueError(f"quorum {self.quorum} is larger than the {len(self.witnesses)} witnesses given")
        self.batch = batch

    # -- the checkpoint --

    def _checkpoint(self, state: MonitorState | None) -> tuple[Checkpoint, bytes, Verifier, list[Cosignature]]:
        key = self.key
        if state is not None:
            pinned = Verifier.from_vkey(state.log_key)
            if key is None:
                key = pinned
            elif key.vkey != pinned.vkey:
                # A rotated key must be accepted by a person, not silently by the monitor.
                raise Inconsistency("signature", f"--key {key.vkey} is not the key pinned in the state ({pinned.vkey})")
        if key is None:
            raise ValueError("no log key: give --key on the first run (it is then kept in the state)")
        note = self.fetcher.get("checkpoint", limit=MAX_CHECKPOINT_BYTES)
        try:
            checkpoint = open_checkpoint(note, key)
        except CheckpointError as exc:
            raise Inconsistency("signature", f"checkpoint does not verify with {key.name}: {exc}") from exc
        if state is not None and checkpoint.origin != state.origin:
            raise Inconsistency("origin", f"checkpoint origin {checkpoint.origin!r} is not {state.origin!r}")
        cosigned: list[Cosignature] = []
        if self.quorum:
            try:
                cosigned = require_quorum(note, self.witnesses, self.quorum)
            except CheckpointError as exc:
                raise Inconsistency("witness", f"checkpoint of size {checkpoint.size}: {exc}") from exc
        return checkpoint, note, key, cosigned

    # -- the check --

    def check(self, state: MonitorState | None) -> tuple[MonitorState, CheckReport]:
        """Verify the log's latest checkpoint against `state` (None: from the empty tree); return the new state."""
        checkpoint, note, key, cosigned = self._checkpoint(state)
        old_size = state.size if state is not None else 0
        old_root = state.root_hash if state is not None else CompactRange().root()
        start_requests, start_bytes = self.fetcher.requests, self.fetcher.bytes
        report = CheckReport(old_size, checkpoint.size, checkpoint.root_hash, cosignatures=cosigned)
        if checkpoint.size < old_size:
            raise Inconsistency(
                "rollback",
                f"rollback: checkpoint size {checkpoint.size} is smaller than the verified size {old_size}",
            )
        if checkpoint.size == old_size and checkpoint.root_hash != old_root:
            raise Inconsistency(
                "fork",
                f"fork: checkpoint of size {checkpoint.size} has root {checkpoint.root_hash.hex()}, the verified one "
                f"{old_root.hex()}",
            )
        tree = state.compact_range() if state is not None else CompactRange()
        completed: dict[NodeId, bytes] = {}
        if checkpoint.size > old_size:
            report.entries = self._extend(tree, checkpoint.size, completed)
            root = tree.root()
            if root != checkpoint.root_hash:
                self._explain_mismatch(state, checkpoint, root)
            self._check_upper_tiles(completed, checkpoint.size)
        ids = frontier(checkpoint.size)
        new_state = MonitorState(
            origin=checkpoint.origin,
            size=checkpoint.size,
            root_hash=checkpoint.root_hash,
            edge=tuple(tree.pending[level] for level, _ in ids),
            note=note.decode("utf-8"),
            log_key=key.vkey,
        )
        report.requests = self.fetcher.requests - start_requests
        report.bytes_fetched = self.fetcher.bytes - start_bytes
        return new_state, report

    def _bundles(self, start: int, end: int) -> Iterator[tuple[tiles.Tile, list[bytes], list[bytes]]]:
        """(bundle, its entries, its level-0 tile hashes) for entries [start, end), fetched in parallel batches."""
        bundles = tiles.entry_bundles(start, end)
        for i in range(0, len(bundles), self.batch):
            chunk = bundles[i : i + self.batch]
            paths = [p for b in chunk for p in (b.path, b.hash_tile().path)]
            bodies = self.fetcher.get_many(paths)
            for j, bundle in enumerate(chunk):
                try:
                    leaves = tiles.decode_entry_bundle(bodies[2 * j], bundle.width)
                except ValueError as exc:
                    raise Inconsistency("format", f"{bundle.path}: {exc}") from exc
                yield bundle, leaves, _hashes(bundle.hash_tile(), bodies[2 * j + 1])

    def _extend(self, tree: CompactRange, size: int, completed: dict[NodeId, bytes]) -> int:
        """Append the leaf hashes of entries [tree.size, size) to `tree`, checking each against its tile hash;
        collect the completed nodes at tile levels ≥ 1 into `completed`."""
        start = tree.size
        out: list[tuple[int, int, bytes]] = []
        for bundle, leaves, tile_hashes in self._bundles(start, size):
            computed = leaf_hashes(leaves)
            for i, (mine, theirs) in enumerate(zip(computed, tile_hashes, strict=True)):
                if mine != theirs:
                    index = bundle.start + i
                    raise Inconsistency(
                        "entry",
                        f"entry {index} ({bundle.path}) hashes to {mine.hex()}, its tile hash is {theirs.hex()}",
                    )
            skip = max(0, start - bundle.start)  # entries verified before, in a bundle that was partial then
            for h in computed[skip:]:
                tree.append(h, out)
            for level, idx, h in out:
                if level and level % tiles.TILE_HEIGHT == 0:
                    completed[(level, idx)] = h
            out.clear()
        return size - start

    def _explain_mismatch(self, state: MonitorState | None, checkpoint: Checkpoint, root: bytes) -> None:
        """The recomputed root differs: a fork when the served tree disagrees with the verified edge, else plain."""
        if state is not None and state.size:
            needed = sorted({tiles.subtree_tiles(level, idx, checkpoint.size) for level, idx in frontier(state.size)})
            try:
                got = dict(zip(needed, self.fetcher.get_many([t.path for t in needed]), strict=True))
                served = [
                    tiles.subtree_hash(level, idx, checkpoint.size, {t: _hashes(t, d) for t, d in got.items()})
                    for level, idx in frontier(state.size)
                ]
            except (FetchError, Inconsistency, LookupError):
                served = []
            if served and served != list(state.edge):
                raise Inconsistency(
                    "fork",
                    f"fork: the log's tree at the verified size {state.size} is no longer the verified one "
                    f"(checkpoint of size {checkpoint.size} does not extend it)",
                )
        raise Inconsistency(
            "root",
            f"root mismatch: the entries up to {checkpoint.size} hash to {root.hex()}, the checkpoint says "
            f"{checkpoint.root_hash.hex()}",
        )

    def _check_upper_tiles(self, completed: dict[NodeId, bytes], size: int) -> None:
        """Every tile hash at level ≥ 1 completed by the new entries must be the node recomputed from them."""
        wanted: dict[tiles.Tile, list[NodeId]] = {}
        for level, idx in completed:
            wanted.setdefault(tiles.tile_for(level // tiles.TILE_HEIGHT, idx, size), []).append((level, idx))
        order = sorted(wanted)
        for i in range(0, len(order), self.batch):
            chunk = order[i : i + self.batch]
            for tile, data in zip(chunk, self.fetcher.get_many([t.path for t in chunk]), strict=True):
                hashes = _hashes(tile, data)
                for level, idx in wanted[tile]:
                    if hashes[idx - tile.start] != completed[(level, idx)]:
                        raise Inconsistency(
                            "tile",
                            f"{tile.path}: hash {idx - tile.start} is {hashes[idx - tile.start].hex()}, the entries "
                            f"give {completed[(level, idx)].hex()}",
                        )
