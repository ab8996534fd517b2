"""Content-addressed files on local disk (documents, gate images): written atomically, and a disk that cannot take
them is an outage answered 503 (507 when full), never a 500 or half a file."""

from __future__ import annotations

import errno
import logging
import os
import tempfile
from pathlib import Path

from services.kernel.errors import AppError, InsufficientStorage, ServiceUnavailable

logger = logging.getLogger("smartgate.storage")

FULL = frozenset({errno.ENOSPC, errno.EDQUOT})
RETRY_AFTER_SECONDS = "60"


def storage_error(exc: OSError, what: str) -> AppError:
    """The problem to answer for a failed write of `what`: 507 for a full disk or quota, 503 for anything else
    (a directory that is not writable, not a directory, gone...). The path stays in the log, not in the answer."""
    logger.error("cannot store %s: %s", what, exc)
    if exc.errno in FULL:
        return InsufficientStorage(f"the {what} storage is full; try again later", code="storage.full",
                                   headers={"Retry-After": RETRY_AFTER_SECONDS})  # fmt: skip
    return ServiceUnavailable(f"the {what} storage cannot be written; try again later", code="storage.unavailable",
                              headers={"Retry-After": RETRY_AFTER_SECONDS})  # fmt: skip


def write_once(target: Path, data: bytes, *, what: str) -> None:
    """Write `data` at `target` unless it is there: beside it first, flushed, then renamed, so a reader never sees
    half a file and two writers of the same bytes both end with the whole file. Nothing is left on failure."""
    if target.exists():
        return
    tmp: str | None = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name[:8]}-", suffix=".part")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
        tmp = None
    except OSError as exc:
        raise storage_error(exc, what) from exc
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
