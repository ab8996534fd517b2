"""Settings of the inspection service: the gate's OCR workers, image limits and deadline (`SMARTGATE_OCR_*`)."""

from __future__ import annotations

from pydantic import Field

from ocr.images import DEFAULT_MAX_PIXELS, DEFAULT_READ_MAX_SIDE
from services.kernel.settings import KernelSettings


class InspectionSettings(KernelSettings):
    """Kernel settings plus the gate OCR's."""

    # One OCR worker per core (each onnxruntime session single-threaded; onnxruntime, Pillow and OpenCV release
    # the GIL, so threads use the cores). The reference gate PC has 2.
    ocr_workers: int = Field(default=2, ge=1, le=64)
    # Workers one lane may hold at once; 0 means workers - 1 (at least 1), which keeps a worker free for the other
    # lanes whatever one lane has queued.
    ocr_lane_workers: int = Field(default=0, ge=0, le=64)
    # Pixels per image (from the header, before decoding) and per gate event; over either → 413.
    ocr_max_image_pixels: int = Field(default=DEFAULT_MAX_PIXELS, ge=1)
    ocr_max_event_pixels: int = Field(default=72_000_000, ge=1)
    # Larger images are reduced to this longer side while decoding: OCR's cost and memory stay bounded.
    ocr_read_max_side: int = Field(default=DEFAULT_READ_MAX_SIDE, ge=320, le=10_000)
    # From the upload received to the answer: images not read by then are reported failed, reason `deadline`.
    ocr_event_deadline_seconds: float = Field(default=10.0, gt=0, le=600)
    # Images queued or being read, in all and per lane; beyond either the camera gets 503 and retries.
    ocr_max_pending: int = Field(default=24, ge=1)
    ocr_max_pending_per_lane: int = Field(default=12, ge=1)

    @property
    def ocr_lane_limit(self) -> int:
        """Workers one lane may hold (resolving 0)."""
        return self.ocr_lane_workers or max(1, self.ocr_workers - 1)


def inspection_settings(base: KernelSettings) -> InspectionSettings:
    """Inspection settings: the kernel fields of `base` (the process's), the OCR fields from the environment."""
    if isinstance(base, InspectionSettings):
        return base
    # Init values win over the environment in pydantic-settings: the runtime's kernel settings stay authoritative.
    return InspectionSettings(**base.model_dump())
