"""OCR off the event loop: one shared GateReader per process, run in a small bounded thread pool."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from ocr.images import DEFAULT_MAX_PIXELS, ImageError, load_image, sniff_format
from services.kernel.errors import AppError, Unprocessable

if TYPE_CHECKING:
    from ocr.reader import GateRead, GateReader

logger = logging.getLogger("smartgate.inspection.ocr")

# One inference per core; two workers on the reference two-core gate PC, each onnxruntime session single-threaded.
DEFAULT_WORKERS = 2
# Images waiting or being read across all requests: beyond this the gate gets 503 and retries, rather than
# every request queueing behind a backlog it cannot see.
DEFAULT_MAX_PENDING = 24

_shared: GateReader | None = None
_shared_lock = threading.Lock()


def shared_reader() -> GateReader:
    """The process-wide reader (its ONNX sessions are built once and are thread-safe)."""
    global _shared
    if _shared is None:
        with _shared_lock:
            if _shared is None:
                from ocr.reader import GateReader

                _shared = GateReader(intra_op_threads=1)
    return _shared


class Reader(Protocol):
    """What the pool needs of a reader (GateReader, or a stand-in in tests)."""

    def read_array(self, bgr: Any) -> GateRead:
        """Read one decoded image."""


class Busy(AppError):
    """Too many images already waiting for OCR."""

    status, title, type_slug = 503, "Service busy", "busy"


@dataclass(frozen=True, slots=True)
class ImageRead:
    """One image's result: the read and the wall-clock seconds from decode to result."""

    filename: str
    read: GateRead
    seconds: float


class OcrPool:
    """Runs reads in a bounded ThreadPoolExecutor so a slow image never blocks the event loop."""

    def __init__(
        self,
        *,
        workers: int = DEFAULT_WORKERS,
        max_pending: int = DEFAULT_MAX_PENDING,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        reader: Reader | None = None,
    ) -> None:
        """Configure the pool; threads start on first use and the model loads on first read (or warm_up)."""
        self.workers = workers
        self.max_pending = max_pending
        self.max_pixels = max_pixels
        self._reader = reader
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._pending = 0

    @property
    def reader(self) -> Reader:
        """The reader in use (the process-wide GateReader unless one was given)."""
        if self._reader is None:
            self._reader = shared_reader()
        return self._reader

    @reader.setter
    def reader(self, value: Reader) -> None:
        self._reader = value

    def executor(self) -> ThreadPoolExecutor:
        """The worker threads (created on first use, again after shutdown)."""
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="gate-ocr")
            return self._executor

    def warm_up(self) -> None:
        """Load the models in a worker now, so the first truck does not wait for them."""
        reader = self.reader
        warm = getattr(reader, "warm_up", None)
        if warm is not None:
            self.executor().submit(_log_failure, warm)

    def shutdown(self) -> None:
        """Stop the worker threads (queued reads are cancelled; running ones finish)."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)

    async def read_all(self, images: list[tuple[str, bytes]]) -> list[ImageRead]:
        """Read every image concurrently in the pool; an undecodable one is a 422 that names the file."""
        for name, data in images:
            # The magic bytes are checked here, before any work is queued: a PDF never costs a worker.
            if sniff_format(data) is None:
                raise _bad_image(name, "not a JPEG, PNG or WebP image")
        with self._lock:
            if self._pending + len(images) > self.max_pending:
                raise Busy(f"{self._pending} images are waiting for OCR; retry shortly", headers={"Retry-After": "1"})
            self._pending += len(images)
        try:
            loop = asyncio.get_running_loop()
            executor = self.executor()
            reader = self.reader
            jobs = [loop.run_in_executor(executor, self._read_one, reader, name, data) for name, data in images]
            results = await asyncio.gather(*jobs, return_exceptions=True)
        finally:
            with self._lock:
                self._pending -= len(images)
        out: list[ImageRead] = []
        for (name, _), result in zip(images, results, strict=True):
            if isinstance(result, ImageError):
                raise _bad_image(name, str(result))
            if isinstance(result, BaseException):
                raise result
            out.append(result)
        return out

    def _read_one(self, reader: Reader, name: str, data: bytes) -> ImageRead:
        """Decode and read one image (runs in a worker thread)."""
        start = time.perf_counter()
        bgr = load_image(data, max_bytes=len(data) + 1, max_pixels=self.max_pixels)
        read = reader.read_array(bgr)
        return ImageRead(name, read, time.perf_counter() - start)


def _bad_image(name: str, message: str) -> Unprocessable:
    """The 422 for an image that cannot be read, naming the file."""
    return Unprocessable(
        f"{name}: {message}",
        errors=[{"pointer": "/image", "in": "body", "code": "image.invalid", "detail": f"{name}: {message}"}],
    )


def _log_failure(fn: Any) -> None:
    try:
        fn()
    except Exception:
        logger.exception("OCR warm-up failed; the first read will try again")
