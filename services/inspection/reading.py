"""OCR off the event loop: one shared GateReader, fair per-lane workers, pixel caps and a per-event deadline."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ocr import memory
from ocr.images import (
    DEFAULT_MAX_PIXELS,
    DEFAULT_READ_MAX_SIDE,
    ImageError,
    ImageTooLarge,
    load_image,
    probe,
    sniff_format,
)
from ocr.reader import DeadlineExceeded, GateRead
from services.inspection.scheduling import FairPool, Job
from services.kernel.errors import AppError, PayloadTooLarge, Unprocessable

if TYPE_CHECKING:
    from ocr.reader import GateReader

logger = logging.getLogger("smartgate.inspection.ocr")

# Defaults of InspectionSettings (services/inspection/settings.py documents each).
DEFAULT_WORKERS = 2
DEFAULT_MAX_PENDING = 24
DEFAULT_MAX_PENDING_PER_LANE = 12
DEFAULT_MAX_EVENT_PIXELS = 72_000_000
DEFAULT_DEADLINE_SECONDS = 10.0
# The warm-up's queue: not a lane name (lanes start with a letter or digit).
_WARM_UP = ""

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

    def read_array(self, bgr: Any, *, deadline: float | None = None) -> GateRead:
        """Read one decoded image; past `deadline` (time.monotonic) it may raise `DeadlineExceeded`."""


class Busy(AppError):
    """Too many images already waiting for OCR."""

    status, title, type_slug = 503, "Service busy", "busy"


@dataclass(frozen=True, slots=True)
class ImageRead:
    """One image's result: the read (empty when it failed), the seconds from decode to result, and whether it
    was read (`status` "read") or not ("failed", with `reason` "deadline" or "error")."""

    filename: str
    read: GateRead = field(default_factory=GateRead)
    seconds: float = 0.0
    status: str = "read"
    reason: str | None = None


class OcrPool:
    """Reads a gate event's images on a FairPool keyed by lane, within the event's deadline.

    Before any work is queued, each image's header is checked: the format, the pixels per image and per event
    (413 `image.too_large` / `images.too_large`). Images are then decoded reduced to `read_max_side` and read one
    at a time per lane (see `FairPool`); what is not read when the deadline passes is reported failed.
    """

    def __init__(
        self,
        *,
        workers: int = DEFAULT_WORKERS,
        lane_workers: int = 0,
        max_pending: int = DEFAULT_MAX_PENDING,
        max_pending_per_lane: int = DEFAULT_MAX_PENDING_PER_LANE,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        max_event_pixels: int = DEFAULT_MAX_EVENT_PIXELS,
        read_max_side: int = DEFAULT_READ_MAX_SIDE,
        deadline_seconds: float = DEFAULT_DEADLINE_SECONDS,
        reader: Reader | None = None,
    ) -> None:
        """Configure the pool; threads start on first use and the model loads on first read (or warm_up)."""
        self.workers = workers
        self.max_pending = max_pending
        self.max_pending_per_lane = max_pending_per_lane
        self.max_pixels = max_pixels
        self.max_event_pixels = max_event_pixels
        self.read_max_side = read_max_side
        self.deadline_seconds = deadline_seconds
        self.pool = FairPool(workers=workers, per_lane=lane_workers or max(1, workers - 1), name="gate-ocr")
        self._reader = reader

    @property
    def reader(self) -> Reader:
        """The reader in use (the process-wide GateReader unless one was given)."""
        if self._reader is None:
            self._reader = shared_reader()
        return self._reader

    @reader.setter
    def reader(self, value: Reader) -> None:
        self._reader = value

    def warm_up(self) -> None:
        """Load the models in a worker now, so the first truck does not wait for them."""
        warm = getattr(self.reader, "warm_up", None)
        if warm is not None:
            self.pool.submit(_WARM_UP, lambda: _log_failure(warm))

    def shutdown(self) -> None:
        """Stop the worker threads (queued reads are cancelled; running ones finish)."""
        self.pool.shutdown()

    def check(self, images: list[tuple[str, bytes]]) -> None:
        """Refuse, before any decoding, what the headers show to be unreadable or too large."""
        total = 0
        for i, (name, data) in enumerate(images):
            # The magic bytes first: a PDF never reaches a decoder, let alone a worker.
            if sniff_format(data) is None:
                raise _bad_image(name, "not a JPEG, PNG or WebP image")
            try:
                info = probe(data)
            except ImageTooLarge as exc:
                raise _too_large(i, name, str(exc)) from None
            except ImageError as exc:
                raise _bad_image(name, str(exc)) from None
            if info.pixels > self.max_pixels:
                raise _too_large(
                    i, name, f"{info.width}x{info.height} pixels, over the limit of {self.max_pixels} per image"
                )
            total += info.pixels
        if total > self.max_event_pixels:
            raise PayloadTooLarge(
                f"the images have {total} pixels together, over the limit of {self.max_event_pixels} per gate event",
                code="images.too_large",
                errors=[{"pointer": "/image", "in": "body", "code": "images.too_large", "detail": "pixels"}],
            )

    async def read_all(self, images: list[tuple[str, bytes]], *, lane: str = "-") -> list[ImageRead]:
        """Read every image of one gate event on `lane`; an undecodable one is a 422 that names the file, and
        an image not read within the event's deadline comes back with status "failed", reason "deadline"."""
        # Off the event loop: a header is cheap to parse, but a crafted one (thousands of PNG chunks before the
        # pixels) is parsed in a Python loop.
        await asyncio.to_thread(self.check, images)
        n = len(images)
        if self.pool.pending() + n > self.max_pending or self.pool.pending(lane) + n > self.max_pending_per_lane:
            raise Busy(f"{self.pool.pending()} images are waiting for OCR; retry shortly", headers={"Retry-After": "1"})
        deadline = time.monotonic() + self.deadline_seconds
        reader = self.reader
        jobs = [self.pool.submit(lane, _job(self, reader, name, data, deadline)) for name, data in images]
        waiting = {asyncio.wrap_future(j.future): j for j in jobs}
        pending = set(waiting)
        try:
            while pending and (left := deadline - time.monotonic()) > 0:
                done, pending = await asyncio.wait(pending, timeout=left, return_when=asyncio.FIRST_EXCEPTION)
                if any(not f.cancelled() and isinstance(f.exception(), ImageError) for f in done):
                    break
        finally:
            # Past the deadline (or after a bad image, or if the client went away): queued images are dropped;
            # a running one stops at its next stage (the reader checks the deadline) and its result is ignored.
            for fut in pending:
                self.pool.cancel(waiting[fut])
                fut.cancel()
        return [_outcome(name, job) for (name, _), job in zip(images, jobs, strict=True)]

    def read_one(self, reader: Reader, name: str, data: bytes, deadline: float) -> ImageRead:
        """Decode (reduced) and read one image (runs in a worker thread), then give the memory back."""
        start = time.perf_counter()
        if time.monotonic() >= deadline:
            raise DeadlineExceeded("deadline passed before the image's turn")
        try:
            bgr = load_image(data, max_bytes=len(data) + 1, max_pixels=self.max_pixels, max_side=self.read_max_side)
            read = reader.read_array(bgr, deadline=deadline)
            del bgr
        finally:
            memory.trim()
        return ImageRead(name, read, time.perf_counter() - start)


