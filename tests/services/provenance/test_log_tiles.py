"""The log served as C2SP tlog-tiles (public, cacheable), and `smartgate ledger monitor` following it over HTTP:
consistent growth passes; a rollback, a fork (same size or grown), a modified entry, a lying tile, a wrong key and a
missing cosignature each make it exit 1 with one line."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, insert, text
from typer.testing import CliRunner

from ledger import storage, tiles
from ledger.checkpoint import Checkpoint, Signer, open_checkpoint
from ledger.leaf import FIELDS
from ledger.merkle import MemoryTree, leaf_hash, root
from ledger.monitor import load_state
from ledger.witness import Cosigner, split_note
from ledger.writer import Event, LedgerWriter
from services.kernel.database import table_of
from services.kernel.runtime import Runtime
from services.provenance.cli import app as ledger_app
from services.provenance.models import WitnessCosignature
from services.provenance.service import Provenance
from tests.api.support import assert_problem

LOG = "/api/v1/ledger/log"


def events(start: int, n: int) -> list[Event]:
    t0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    return [
        Event(
            subject=f"decl-{i % 13:04d}",
            event_type="declaration.submitted",
            event_id=f"evt-{i:08d}",
            payload=json.dumps({"n": i, "secret": f"confidential-{i}"}).encode(),
            time=t0 + timedelta(seconds=i),
        )
        for i in range(start, start + n)
    ]


class Log:
    """The app's ledger, grown directly with the library's writer and signed with the service's key."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.prov: Provenance = runtime.extras["provenance"]
        self.writer = LedgerWriter(runtime.engine, signer=self.prov.signer, origin=self.prov.origin)
        self.url = runtime.settings.database_url

    @property
    def size(self) -> int:
        with self.runtime.engine.connect() as conn:
            return storage.log_size(conn)

    def grow(self, n: int, *, checkpoint: bool = True) -> int:
        self.writer.append(events(self.size, n))
        if checkpoint:
            self.writer.checkpoint()
        return self.size

    def leaves(self) -> list[bytes]:
        with self.runtime.engine.connect() as conn:
            return [e.leaf for e in storage.iter_entries(conn)]

    def tamper(self, *statements: tuple[str, dict[str, Any]]) -> None:
        """As an attacker with the database: drop the append-only triggers, then run `statements`."""
        engine = create_engine(self.url)
        with engine.begin() as conn:
            for stmt in storage.drop_trigger_statements(conn.dialect.name):
                conn.exec_driver_sql(stmt)
            for sql, params in statements:
                conn.execute(text(sql), params)
        engine.dispose()

    def rewrite(self, index: int, *, signer: Signer | None = None) -> None:
        """Rewrite history: entry `index` gets other leaf bytes, every node is recomputed, every checkpoint is
        replaced by one at the same size over the new tree (signed with the log's key)."""
        leaves = self.leaves()
        leaves[index] = leaves[index].replace(b"declaration.submitted", b"declaration.rejected")
        tree = MemoryTree(leaf_hash(x) for x in leaves)
        with self.runtime.engine.connect() as conn:
            sizes = [size for size, _ in storage.all_checkpoints(conn)]
        statements = [
            ("UPDATE ledger_entries SET leaf = :leaf, leaf_hash = :h WHERE idx = :i",
             {"leaf": leaves[index], "h": leaf_hash(leaves[index]), "i": index}),
            ("DELETE FROM ledger_nodes", {}),
            ("DELETE FROM ledger_checkpoints", {}),
        ]  # fmt: skip
        self.tamper(*statements)
        signer = signer or self.prov.signer
        with self.runtime.engine.begin() as conn:
            rows = [(level, idx, h) for level, hashes in enumerate(tree.levels) for idx, h in enumerate(hashes)]
            storage.insert_nodes(conn, rows)
            for size in sizes:
                note = Checkpoint(self.prov.origin, size, tree.root(size)).sign(signer)
                storage.insert_checkpoint(conn, size, note, datetime.now(UTC))


@pytest.fixture
def log(app: Any, runtime: Runtime) -> Log:
    return Log(runtime)


