"""Give freed heap memory back to the operating system after a large decode or read (glibc only)."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Callable

__all__ = ["trim"]


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's malloc_trim, or None on other C libraries (musl, macOS), where trimming is a no-op."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        fn = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_size_t]
    fn.restype = ctypes.c_int
    return fn


def trim() -> bool:
    """Return free heap pages of every malloc arena to the OS; True if glibc did so.

    A decode and a read allocate tens of megabytes in the worker thread's own arena; glibc keeps freed arena memory
    for reuse, so without this the process keeps its peak size after one large image (measured: 2.8 GB kept).
    """
    fn = _malloc_trim()
    return bool(fn(0)) if fn is not None else False
