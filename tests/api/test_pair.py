"""`make run-pair` for real (scripts/run-pair.sh → api/pair.py), on SQLite and on PostgreSQL: both sides start with
their own databases, ports and ledger keys and become healthy; each side's checkpoints are cosigned by the witness
the other administration runs; a consignment's bundle from one side verifies offline with the other side's witness
key (and not with a witness that did not cosign it); Ctrl-C stops everything."""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from api.pair import Side, make_sides, side_databases
from services.declarations.schemas import EXAMPLE
from tests.conftest import BACKENDS, _admin_engine, _free_port, pg_server_url
from tests.processes import SMARTGATE, require, until

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "run-pair.sh"


@pytest.fixture(params=BACKENDS)
def pair_database(request: pytest.FixtureRequest) -> Iterator[str]:
    """'' for SQLite; for PostgreSQL a server URL naming a fresh base name, whose _vn and _cn databases the pair
    creates and this fixture drops."""
    if request.param == "sqlite":
        yield ""
        return
    pg = pg_server_url()
    require(None if pg else "PostgreSQL: set SMARTGATE_TEST_DATABASE_URL (.ci/run does)")
    assert pg is not None
    url = make_url(pg).set(database=f"sg_pair_{uuid.uuid4().hex[:8]}").render_as_string(hide_password=False)
    yield url
    admin = _admin_engine(pg)
    with admin.connect() as conn:
        for side_url in side_databases(url).values():
            conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(side_url).database}" WITH (FORCE)'))
    admin.dispose()


class Script:
    """scripts/run-pair.sh as a subprocess; stopped with SIGINT (Ctrl-C), its children killed if anything is left."""

    def __init__(self, var_dir: Path, database_url: str) -> None:
        self.var_dir = var_dir
        self.ports = {name: _free_port() for name in ("vn", "cn", "vn-witness", "cn-witness")}
        self.sides: dict[str, Side] = make_sides(
            var_dir,
            database_url=database_url,
            vn_port=self.ports["vn"],
            cn_port=self.ports["cn"],
            vn_witness_port=self.ports["vn-witness"],
            cn_witness_port=self.ports["cn-witness"],
        )
        self.out = var_dir.parent / "run-pair.out"
        args = [str(SCRIPT), "--var-dir", str(var_dir), "--database-url", database_url, "--timeout", "120"]
        args += ["--vn-port", str(self.ports["vn"]), "--cn-port", str(self.ports["cn"])]
        args += ["--vn-witness-port", str(self.ports["vn-witness"])]
        args += ["--cn-witness-port", str(self.ports["cn-witness"])]
        env = {**os.environ, "SMARTGATE_ENVIRONMENT": "development", "SMARTGATE_RATE_LIMIT_PER_MINUTE": "0"}
        with self.out.open("wb") as out:
            self.proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def output(self) -> str:
        return self.out.read_text(errors="replace")

    def wait_started(self, timeout: float = 300) -> None:
        def started() -> bool:
            if self.proc.poll() is not None:
                pytest.fail(f"run-pair exited with {self.proc.returncode}: {self.output()[-3000:]}")
            return "Ctrl-C stops both sides" in self.output()

        until(started, timeout=timeout, message="run-pair did not print its usage")

    def children(self) -> dict[str, int]:
        path = self.var_dir / "logs" / "pids"
        if not path.exists():
            return {}
        return {name: int(pid) for name, pid in (line.split() for line in path.read_text().splitlines())}

    def interrupt(self) -> int:
        """Ctrl-C: the exit code (bounded wait)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(timeout=60)

    def kill_everything(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        for pid in self.children().values():
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (ended, not yet reaped by the stopped parent) counts as stopped.
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(") ")[-1].split()[0] != "Z"


def _file_a_declaration(side: Side) -> str:
    """A draft declaration by the side's demo trader: one ledger entry (the pair files nothing by itself)."""
    trader = {"Authorization": f"Bearer {side.demo_keys()['trader']}"}
    body = copy.deepcopy(EXAMPLE)
    resp = httpx.post(
        f"{side.url}/api/v1/declarations", json=body, headers={**trader, "Idempotency-Key": uuid.uuid4().hex}
    )
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