# ---------------------------------------------------------------------------------------------------- the endpoints


def test_the_log_is_served_as_tiles_to_anyone(client: Any, log: Log) -> None:
    assert_problem(client.get(f"{LOG}/checkpoint"), 404)
    assert_problem(client.get(f"{LOG}/tile/0/000.p/1"), 404)
    size = log.grow(600)
    response = client.get(f"{LOG}/checkpoint")  # no key: public
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.headers["cache-control"] == "public, max-age=2"
    checkpoint = open_checkpoint(response.content, log.prov.verifier, origin=log.prov.origin)
    assert checkpoint.size == size == 600
    assert response.content == client.get("/api/v1/ledger/checkpoint").content

    leaves = log.leaves()
    tree = MemoryTree(leaf_hash(x) for x in leaves)
    served: dict[tiles.Tile, list[bytes]] = {}
    for tile in tiles.tiles_for_size(size):
        got = client.get(f"{LOG}/{tile.path}")
        assert got.status_code == 200, tile.path
        assert got.headers["content-type"] == "application/octet-stream"
        assert got.headers["cache-control"] == (
            "public, max-age=31536000, immutable" if tile.full else "public, max-age=60"
        )
        assert got.content == tiles.tile_from_nodes(tile, tree.nodes)
        served[tile] = tiles.split_hashes(got.content, tile.width)
    assert [t.path for t in served] == ["tile/0/000", "tile/0/001", "tile/0/002.p/88", "tile/1/000.p/2"]
    assert tiles.root_from_tiles(size, served) == checkpoint.root_hash

    published: list[bytes] = []
    for bundle in tiles.entry_bundles(0, size):
        got = client.get(f"{LOG}/{bundle.path}")
        assert got.status_code == 200, bundle.path
        assert got.headers["content-encoding"] == "gzip"  # the client said it takes gzip (httpx does)
        published += tiles.decode_entry_bundle(got.content, bundle.width)
        plain = client.get(f"{LOG}/{bundle.path}", headers={"Accept-Encoding": "identity"})
        assert "content-encoding" not in plain.headers
        assert plain.content == got.content
    assert published == leaves
    assert root(published) == checkpoint.root_hash
    for leaf in published:
        # Ids, types, times and hashes only: the confidential payloads are never published.
        assert set(json.loads(leaf)) == set(FIELDS)
        assert b"confidential" not in leaf

    # A partial tile stays served after the tile filled (clients that verified the older checkpoint need it).
    assert client.get(f"{LOG}/tile/0/000.p/5").content == tiles.tile_from_nodes(tiles.Tile(0, 0, 5), tree.nodes)


def test_only_what_the_latest_checkpoint_covers_is_served(client: Any, log: Log) -> None:
    log.grow(300)
    log.grow(300, checkpoint=False)  # stored, not yet checkpointed
    for path in ["tile/0/001", "tile/entries/001", "tile/0/002.p/1", "tile/0/001.p/45", "tile/1/000.p/2",
                 "tile/2/000.p/1", "tile/0/x999/x999/x999/x999/x999/x999/x999/999"]:  # fmt: skip
        assert_problem(client.get(f"{LOG}/{path}"), 404)
    assert client.get(f"{LOG}/tile/0/001.p/44").status_code == 200
    assert client.get(f"{LOG}/tile/entries/001.p/44").status_code == 200
    log.writer.checkpoint()
    assert client.get(f"{LOG}/tile/0/001").status_code == 200
    assert client.get(f"{LOG}/tile/1/000.p/2").status_code == 200


@pytest.mark.parametrize(
    "path",
    ["tile/0/5", "tile/0/x000/000", "tile/00/000", "tile/0/000.p/256", "tile/0/000.p/0", "tile/64/000",
     "tile/entries/000.p/08", "tile/x/000", "tile/0/000%2Fx", "tile/0/" + "x001/" * 8 + "000", "tile/",
     "tile/0/000.p/1/extra", "tile/0/\u0660\u0660\u0660", "tile/0/" + "x001/" * 100 + "000"],
)  # fmt: skip
def test_a_malformed_tile_path_is_a_problem_never_a_500(client: Any, log: Log, path: str) -> None:
    log.grow(10)
    response = client.get(f"{LOG}/{path}")
    assert response.status_code in (400, 404), (path, response.status_code)
    assert_problem(response, response.status_code)


