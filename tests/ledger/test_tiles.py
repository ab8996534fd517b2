"""C2SP tlog-tiles: paths as the spec spells them, tile contents against the naive RFC 9162 tree, entry bundles."""

from __future__ import annotations

import hashlib
import json

import pytest
from ledger_helpers import ORIGIN, make_events
from naive_merkle import mth
from sqlalchemy import Engine

from ledger import storage
from ledger.checkpoint import Signer
from ledger.leaf import FIELDS
from ledger.merkle import MemoryTree, leaf_hash
from ledger.tiles import (
    MAX_ENTRY_BYTES,
    TILE_WIDTH,
    Tile,
    TilePathError,
    decode_entry_bundle,
    encode_entry_bundle,
    encode_index,
    entry_bundles,
    parse_tile_path,
    read_tile,
    root_from_tiles,
    root_tiles,
    split_hashes,
    tile_for,
    tile_from_nodes,
    tiles_for_size,
)
from ledger.writer import LedgerWriter

# ------------------------------------------------------------------------------------------------------------ paths


def test_the_specs_index_example() -> None:
    assert encode_index(1234067) == "x001/x234/067"
    assert parse_tile_path("tile/0/x001/x234/067") == Tile(0, 1234067)
    assert Tile(0, 1234067).path == "tile/0/x001/x234/067"


@pytest.mark.parametrize(
    ("path", "tile"),
    [
        ("tile/0/000", Tile(0, 0)),
        ("tile/0/005.p/1", Tile(0, 5, 1)),
        ("tile/1/999.p/255", Tile(1, 999, 255)),
        ("tile/2/x001/000", Tile(2, 1000)),
        ("tile/63/000.p/1", Tile(63, 0, 1)),
        ("tile/entries/000", Tile(0, 0, entries=True)),
        ("tile/entries/x001/x234/067.p/8", Tile(0, 1234067, 8, entries=True)),
    ],
)
def test_paths_parse_and_format_both_ways(path: str, tile: Tile) -> None:
    assert parse_tile_path(path) == tile
    assert tile.path == path


@pytest.mark.parametrize(
    "path",
    [
        "tile/0/5",  # 3 digits per element
        "tile/0/x000/005",  # no leading x000: one URL per tile
        "tile/00/005",  # no leading zeros in L
        "tile/64/000",  # L ≤ 63
        "tile/-1/000",
        "tile/0/005.p/256",  # a full tile has no .p
        "tile/0/005.p/0",  # empty tiles are never served
        "tile/0/005.p/08",
        "tile/0/005.p",
        "tile/0/005/",
        "tile/0/x005",
        "tile/0/005/x001",
        "tile/0/x1/000",
        "tile/0",
        "tile/entries",
        "tile/entries/",
        "tiles/0/000",
        "tile/data/000",
        "tile/1/entries/000",
        "tile/0/" + "x999/" * 8 + "999",  # more elements than any tree needs
        "tile/0/００５",  # non-ASCII digits
    ],
)
def test_malformed_paths_are_refused(path: str) -> None:
    with pytest.raises(TilePathError):
        parse_tile_path(path)


@pytest.mark.parametrize(
    ("index", "size", "path"),
    [
        (0, 1, "tile/entries/000.p/1"),
        (0, 255, "tile/entries/000.p/255"),
        (0, 256, "tile/entries/000"),
        (10, 2816, "tile/entries/010"),
        (1234067, 1234067 * 256 + 6, "tile/entries/x001/x234/067.p/6"),
        (1234067, 315_921_160, "tile/entries/x001/x234/067.p/8"),
    ],
)
def test_paths_for_a_tree_size_as_other_implementations_write_them(index: int, size: int, path: str) -> None:
    """The widths a tree size gives, as transparency-dev/tessera's layout examples spell them."""
    assert tile_for(0, index * TILE_WIDTH, size, entries=True).path == path
    assert tile_for(0, index * TILE_WIDTH, size).path == path.replace("entries", "0")