def _job(pool: OcrPool, reader: Reader, name: str, data: bytes, deadline: float) -> Any:
    """The callable queued for one image."""
    return lambda: pool.read_one(reader, name, data, deadline)


def _outcome(name: str, job: Job) -> ImageRead:
    """The ImageRead of a finished, failed or abandoned job; a decoding error becomes the request's 422."""
    fut = job.future
    if fut.cancelled() or not fut.done():
        return ImageRead(name, status="failed", reason="deadline")
    exc = fut.exception()
    if exc is None:
        result: ImageRead = fut.result()
        return result
    if isinstance(exc, ImageError):
        raise _bad_image(name, str(exc))
    if isinstance(exc, DeadlineExceeded):
        return ImageRead(name, status="failed", reason="deadline")
    # A reader crash is not the truck's fault: the event is kept (held for an officer), the error logged.
    logger.error("OCR failed on %s", name, exc_info=exc)
    return ImageRead(name, status="failed", reason="error")


def _bad_image(name: str, message: str) -> Unprocessable:
    """The 422 for an image that cannot be read, naming the file."""
    return Unprocessable(
        f"{name}: {message}",
        code="image.invalid",
        errors=[{"pointer": "/image", "in": "body", "code": "image.invalid", "detail": f"{name}: {message}"}],
    )


def _too_large(index: int, name: str, message: str) -> PayloadTooLarge:
    """The 413 for an image over the pixel limit, naming the file."""
    return PayloadTooLarge(
        f"{name}: {message}",
        code="image.too_large",
        errors=[
            {"pointer": f"/image/{index}", "in": "body", "code": "image.too_large", "detail": f"{name}: {message}"}
        ],
    )


def _log_failure(fn: Any) -> None:
    try:
        fn()
    except Exception:
        logger.exception("OCR warm-up failed; the first read will try again")
