"""Content-addressed files: atomic writes, and a disk that cannot take them is 503 (507 when full), not a 500."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from services.kernel.blobs import storage_error, write_once
from services.kernel.errors import InsufficientStorage, ServiceUnavailable
from tests.support import leftovers, make_unwritable


def test_a_full_disk_is_507_and_anything_else_503() -> None:
    for code in (errno.ENOSPC, errno.EDQUOT):
        full = storage_error(OSError(code, "No space left on device"), "document")
        assert isinstance(full, InsufficientStorage)
        assert (full.status, full.extra["code"]) == (507, "storage.full")
    for code in (errno.EACCES, errno.EROFS, errno.ENOTDIR, errno.EIO):
        down = storage_error(OSError(code, "nope"), "document")
        assert isinstance(down, ServiceUnavailable)
        assert (down.status, down.extra["code"]) == (503, "storage.unavailable")


def test_writes_are_whole_once_and_leave_nothing_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "ab" / "abcdef"
    write_once(target, b"first", what="document")
    write_once(target, b"second", what="document")  # content-addressed: already there, kept
    assert target.read_bytes() == b"first"
    blocked = tmp_path / "blocked"
    make_unwritable(blocked)
    with pytest.raises(ServiceUnavailable):
        write_once(blocked / "cd" / "cdef01", b"data", what="document")
    assert leftovers(tmp_path) == []