def test_the_specs_examples_of_tile_sets() -> None:
    """Size 70,000: 273 full level-0 tiles and one of width 112, one full level-1 tile and one of width 17, one
    level-2 tile of width 1; size 256: one full level-0 tile and a level-1 tile of width 1."""
    tiles = tiles_for_size(70_000)
    assert [t for t in tiles if t.level == 0 and t.full] == [Tile(0, n) for n in range(273)]
    assert [t for t in tiles if not t.full] == [Tile(0, 273, 112), Tile(1, 1, 17), Tile(2, 0, 1)]
    assert [t for t in tiles if t.level == 1 and t.full] == [Tile(1, 0)]
    assert len(tiles) == 273 + 1 + 1 + 1 + 1
    assert tiles_for_size(256) == [Tile(0, 0), Tile(1, 0, 1)]
    assert tiles_for_size(0) == []
    assert tiles_for_size(1) == [Tile(0, 0, 1)]


def test_entry_bundles_of_a_range() -> None:
    assert entry_bundles(0, 0) == []
    assert entry_bundles(0, 1) == [Tile(0, 0, 1, entries=True)]
    assert entry_bundles(300, 600) == [Tile(0, 1, entries=True), Tile(0, 2, 88, entries=True)]
    assert entry_bundles(256, 512) == [Tile(0, 1, entries=True)]
    assert [t.path for t in entry_bundles(255, 257)] == ["tile/entries/000", "tile/entries/001.p/1"]


def test_the_tree_size_a_tile_needs() -> None:
    assert Tile(0, 0).needs_size == 256
    assert Tile(0, 1, 3).needs_size == 259
    assert Tile(1, 0, 1).needs_size == 256
    assert Tile(1, 0).needs_size == 65_536
    assert Tile(2, 0, 1).needs_size == 65_536


# ------------------------------------------------------------------------------------------------------- contents

SIZES = [*range(1, 40), 127, 128, 129, 255, 256, 257, 300, 511, 512, 513, 767, 768, 1000, 1023, 1024, 1025, 2048]


def naive_tile(tile: Tile, leaves: list[bytes]) -> bytes:
    """The spec's formula: MTH(D[(n·256 + i)·256^L : (n·256 + i + 1)·256^L]) for i < W."""
    span = TILE_WIDTH**tile.level
    return b"".join(
        mth(leaves[(tile.index * TILE_WIDTH + i) * span : (tile.index * TILE_WIDTH + i + 1) * span])
        for i in range(tile.width)
    )


def leaves_of(n: int) -> list[bytes]:
    return [f"leaf {i}".encode() for i in range(n)]


