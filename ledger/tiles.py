"""C2SP tlog-tiles: tile and entry-bundle paths, tiles read from the stored tree, entry bundles, roots from tiles.

A tile at level L is 256 consecutive hashes at tree level 8·L: the n-th tile holds, for i in 0..255,
`MTH(D[(n·256 + i)·256^L : (n·256 + i + 1)·256^L])`, i.e. the perfect subtree `(8·L, n·256 + i)`, which is exactly
the row `ledger_nodes(level = 8·L, idx = n·256 + i)` (level 0: the leaf hashes). A partial tile holds the first W
hashes (1 ≤ W ≤ 255) and is served at `tile/<L>/<N>.p/<W>`. The entry bundle `tile/entries/<N>[.p/<W>]` holds the
entries of the level-0 tile N, each as a big-endian uint16 length followed by the leaf bytes (RFC 8785 JSON of ids,
types, times and hashes: never the payloads). See https://c2sp.org/tlog-tiles.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy.engine import Connection

from ledger import storage
from ledger.merkle import EMPTY_ROOT, HASH_SIZE, NodeId, fold_right, frontier, node_hash

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT  # 256 hashes, 8,192 bytes when full
MAX_LEVEL = 63
MAX_ENTRY_BYTES = 0xFFFF  # a uint16 length prefix
# At most this many 3-digit elements in <N> (indices below 10^24: far beyond any tree a BIGINT can index).
MAX_INDEX_ELEMENTS = 8
_LEVEL = re.compile(r"0|[1-9][0-9]{0,1}")
_WIDTH = re.compile(r"[1-9][0-9]{0,2}")
_ELEMENT = re.compile(r"x?[0-9]{3}")


class TilePathError(ValueError):
    """A path that is not a canonical C2SP tile or entry-bundle path."""


@dataclass(frozen=True, slots=True, order=True)
class Tile:
    """A hash tile (`entries=False`) of tile level `level`, or the entry bundle of level-0 tile `index`."""

    level: int
    index: int
    width: int = TILE_WIDTH
    entries: bool = False

    def __post_init__(self) -> None:
        """Refuse tiles the spec does not define."""
        if not 0 <= self.level <= MAX_LEVEL or (self.entries and self.level != 0):
            raise TilePathError(f"tile level {self.level} out of range")
        if self.index < 0:
            raise TilePathError("tile index must not be negative")
        if not 1 <= self.width <= TILE_WIDTH:
            raise TilePathError(f"tile width {self.width} out of range 1..{TILE_WIDTH}")

    @property
    def full(self) -> bool:
        """Whether the tile holds all 256 hashes (immutable for ever; a partial tile only until it fills)."""
        return self.width == TILE_WIDTH

    @property
    def tree_level(self) -> int:
        """The tree level its hashes are at (8·L)."""
        return TILE_HEIGHT * self.level

    @property
    def start(self) -> int:
        """Position of its first hash among the nodes of its tree level."""
        return self.index * TILE_WIDTH

    @property
    def needs_size(self) -> int:
        """The smallest tree size that holds every hash of this tile."""
        return (self.start + self.width) << self.tree_level

    @property
    def path(self) -> str:
        """`tile/<L>/<N>[.p/<W>]` or `tile/entries/<N>[.p/<W>]`."""
        head = "tile/entries" if self.entries else f"tile/{self.level}"
        tail = "" if self.full else f".p/{self.width}"
        return f"{head}/{encode_index(self.index)}{tail}"

    def node_ids(self) -> list[NodeId]:
        """The perfect subtrees whose hashes it holds, in order."""
        return [(self.tree_level, self.start + i) for i in range(self.width)]

    def hash_tile(self) -> Tile:
        """The level-0 hash tile whose hashes are this entry bundle's leaf hashes (itself for a hash tile)."""
        return Tile(self.level, self.index, self.width) if self.entries else self


def encode_index(index: int) -> str:
    """Encode a tile index as 3-digit path elements, all but the last prefixed with `x`: 1234067 → x001/x234/067."""
    if index < 0:
        raise TilePathError("tile index must not be negative")
    parts = [f"{index % 1000:03d}"]
    index //= 1000
    while index:
        parts.append(f"x{index % 1000:03d}")
        index //= 1000
    return "/".join(reversed(parts))


