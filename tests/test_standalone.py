"""The repository stands alone: no file points outside it, and every relative link in the docs resolves inside it.

A clone has nothing beside it, so a reference to a sibling folder (the workplace's shared notes, say) is a dead end
for every reader and a missing file for every program.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# Built from parts, so that this file does not match itself.
OUTSIDE = re.compile("|".join(re.escape(p) for p in ("../" + "shared", "/work/" + "shared", "/work/" + "main")))
MARKDOWN_LINK = re.compile(r"\]\(([^)\s#]+)(?:#[^)]*)?\)")
TEXT_SUFFIXES = {".py", ".md", ".yaml", ".yml", ".toml", ".cfg", ".ini", ".sh", ".txt", ".html", ".css", ".json", ""}


def _tracked() -> list[Path]:
    """The files a clone gets (git's list; every file under the repository when there is no git)."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True, timeout=30
        ).stdout.decode()
        files = [REPO / name for name in out.split("\0") if name]
    except (OSError, subprocess.SubprocessError):
        skip = {".git", ".venv", "var", "node_modules", ".tools"}
        files = [p for p in REPO.rglob("*") if p.is_file() and not skip & set(p.relative_to(REPO).parts)]
    return [p for p in files if p.is_file() and (p.suffix in TEXT_SUFFIXES or p.name in {"Makefile", "Dockerfile"})]


def test_no_file_points_outside_the_repository() -> None:
    found = []
    for path in _tracked():
        text = path.read_text(encoding="utf-8", errors="replace")
        for number, line in enumerate(text.splitlines(), 1):
            if OUTSIDE.search(line):
                found.append(f"{path.relative_to(REPO)}:{number}: {line.strip()[:120]}")
    assert not found, "references outside the repository:\n" + "\n".join(found)


def test_relative_links_in_docs_resolve_inside_the_repository() -> None:
    broken = []
    for path in _tracked():
        if path.suffix != ".md":
            continue
        for target in MARKDOWN_LINK.findall(path.read_text(encoding="utf-8")):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):
                continue  # https:, mailto: ...
            resolved = (path.parent / target).resolve()
            if not resolved.is_relative_to(REPO):
                broken.append(f"{path.relative_to(REPO)}: {target} (outside the repository)")
            elif not resolved.exists():
                broken.append(f"{path.relative_to(REPO)}: {target} (no such file)")
    assert not broken, "links that do not resolve:\n" + "\n".join(broken)
