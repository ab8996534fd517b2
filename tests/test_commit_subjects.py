"""Commit subjects of at most 72 characters, the reasoning in the body (issue 18): checked on every commit since the
rule was enforced (five merge subjects before it are longer and stay: rewriting published history costs more)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ENFORCED_AFTER = "0a850e1b73481108675f230591503771b4be316b"
LIMIT = 72


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=True).stdout


def test_commit_subjects_are_at_most_72_characters() -> None:
    try:
        _git("cat-file", "-e", f"{ENFORCED_AFTER}^{{commit}}")
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git clone with full history (an archive, or a shallow clone)")
    subjects = _git("log", "--format=%h %s", f"{ENFORCED_AFTER}..HEAD").splitlines()
    long = [line for line in subjects if len(line.split(" ", 1)[1]) > LIMIT]
    assert not long, f"subjects over {LIMIT} characters (put the rest in the body): {long}"