# ------------------------------------------------------------------------------------------------------ the monitor

runner = CliRunner()


def monitor(url: str, state: Path, *args: str) -> Any:
    return runner.invoke(ledger_app, ["monitor", f"{url}{LOG}", "--state", str(state), "--once", *args])


def alert(result: Any, kind: str) -> str:
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line]
    assert len(lines) == 1, result.output
    assert lines[0].startswith(f"error: ALERT [{kind}] "), lines[0]
    return str(lines[0])


def test_the_monitor_follows_a_growing_log_and_keeps_its_state(served: str, log: Log, tmp_path: Path) -> None:
    state = tmp_path / "monitor.json"
    key = log.prov.verifier.vkey
    log.grow(1)
    first = monitor(served, state, "--key", key)
    assert first.exit_code == 0, first.output
    assert "size 1 (+1 entries verified" in first.output
    for n in (254, 1, 1, 300, 33):  # across the 256 and 512 boundaries, partial bundles re-read
        size = log.grow(n)
        again = monitor(served, state)  # the state pins the key
        assert again.exit_code == 0, again.output
        assert f"size {size} (+{n} entries verified" in again.output
    saved = load_state(state)
    assert saved is not None
    assert saved.size == log.size == 590
    assert saved.root_hash == root(log.leaves())
    assert saved.log_key == key
    assert monitor(served, state).exit_code == 0  # nothing new: still consistent
    # A wrong --key, or a key other than the pinned one, is a signature alert.
    other = Signer.generate("impostor").verifier.vkey
    alert(monitor(served, state, "--key", other), "signature")
    alert(monitor(served, tmp_path / "fresh.json", "--key", other), "signature")


def test_the_monitor_catches_a_rollback(served: str, log: Log, tmp_path: Path) -> None:
    state = tmp_path / "monitor.json"
    log.grow(300)
    log.grow(300)
    assert monitor(served, state, "--key", log.prov.verifier.vkey).exit_code == 0
    # The suffix after 300 is deleted with its nodes and checkpoints: the log is consistent with itself again.
    log.tamper(
        ("DELETE FROM ledger_entries WHERE idx >= 300", {}),
        ("DELETE FROM ledger_nodes WHERE ((idx + 1) << level) > 300", {}),
        ("DELETE FROM ledger_checkpoints WHERE size > 300", {}),
    )
    line = alert(monitor(served, state), "rollback")
    assert "600" in line
    assert "300" in line
    assert load_state(state).size == 600  # type: ignore[union-attr]  # the state keeps what was verified


def test_the_monitor_catches_a_fork_of_the_same_size_and_a_grown_one(served: str, log: Log, tmp_path: Path) -> None:
    state = tmp_path / "monitor.json"
    log.grow(400)
    assert monitor(served, state, "--key", log.prov.verifier.vkey).exit_code == 0
    log.rewrite(123)  # the same size, another root, signed by the log's own key
    alert(monitor(served, state), "fork")
    log.grow(200)  # and the forked log grows on: its checkpoint of 600 does not extend the verified 400
    line = alert(monitor(served, state), "fork")
    assert "verified size 400" in line
    # A fresh monitor sees a consistent (rewritten) log: only memory catches a fork.
    assert monitor(served, tmp_path / "fresh.json", "--key", log.prov.verifier.vkey).exit_code == 0


def test_the_monitor_catches_a_modified_entry_and_a_lying_tile(served: str, log: Log, tmp_path: Path) -> None:
    key = log.prov.verifier.vkey
    log.grow(520)
    entry = log.leaves()[77].replace(b"declaration.submitted", b"declaration.rejected")
    log.tamper(("UPDATE ledger_entries SET leaf = :leaf WHERE idx = 77", {"leaf": entry}))
    line = alert(monitor(served, tmp_path / "a.json", "--key", key), "entry")
    assert "entry 77 " in line

    log.rewrite(77)  # back to a log consistent with itself: a fresh monitor passes it
    assert monitor(served, tmp_path / "b.json", "--key", key).exit_code == 0
    # A level-1 tile hash that is not the subtree of its 256 entries (the root still signs the real tree).
    log.tamper(("UPDATE ledger_nodes SET hash = :h WHERE level = 8 AND idx = 1", {"h": b"\x07" * 32}))
    line = alert(monitor(served, tmp_path / "c.json", "--key", key), "tile")
    assert "tile/1/000.p/2" in line