@pytest.mark.parametrize("size", SIZES)
def test_tiles_from_the_tree_equal_the_specs_formula(size: int) -> None:
    leaves = leaves_of(size)
    tree = MemoryTree(leaf_hash(leaf) for leaf in leaves)
    for tile in tiles_for_size(size):
        assert tile_from_nodes(tile, tree.nodes) == naive_tile(tile, leaves), tile.path
    hashes = {t: split_hashes(tile_from_nodes(t, tree.nodes), t.width) for t in root_tiles(size)}
    assert root_from_tiles(size, hashes) == mth(leaves)
    # Every smaller tree's root from the tiles published at this size (what a client checking consistency does).
    for old in {1, size // 2, size - 1} - {0}:
        old_tiles = {t: split_hashes(tile_from_nodes(t, tree.nodes), t.width) for t in root_tiles(old)}
        assert root_from_tiles(old, old_tiles) == mth(leaves[:old])


@pytest.mark.parametrize("size", [65_535, 65_536, 65_537, 65_536 + 256 * 3 + 5])
def test_tiles_across_the_65536_boundary(size: int) -> None:
    leaves = leaves_of(size)
    tree = MemoryTree(leaf_hash(leaf) for leaf in leaves)
    tiles = tiles_for_size(size)
    upper = [t for t in tiles if t.level >= 1]
    assert (Tile(2, 0, 1) in upper) == (size >= 65_536)
    for tile in [*upper, *(t for t in tiles if t.level == 0 and not t.full), Tile(0, 0), Tile(0, 254)]:
        assert tile_from_nodes(tile, tree.nodes) == naive_tile(tile, leaves), tile.path
    hashes = {t: split_hashes(tile_from_nodes(t, tree.nodes), t.width) for t in root_tiles(size)}
    assert root_from_tiles(size, hashes) == tree.root()


# -------------------------------------------------------------------------------------------------- entry bundles


def test_entry_bundles_are_uint16_length_prefixed() -> None:
    leaves = [b"", b"a", b"x" * 300, b"y" * MAX_ENTRY_BYTES]
    data = encode_entry_bundle(leaves)
    assert data[:5] == b"\x00\x00" + b"\x00\x01a"
    assert data[5:7] == (300).to_bytes(2, "big")
    assert decode_entry_bundle(data, 4) == leaves
    with pytest.raises(ValueError, match="uint16"):
        encode_entry_bundle([b"z" * (MAX_ENTRY_BYTES + 1)])
    for bad, width in [(data, 3), (data, 5), (data[:-1], 4), (data + b"\x00", 4), (data + b"\x00\x05ab", 4)]:
        with pytest.raises(ValueError, match="entr"):
            decode_entry_bundle(bad, width)
    with pytest.raises(ValueError, match="expected 1 hashes"):
        split_hashes(b"\x00" * 33, 1)


# -------------------------------------------------------------------------------------------- tiles from storage


def test_stored_tiles_and_bundles_equal_the_naive_tree(engine: Engine, signer: Signer) -> None:
    """Grown in uneven batches across the 256 and 512 boundaries: at every size, every tile read from storage is
    the spec's formula over the leaves, and every bundle holds exactly the stored leaves (and nothing more)."""
    writer = LedgerWriter(engine, signer=signer, origin=ORIGIN)
    events = make_events(800, subjects=7)
    done = 0
    for size in (1, 255, 256, 257, 300, 511, 513, 800):
        writer.append(events[done:size])
        done = size
        with engine.connect() as conn:
            leaves = [e.leaf for e in storage.iter_entries(conn)]
            for tile in tiles_for_size(size):
                assert read_tile(conn, tile) == naive_tile(tile, leaves), (size, tile.path)
            for bundle in entry_bundles(0, size):
                got = decode_entry_bundle(read_tile(conn, bundle), bundle.width)
                assert got == leaves[bundle.start : bundle.start + bundle.width]
                assert b"".join(leaf_hash(x) for x in got) == read_tile(conn, bundle.hash_tile())
    with engine.connect() as conn:
        # Leaves only: ids, types, times and hashes; the payloads stay out of the published bundles.
        for leaf in decode_entry_bundle(read_tile(conn, Tile(0, 0, entries=True)), TILE_WIDTH):
            assert set(json.loads(leaf)) == set(FIELDS)
        with pytest.raises(LookupError):
            read_tile(conn, Tile(0, 3, 33))  # beyond the log
        with pytest.raises(LookupError):
            read_tile(conn, Tile(0, 3, 33, entries=True))


def test_stored_upper_tiles_across_65536(engine: Engine) -> None:
    """The level-1 and level-2 tiles of a tree of 65,536 + 300 leaves, read from stored nodes (inserted directly:
    the tiles depend on ledger_nodes only)."""
    size = 65_536 + 300
    leaves = [hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(size)]
    tree = MemoryTree(leaf_hash(x) for x in leaves)
    rows = [(level, idx, h) for level, hashes in enumerate(tree.levels) for idx, h in enumerate(hashes)]
    with engine.begin() as conn:
        storage.insert_nodes(conn, rows)
    with engine.connect() as conn:
        for tile in [Tile(1, 0), Tile(1, 1, 1), Tile(2, 0, 1), Tile(0, 256, 44), Tile(0, 255)]:
            assert read_tile(conn, tile) == naive_tile(tile, leaves), tile.path