def parse_tile_path(path: str) -> Tile:
    """Parse a tile or entry-bundle path relative to the log's prefix; only the canonical spelling is accepted
    (no leading zeros in L or W, no `x000` element in front, no `.p/256`), so each resource has exactly one URL."""
    parts = path.split("/")
    if len(parts) < 3 or parts[0] != "tile":
        raise TilePathError("a tile path looks like tile/<L>/<N>[.p/<W>] or tile/entries/<N>[.p/<W>]")
    entries = parts[1] == "entries"
    if not entries and not _LEVEL.fullmatch(parts[1]):
        raise TilePathError(f"tile level {parts[1][:20]!r} is not a decimal number without leading zeros")
    level = 0 if entries else int(parts[1])
    elements = parts[2:]
    width = TILE_WIDTH
    if elements[-1:] and len(elements) >= 2 and elements[-2].endswith(".p"):
        if not _WIDTH.fullmatch(elements[-1]) or int(elements[-1]) >= TILE_WIDTH:
            raise TilePathError(f"partial tile width {elements[-1][:20]!r} is not a number from 1 to 255")
        width = int(elements[-1])
        elements = [*elements[:-2], elements[-2][: -len(".p")]]
    if not 1 <= len(elements) <= MAX_INDEX_ELEMENTS:
        raise TilePathError("tile index has no or too many path elements")
    index = 0
    for i, element in enumerate(elements):
        last = i == len(elements) - 1
        if not _ELEMENT.fullmatch(element) or element.startswith("x") == last:
            raise TilePathError(f"tile index element {element[:20]!r}: expected xNNN before the last, NNN last")
        index = index * 1000 + int(element.removeprefix("x"))
    tile = Tile(level, index, width, entries)
    if tile.path != path:
        raise TilePathError(f"not the canonical tile path (that is {tile.path})")
    return tile


def tile_for(level: int, position: int, size: int, *, entries: bool = False) -> Tile:
    """The tile of level `level` holding node `position` of tree level 8·level, as published for a tree of `size`
    (full, or partial with the width that size gives)."""
    available = size >> (TILE_HEIGHT * level)
    if not 0 <= position < available:
        raise ValueError(f"node {position} of tile level {level} is not in a tree of size {size}")
    index = position // TILE_WIDTH
    return Tile(level, index, min(TILE_WIDTH, available - index * TILE_WIDTH), entries)


