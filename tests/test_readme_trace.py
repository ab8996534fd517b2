"""The README's lychee pallet walk-through (issue 15), pasted: its blocks marked `<!-- trace-walkthrough -->` run with
bash against a real server (`make run` reproduced: migrate, `smartgate demo seed`, `smartgate serve`), twice on one
database of each backend, in a working directory that is not the repository, each run in a folder of its own.
Each run must print the pallet's trace with the declaration number and the gate exit verified."""

from __future__ import annotations

import json
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
BLOCK = re.compile(r"^<!-- trace-walkthrough -->\n```sh\n(.*?)^```$", re.MULTILINE | re.DOTALL)
# Printed each run (compact JSON as the jq -c lines print it); also said in the README, so they cannot drift apart.
PROMISED = ['"trace_failures":[]', '"status":"released"', '"events":{"verified":7}']
TIMEOUT = 300  # one run takes ~20 s; every wait in the blocks gives up after 60 s


def _squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


def blocks() -> list[str]:
    return BLOCK.findall(README.read_text(encoding="utf-8"))


def test_the_trace_walkthrough_is_marked_and_promises_what_is_checked() -> None:
    found = blocks()
    assert len(found) == 3, "the lychee walk-through's blocks are marked <!-- trace-walkthrough -->"
    script = "\n".join(found)
    assert "/tmp/" not in script.replace("${TMPDIR:-/tmp}", ""), "a fixed path in the walk-through (use $WORK)"
    readme = _squeeze(README.read_text(encoding="utf-8"))
    for promise in PROMISED:
        assert _squeeze(promise) in readme, f"the README no longer promises {promise}"


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
def test_the_lychee_walkthrough_runs_twice_as_pasted(database_url: str, tmp_path: Path) -> None:
    missing = [tool for tool in ("bash", "curl", "jq") if shutil.which(tool) is None]
    require(f"the README's walk-through needs {', '.join(missing)}" if missing else None)
    has_git = shutil.which("git") is not None and (REPO / ".git").exists()
    before = _git_status() if has_git else ""

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
        work = tmp_path / "work"
        (work / "var").mkdir(parents=True)
        (work / "docs").symlink_to(REPO / "docs")
        shutil.copyfile(var / "demo.env", work / "var" / "demo.env")
        tmpdir = tmp_path / "tmp"
        tmpdir.mkdir()
        script = tmp_path / "trace-walkthrough.sh"
        script.write_text("\n".join(blocks()), encoding="utf-8")
        shell_env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(tmp_path),
            "TMPDIR": str(tmpdir),
            "LC_ALL": "C.UTF-8",
            "API": api,
        }
        numbers, pallets = [], []
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
            (tmp_path / f"run{run}.out").write_text(out + done.stderr, encoding="utf-8")  # kept for a failure's reader
            assert done.returncode == 0, f"run {run} exited {done.returncode}:\n{out[-3000:]}\n{done.stderr[-3000:]}"
            for expected in PROMISED:
                assert _squeeze(expected) in _squeeze(out), f"run {run} did not print {expected!r}:\n{out[-4000:]}"
            folders = sorted(tmpdir.glob("smartgate-trace.*"))
            assert len(folders) == run, "one folder of its own per run"
            trace = json.loads((max(folders, key=lambda f: f.stat().st_mtime) / "trace.json").read_text())
            number = re.findall(r"^declaration (\S+): on the page$", out, re.MULTILINE)
            assert len(number) == 1, f"run {run}: the declaration number is not on the pallet's page:\n{out[-3000:]}"
            assert [d["number"] for d in trace["declarations"]] == number
            assert len(trace["gate_exits"]) == 1
            assert trace["verified"]
            assert {e["verification"]["status"] for e in trace["events"]} == {"verified"}
            # What a buyer must never see of the declaration: its value, its trader, its truck and container.
            public = json.dumps(trace, ensure_ascii=False)
            for secret in ("95000000", "0100233488", "Thuong mai Lao Cai", "24C-123.45", "CSQU3054383"):
                assert secret not in public, secret
            verified_facts = int(out.strip().splitlines()[-1])
            assert verified_facts >= 7, f"run {run}: the page marks {verified_facts} facts verified"
            numbers.append(number[0])
            pallets.append(trace["id"])
            assert sorted(os.listdir(work)) == ["docs", "var"], f"run {run} left files in its working directory"
            assert os.listdir(work / "var") == ["demo.env"], f"run {run} left files in its working directory"
        assert numbers[0] != numbers[1], "the second run filed a declaration of its own"
        assert pallets[0] != pallets[1], "the second run traced a pallet of its own"
    finally:
        processes.stop_all()
    if has_git:
        assert _git_status() == before, "the walk-through left files in the repository"