def test_the_monitor_requires_the_witnesses_it_is_given(served: str, log: Log, tmp_path: Path) -> None:
    log.grow(5)
    w1, w2 = Cosigner.generate("w1.partner.test"), Cosigner.generate("w2.partner.test")
    state = tmp_path / "m.json"
    args = ["--key", log.prov.verifier.vkey, "--witness", w1.verifier.vkey, "--witness", w2.verifier.vkey]
    line = alert(monitor(served, state, *args, "--quorum", "1"), "witness")  # nobody cosigned it yet
    assert "not witnessed" in line
    # The first witness cosigns: its line is stored as the provenance service stores it, and served with the note.
    with log.runtime.engine.begin() as conn:
        size, note = storage.get_checkpoint(conn) or (0, b"")
        body, _ = split_note(note)
        conn.execute(
            insert(table_of(WitnessCosignature)).values(
                checkpoint_size=size,
                witness=w1.verifier.vkey,
                line=w1.cosign(body, int(time.time())).rstrip("\n"),
                cosigned_at=datetime.now(UTC),
            )
        )
    ok = monitor(served, state, *args, "--quorum", "1")
    assert ok.exit_code == 0, ok.output
    assert "cosigned by 1" in ok.output
    alert(monitor(served, state, *args), "witness")  # the default quorum is every witness given


def test_the_monitor_reports_what_it_cannot_check(served: str, log: Log, tmp_path: Path) -> None:
    key = log.prov.verifier.vkey
    nothing = monitor(served, tmp_path / "m.json", "--key", key)  # no checkpoint yet: 404
    assert nothing.exit_code == 2, nothing.output
    assert "cannot check the log" in nothing.output
    assert monitor(served, tmp_path / "m.json").exit_code == 2  # no key, no state
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    broken = monitor(served, bad, "--key", key)
    assert broken.exit_code == 2
    assert "not a monitor state" in broken.output
    unreachable = runner.invoke(ledger_app, ["monitor", "http://127.0.0.1:9/log", "--key", key, "--once"])
    assert unreachable.exit_code == 2
    assert len(unreachable.output.strip().splitlines()) == 1
    witness = Cosigner.generate("w.partner.test").verifier.vkey
    for args in (["--quorum", "2", "--witness", witness], ["--quorum", "1"], ["--witness", key]):
        refused = monitor(served, tmp_path / "m.json", "--key", key, *args)
        assert refused.exit_code == 2, (args, refused.output)
        assert len(refused.output.strip().splitlines()) == 1
    ftp = runner.invoke(ledger_app, ["monitor", "ftp://127.0.0.1/log", "--key", key, "--once"])
    assert ftp.exit_code == 2
    assert "http://" in ftp.output


def test_the_gateway_routes_the_tiles(served: str, log: Log, settings: Any) -> None:
    """The distributed deployment's gateway passes tile paths (`.p` is no dot-segment) and their cache headers."""
    from fastapi.testclient import TestClient

    from api.gateway import create_gateway

    log.grow(300)
    with TestClient(create_gateway(settings, {"provenance": served})) as gateway:
        full = gateway.get(f"{LOG}/tile/0/000")
        assert full.status_code == 200
        assert full.headers["cache-control"] == "public, max-age=31536000, immutable"
        partial = gateway.get(f"{LOG}/tile/entries/001.p/44")
        assert partial.status_code == 200
        assert tiles.decode_entry_bundle(partial.content, 44) == log.leaves()[256:300]
        assert gateway.get(f"{LOG}/checkpoint").status_code == 200
        assert_problem(gateway.get(f"{LOG}/tile/0/001"), 404)