def tiles_for_size(size: int) -> list[Tile]:
    """Every hash tile of a tree of `size` (full ones and, per level, the partial one), level by level."""
    out: list[Tile] = []
    level = 0
    while level <= MAX_LEVEL and size >> (TILE_HEIGHT * level):
        count = size >> (TILE_HEIGHT * level)
        out.extend(Tile(level, n) for n in range(count // TILE_WIDTH))
        if count % TILE_WIDTH:
            out.append(Tile(level, count // TILE_WIDTH, count % TILE_WIDTH))
        level += 1
    return out


def entry_bundles(start: int, end: int) -> list[Tile]:
    """The entry bundles (as published for a tree of `end` entries) that hold entries [start, end)."""
    if not 0 <= start <= end:
        raise ValueError(f"bad entry range [{start}, {end})")
    if start == end:
        return []
    return [tile_for(0, p, end, entries=True) for p in range(start - start % TILE_WIDTH, end, TILE_WIDTH)]


# --- contents ---


def encode_entry_bundle(leaves: Iterable[bytes]) -> bytes:
    """Concatenate entries, each prefixed with its length as a big-endian uint16."""
    out = bytearray()
    for leaf in leaves:
        if len(leaf) > MAX_ENTRY_BYTES:
            raise ValueError(f"entry of {len(leaf)} bytes does not fit a uint16 length")
        out += len(leaf).to_bytes(2, "big")
        out += leaf
    return bytes(out)


def decode_entry_bundle(data: bytes, width: int) -> list[bytes]:
    """Split an entry bundle into exactly `width` entries (ValueError when it holds more, fewer or trailing bytes)."""
    leaves: list[bytes] = []
    offset, end = 0, len(data)
    view = memoryview(data)
    while offset < end:
        if offset + 2 > end:
            raise ValueError(f"entry bundle ends inside the length of entry {len(leaves)}")
        length = (data[offset] << 8) | data[offset + 1]
        offset += 2
        if offset + length > end:
            raise ValueError(f"entry {len(leaves)} of the bundle is cut short")
        leaves.append(bytes(view[offset : offset + length]))
        offset += length
        if len(leaves) > width:
            break
    if len(leaves) != width:
        raise ValueError(f"entry bundle holds {len(leaves)} entries, expected {width}")
    return leaves


def split_hashes(data: bytes, width: int) -> list[bytes]:
    """Split a hash tile into its `width` hashes (ValueError on any other length)."""
    if len(data) != width * HASH_SIZE:
        raise ValueError(f"tile of {len(data)} bytes, expected {width} hashes ({width * HASH_SIZE} bytes)")
    return [data[i : i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE)]


def tile_query(tile: Tile, paramstyle: str) -> tuple[str, tuple[int, ...]]:
    """The SQL (for a DBAPI of `paramstyle`) and parameters that read the tile's rows: one primary-key range."""
    mark = "?" if paramstyle == "qmark" else "%s"
    if tile.entries:
        sql = f"SELECT leaf FROM {storage.entries.name} WHERE idx >= {mark} AND idx < {mark} ORDER BY idx"
        return sql, (tile.start, tile.start + tile.width)
    sql = f"SELECT hash FROM {storage.nodes.name} WHERE level = {mark} AND idx >= {mark} AND idx < {mark} ORDER BY idx"
    return sql, (tile.tree_level, tile.start, tile.start + tile.width)


def tile_from_rows(tile: Tile, rows: Sequence[bytes]) -> bytes:
    """The tile's bytes from the rows `tile_query` read (LookupError when rows are missing)."""
    if len(rows) != tile.width:
        raise LookupError(f"{tile.path}: {len(rows)} of {tile.width} rows stored")
    return encode_entry_bundle(rows) if tile.entries else b"".join(rows)


def read_tile(conn: Connection, tile: Tile) -> bytes:
    """The tile's bytes from storage: one range read on a primary key (LookupError when rows are missing)."""
    # Plain driver SQL, as storage.fetch_nodes: this is the hot path of a monitor reading the whole log.
    sql, params = tile_query(tile, conn.dialect.paramstyle)
    return tile_from_rows(tile, [bytes(r[0]) for r in conn.exec_driver_sql(sql, params)])


def tile_from_nodes(tile: Tile, nodes: Callable[[list[NodeId]], Mapping[NodeId, bytes]]) -> bytes:
    """The tile's bytes from any node source (e.g. `MemoryTree.nodes`), for hash tiles."""
    if tile.entries:
        raise ValueError("an entry bundle is made of leaves, not nodes")
    found = nodes(tile.node_ids())
    return b"".join(found[i] for i in tile.node_ids())


# --- hashes from tiles (what a tile client computes) ---


def _subtree_from_tile(level: int, index: int, hashes: Sequence[bytes], offset: int) -> bytes:
    """Hash perfect subtree (level, index) from the tile hashes at tree level 8·⌊level/8⌋ (`offset` is the tile's
    first position)."""
    base = level - level % TILE_HEIGHT
    count = 1 << (level - base)
    first = (index << (level - base)) - offset
    layer = list(hashes[first : first + count])
    if len(layer) != count:
        raise LookupError(f"tile lacks the hashes of node ({level}, {index})")
    while len(layer) > 1:
        layer = [node_hash(layer[i], layer[i + 1]) for i in range(0, len(layer), 2)]
    return layer[0]


def subtree_tiles(level: int, index: int, size: int) -> Tile:
    """The tile (as published at `size`) from which perfect subtree (level, index) is computed."""
    tile_level = level // TILE_HEIGHT
    return tile_for(tile_level, (index << (level % TILE_HEIGHT)) + (1 << (level % TILE_HEIGHT)) - 1, size)


def subtree_hash(level: int, index: int, size: int, tiles: Mapping[Tile, Sequence[bytes]]) -> bytes:
    """The hash of perfect subtree (level, index) of a tree of `size`, from its tile in `tiles` (tile → hashes)."""
    tile = subtree_tiles(level, index, size)
    return _subtree_from_tile(level, index, tiles[tile], tile.start)


def root_tiles(size: int) -> list[Tile]:
    """The tiles a client needs to compute the root of a tree of `size` (one per frontier node, deduplicated)."""
    return sorted({subtree_tiles(level, idx, size) for level, idx in frontier(size)})


def root_from_tiles(size: int, tiles: Mapping[Tile, Sequence[bytes]]) -> bytes:
    """The root of a tree of `size` from its tiles (those of `root_tiles(size)`), as an RFC 9162 fold."""
    if size == 0:
        return EMPTY_ROOT
    return fold_right([subtree_hash(level, idx, size, tiles) for level, idx in frontier(size)])
