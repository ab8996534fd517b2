"""The README's walk-through of both sides of the border, pasted: its blocks marked `<!-- pair-walkthrough -->` run
with bash against a real pair (api/pair.py, what `make run-pair` starts), twice, on SQLite and on PostgreSQL.

The pair is prepared and started as `make run-pair` does (keys, databases, migrations, demo keys, partners, each
side witnessing the other's log) on free ports; the blocks run as one bash script (errexit, nounset, pipefail) in a
working directory that is not the repository (it holds only what they read: `docs/`, `.venv` and the sides'
`var/pair/<side>/demo-keys.json`), with `VN`, `CN`, `VN_WITNESS` and `CN_WITNESS` pointing at the pair and `TMPDIR`
at a folder of the test. Each run must print what the README promises (a new export, import and Form E each time),
and neither may leave a file in the repository or in the working directory.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from api.pair import make_sides, running_pair, side_databases
from tests.conftest import BACKENDS, _admin_engine, _free_port, pg_server_url
from tests.processes import SMARTGATE, require

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
BLOCK = re.compile(r"^<!-- pair-walkthrough -->\n```sh\n(.*?)^```$", re.MULTILINE | re.DOTALL)

# What the README promises the walk-through prints, each run (compact JSON as its jq -c lines print it); each is
# also checked to be in the README's text (spaces aside), so that the text and the test cannot drift apart.
PROMISED = [
    '"direction":"received","partner":"vn-kimthanh"',
    '"state":"accepted","receiptStatus":"accepted"',
    '"origin_check":"verified"',
    '"duty":["ACFTA"]',
    '{"code":"gross_mass","ours":"14300","theirs":"13000"}',
    '{"code":"mirror_discrepancy","ours":"13000","theirs":"14300"}',
    '{"decision":"proceed","reasons":[]}',
    '"closed":true',
    "witnessed:  1 of 1 witnesses (quorum 1)",
]
TIMEOUT = 240  # one run takes ~15 s; each wait in the blocks gives up after 30 s


def _squeeze(value: str) -> str:
    return re.sub(r"\s+", "", value)


def pair_blocks() -> list[str]:
    return BLOCK.findall(README.read_text(encoding="utf-8"))


def test_the_pair_walkthrough_is_marked_and_promises_what_is_checked() -> None:
    blocks = pair_blocks()
    assert len(blocks) >= 4, "the pair walk-through's blocks are marked <!-- pair-walkthrough --> before their ```sh"
    script = "\n".join(blocks)
    for fixed in ("/tmp/", "> bundle.json", "-o bundle.json"):
        assert fixed not in script, f"a fixed name in the pair walk-through: {fixed!r} (use $WORK and $RUN)"
    readme = _squeeze(README.read_text(encoding="utf-8"))
    for promise in PROMISED:
        assert _squeeze(promise) in readme, f"the README no longer promises {promise}"


@pytest.fixture(params=BACKENDS)
def pair_database(request: pytest.FixtureRequest) -> Iterator[str]:
    """'' for SQLite; for PostgreSQL a server URL naming a fresh base name, whose _vn and _cn databases the pair
    creates and this fixture drops (as tests/api/test_pair.py)."""
    if request.param == "sqlite":
        yield ""
        return
    pg = pg_server_url()
    require(None if pg else "PostgreSQL: set SMARTGATE_TEST_DATABASE_URL (.ci/run does)")
    assert pg is not None
    url = make_url(pg).set(database=f"sg_rpair_{uuid.uuid4().hex[:8]}").render_as_string(hide_password=False)
    yield url
    admin = _admin_engine(pg)
    with admin.connect() as conn:
        for side_url in side_databases(url).values():
            conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(side_url).database}" WITH (FORCE)'))
    admin.dispose()


def _git_status() -> str:
    done = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout


@pytest.mark.slow
@pytest.mark.xdist_group("readme")
def test_the_pair_walkthrough_runs_twice_as_pasted(pair_database: str, tmp_path: Path) -> None:
    missing = [tool for tool in ("bash", "curl", "jq") if shutil.which(tool) is None]
    require(f"the README's pair walk-through needs {', '.join(missing)}" if missing else None)
    has_git = shutil.which("git") is not None and (REPO / ".git").exists()
    before = _git_status() if has_git else ""

    sides = make_sides(
        tmp_path / "pair",
        database_url=pair_database,
        vn_port=_free_port(),
        cn_port=_free_port(),
        vn_witness_port=_free_port(),
        cn_witness_port=_free_port(),
    )
    for side in sides.values():
        side.environment = {"SMARTGATE_ENVIRONMENT": "development", "SMARTGATE_RATE_LIMIT_PER_MINUTE": "0"}
    with running_pair(sides, tmp_path / "logs") as pair:
        vn, cn = pair.sides["vn"], pair.sides["cn"]
        # A working directory with what the blocks read at a repository root, and nothing else.
        work = tmp_path / "work"
        for side in (vn, cn):
            (work / "var" / "pair" / side.key).mkdir(parents=True)
            shutil.copyfile(side.var_dir / "demo-keys.json", work / "var" / "pair" / side.key / "demo-keys.json")
        (work / "docs").symlink_to(REPO / "docs")
        (work / ".venv").symlink_to(Path(SMARTGATE).parent.parent)
        tmpdir = tmp_path / "tmp"
        tmpdir.mkdir()
        script = tmp_path / "pair-walkthrough.sh"
        script.write_text("\n".join(pair_blocks()), encoding="utf-8")
        shell_env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(tmp_path),
            "TMPDIR": str(tmpdir),
            "LC_ALL": "C.UTF-8",
            "VN": vn.url,
            "CN": cn.url,
            "VN_WITNESS": vn.witness_url,
            "CN_WITNESS": cn.witness_url,
        }
        numbers = []
        for run in (1, 2):
            done = subprocess.run(
                ["bash", "-euo", "pipefail", str(script)],
                cwd=work,
                env=shell_env,
                capture_output=True,
                text=True,
                timeout=TIMEOUT,
            )
            out = done.stdout
            logs = pair.log("vn-server") + pair.log("cn-server")
            assert done.returncode == 0, (
                f"run {run} exited {done.returncode}:\n{out[-3000:]}\n{done.stderr[-3000:]}\n{logs}"
            )
            for promise in PROMISED:
                assert promise in out, f"run {run} did not print {promise!r}:\n{out[-4000:]}"
            # The pre-arrival notice reached Hekou, acknowledged; the journey closed on both sides, each seeing
            # its own crossing and the partner's.
            assert '{"type":"preArrival","partner":"vn-kimthanh","state":"accepted","receiptStatus":"accepted"}' in out
            for side, crossings in (("vn", '["ours exit KIMTHANH","partner entry HEKOU"]'),
                                    ("cn", '["partner exit KIMTHANH","ours entry HEKOU"]')):  # fmt: skip
                assert f'{{"side":"{side}","closed":true,"crossings":{crossings},"cross_border_seconds":' in out
            # Each side's bundle verified offline against its log key, cosigned by the other side's witness.
            assert f"signed by:  {vn.ledger_vkey()} (pinned with --key)" in out
            assert f"cosigned:   {cn.witness_vkey()}" in out
            assert f"signed by:  {cn.ledger_vkey()} (pinned with --key)" in out
            assert f"cosigned:   {vn.witness_vkey()}" in out
            assert len(re.findall(r"^OK: subject '[0-9a-f-]{36}': \d+ entries", out, re.MULTILINE)) == 2
            export = re.findall(r'"number":"(KT-\d{4}-\d{6})","kind":"export"', out)
            imported = re.findall(
                r'"number":"(HK-\d{4}-\d{6})","kind":"import","status":"submitted","partner_reference":"(KT-\d{4}-\d{6})"',
                out,
            )
            assert len(export) == 1, out
            assert [ref for _, ref in imported] == export, out
            numbers.append(export[0])
            left = sorted(
                str((Path(root) / name).relative_to(work))
                for root, dirs, files in os.walk(work)
                for name in dirs + files
            )
            assert left == [".venv", "docs", "var", "var/pair", "var/pair/cn", "var/pair/cn/demo-keys.json",
                            "var/pair/vn", "var/pair/vn/demo-keys.json"], f"run {run} left files: {left}"  # fmt: skip
            assert len(list(tmpdir.glob("smartgate-pair.*"))) == run, "one folder of its own per run"
        assert numbers[0] != numbers[1], "the second run filed a new export declaration"
    if has_git:
        assert _git_status() == before, "the walk-through left files in the repository"