def _cosigned_by(side: Side, witness: Side) -> str | None:
    """The side's checkpoint if the witness's cosignature line is on it."""
    note = httpx.get(f"{side.url}/api/v1/ledger/checkpoint", timeout=5).text
    if not note.startswith(side.administration.ledger_origin + "\n"):
        return None
    return note if f"\n— {witness.administration.witness_name} " in note else None


def _verify_bundle(side: Side, subject: str, path: Path, *witnesses: Side) -> subprocess.CompletedProcess[str]:
    trader = {"Authorization": f"Bearer {side.demo_keys()['trader']}"}
    resp = httpx.get(f"{side.url}/api/v1/ledger/subjects/{subject}/bundle", headers=trader, timeout=10)
    assert resp.status_code == 200, resp.text
    path.write_bytes(resp.content)
    args = [SMARTGATE, "ledger", "verify-bundle", str(path), "--key", side.ledger_vkey()]
    for witness in witnesses:
        args += ["--witness", witness.witness_vkey()]
    return subprocess.run([*args, "--quorum", "1"], capture_output=True, text=True, timeout=60)


def test_both_sides_run_and_witness_each_other(pair_database: str, tmp_path: Path) -> None:
    script = Script(tmp_path / "pair", pair_database)
    try:
        script.wait_started()
        vn, cn = script.sides["vn"], script.sides["cn"]
        out = script.output()
        for side in (vn, cn):  # how to use each side
            assert side.url in out
            assert side.ledger_vkey() in out
            assert side.demo_keys()["officer"] in out
        assert f"--witness '{cn.witness_vkey()}'" in out

        # Each side is its own administration, on its own database.
        for side in (vn, cn):
            assert httpx.get(f"{side.url}/readyz", timeout=5).status_code == 200
        assert vn.ledger_vkey() != cn.ledger_vkey()
        assert vn.witness_vkey() != cn.witness_vkey()
        assert vn.demo_keys()["trader"] != cn.demo_keys()["trader"]
        if pair_database:
            assert {make_url(s.database_url).database for s in (vn, cn)} == {
                f"{make_url(pair_database).database}_vn",
                f"{make_url(pair_database).database}_cn",
            }
        else:
            assert (vn.var_dir / "smartgate.db").exists()
            assert (cn.var_dir / "smartgate.db").exists()

        subjects = {side.key: _file_a_declaration(side) for side in (vn, cn)}
        until(lambda: _cosigned_by(vn, cn), timeout=60, message="no VN checkpoint cosigned by the CN witness")
        until(lambda: _cosigned_by(cn, vn), timeout=60, message="no CN checkpoint cosigned by the VN witness")

        # A consignment's bundle from one side verifies offline with the other side's witness key...
        for side, other in ((vn, cn), (cn, vn)):
            bundle = tmp_path / f"bundle-{side.key}.json"

            def verified(side: Side = side, other: Side = other, bundle: Path = bundle) -> str | None:
                done = _verify_bundle(side, subjects[side.key], bundle, other)
                return done.stdout if done.returncode == 0 else None

            stdout = until(verified, timeout=60, message=f"{side.key} bundle not verified with the partner witness")
            assert f"cosigned:   {other.witness_vkey()}" in stdout
            assert side.administration.ledger_origin in stdout
            # ...and not with a witness that did not cosign it (the side's own, which witnesses the other log).
            refused = _verify_bundle(side, subjects[side.key], bundle, side)
            assert refused.returncode != 0
            assert "not witnessed" in (refused.stdout + refused.stderr)

        children = script.children()
        assert set(children) == {"vn-witness", "cn-witness", "vn-server", "cn-server"}
        assert script.interrupt() == 0
        assert not [name for name, pid in children.items() if _alive(pid)]
        for port in script.ports.values():
            with pytest.raises(httpx.ConnectError):
                httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
    finally:
        script.kill_everything()
