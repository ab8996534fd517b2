"""Helpers shared by tests across areas."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path


def wait_for(condition: Callable[[], bool], deadline_s: float = 60.0, *, interval: float = 0.05) -> bool:
    """Poll a condition of background work until it holds (the deadline only bounds a hang; it decides no outcome)."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(interval)
    return condition()


def make_unwritable(directory: Path) -> None:
    """Make `directory` a place no file can be written under: read-only (0500) for an ordinary user; for root, who
    ignores permissions, a regular file where the directory should be."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        directory.write_bytes(b"not a directory")
    else:
        directory.mkdir(exist_ok=True)
        directory.chmod(0o500)


def leftovers(root: Path) -> list[Path]:
    """Partial files (`*.part`) anywhere under `root`."""
    return sorted(root.rglob("*.part")) if root.is_dir() else []
