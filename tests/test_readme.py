"""The README's walk-through, pasted: its marked shell blocks run with bash against a real server, twice.

`make run` is reproduced (migrate, `smartgate demo seed`, `smartgate serve` in the development environment) on a
fresh database of each backend; the blocks marked `<!-- walkthrough -->` run as one bash script (errexit, nounset,
pipefail) in a working directory that is not the repository (it holds only what they read: `docs/`, `.venv` and
`var/demo.env`), with `API` pointing at the server and `TMPDIR` at a folder of the test. The second run on the same
database must print what the README promises again (new declaration, new idempotency keys, new camera times), and
neither run may leave a file in the repository or in the working directory.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import _free_port
from tests.processes import SMARTGATE, Processes, require, server_env, wait_ready

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
BLOCK = re.compile(r"^<!-- walkthrough -->\n```sh\n(.*?)^```$", re.MULTILINE | re.DOTALL)

# What the README promises the walk-through prints, each run (compact JSON as its jq -c lines print it). Each is
# also checked to be in the README itself (spaces aside), so that the text and the test cannot drift apart.
PROMISED = [
    '"duties_due_vnd": 89001600',
    '"awaiting_documents"',
    '{"decision":"proceed","reasons":[],"match":"exact","code":{"code":"CSQU3054383","status":"verified"}}',
    '{"decision":"hold","reasons":["declaration_not_cleared"]}',
    '{"decision":"proceed","reasons":[]}',
    '"cleared"',
    '"cancelled"',
]
# Printed too (the README says them in words or in comments).
EXPECTED = [
    '"status": "submitted"',
    '"status":"claimed","declaration_status":"cleared"',
    '{"status":"confirmed","declaration_status":"released","paid_vnd":89001600,"duties_due_vnd":89001600}',
    '{"status":"draft","version":2}',
    '{"pointer":"/containers/0/number","code":"iso6346.check_digit"}',
    '{"pointer":"/consignee/tax_id","code":"vn_mst.check_digit"}',
    '{"pointer":"/colour","code":"unknown_field"}',
    "\n404\n",
]
HISTORY_END = "exit  released → exited  by gate:KT-OUT-1"
TIMEOUT = 120  # one run takes ~10 s; the waits in the blocks give up after 30 s each


def _squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


def walkthrough_blocks() -> list[str]:
    return BLOCK.findall(README.read_text(encoding="utf-8"))


def test_the_walkthrough_blocks_are_marked_and_promise_what_is_checked() -> None:
    blocks = walkthrough_blocks()
    assert len(blocks) >= 4, "the walk-through's blocks are marked <!-- walkthrough --> before their ```sh fence"
    script = "\n".join(blocks)
    for fixed in ("/tmp/", "> bundle.json", "-o bundle.json", "Idempotency-Key: walkthrough-1"):
        assert fixed not in script, f"a fixed name in the walk-through: {fixed!r} (use $WORK and $RUN)"
    readme = _squeeze(README.read_text(encoding="utf-8"))
    for promise in PROMISED:
        assert _squeeze(promise) in readme, f"the README no longer promises {promise}"
    assert _squeeze(HISTORY_END) in readme


def _git_status() -> str:
    return subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout


@pytest.mark.slow
@pytest.mark.xdist_group("readme")
def test_the_walkthrough_runs_twice_as_pasted(database_url: str, tmp_path: Path) -> None:
    missing = [tool for tool in ("bash", "curl", "jq") if shutil.which(tool) is None]
    require(f"the README's walk-through needs {', '.join(missing)}" if missing else None)
    has_git = shutil.which("git") is not None and (REPO / ".git").exists()
    before = _git_status() if has_git else ""

    # `make run`: migrate (the fixture's database is migrated), seed the demo keys, serve, in development.
    var = tmp_path / "var"
    env = server_env(database_url, var, SMARTGATE_ENVIRONMENT="development")
    seeded = subprocess.run([SMARTGATE, "demo", "seed"], env=env, capture_output=True, text=True, timeout=120)
    assert seeded.returncode == 0, seeded.stdout + seeded.stderr
    port = _free_port()
    api = f"http://127.0.0.1:{port}"
    processes = Processes(tmp_path / "logs")
    try:
        processes.start("serve", [SMARTGATE, "serve", "--host", "127.0.0.1", "--port", str(port)], env)
        wait_ready(api, processes)

        # A working directory with what the blocks read at a repository root, and nothing else.
        work = tmp_path / "work"
        (work / "var").mkdir(parents=True)
        (work / "docs").symlink_to(REPO / "docs")
        (work / ".venv").symlink_to(Path(SMARTGATE).parent.parent)
        shutil.copyfile(var / "demo.env", work / "var" / "demo.env")
        tmpdir = tmp_path / "tmp"
        tmpdir.mkdir()
        script = tmp_path / "walkthrough.sh"
        script.write_text("\n".join(walkthrough_blocks()), encoding="utf-8")
        shell_env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(tmp_path),
            "TMPDIR": str(tmpdir),
            "LC_ALL": "C.UTF-8",
            "API": api,
        }

        outputs = []
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
            assert done.returncode == 0, f"run {run} exited {done.returncode}:\n{out[-3000:]}\n{done.stderr[-3000:]}"
            for expected in PROMISED + EXPECTED:
                assert expected in out, f"run {run} did not print {expected!r}:\n{out[-4000:]}"
            history = [line for line in out.splitlines() if "  by " in line]
            assert history, f"run {run} printed no history:\n{out}"
            assert history[-1].endswith(HISTORY_END), f"run {run}: the history ends {history[-1]!r}"
            ids = re.findall(r"^OK: subject '([0-9a-f-]{36})': 15 entries", out, re.MULTILINE)
            assert len(ids) == 1, f"run {run}: verify-bundle did not verify the declaration's 15 entries:\n{out}"
            outputs.append((ids[0], re.findall(r'"number": "(KT-\d{4}-\d{6})"', out)[0]))
            left = sorted(os.listdir(work)) + sorted(os.listdir(work / "var"))
            assert left == [".venv", "docs", "var", "demo.env"], f"run {run} left files in its working directory"
            assert len(list(tmpdir.glob("smartgate-walkthrough.*"))) == run, "one folder of its own per run"
        (first, number_1), (second, number_2) = outputs
        assert first != second, "the second run filed a new declaration"
        assert number_1 != number_2, "the second run's declaration got a number of its own"
    finally:
        processes.stop_all()
    if has_git:
        assert _git_status() == before, "the walk-through left files in the repository"
