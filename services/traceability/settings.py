"""Settings of the traceability service (`SMARTGATE_EPCIS_*`)."""

from __future__ import annotations

from pydantic import Field

from services.kernel.settings import KernelSettings


class TraceabilitySettings(KernelSettings):
    """Kernel settings plus the EPCIS repository's limits."""

    # Events in one captured document (the body size limit, SMARTGATE_MAX_BODY_BYTES, applies too).
    epcis_max_events: int = Field(default=10_000, ge=1)
    # Events per page of a query, unless `perPage` asks for fewer or more (up to the maximum).
    epcis_page_size: int = Field(default=30, ge=1)
    epcis_max_page_size: int = Field(default=1000, ge=1)
    # Where the buyer's trace page fetches the ledger's public bundles when this process does not run the provenance
    # service (the distributed deployment): the provenance service's or the gateway's base URL.
    trace_ledger_url: str | None = Field(default=None, pattern=r"^https?://[^\s]+$")
    # The border gate's GLN: readPoint and bizLocation of the events this service records when a traced declaration
    # is released and its truck exits (`crossing.py`). The platform's own until GS1 Viet Nam (or China, on the Hekou
    # side) allocates the gate one; a deployment sets `SMARTGATE_TRACE_GATE_GLN`.
    trace_gate_gln: str = Field(default="8930001000995", pattern=r"^\d{13}$")


def traceability_settings(base: KernelSettings) -> TraceabilitySettings:
    """Traceability settings: the kernel fields of `base` (the process's), the EPCIS fields from the environment."""
    if isinstance(base, TraceabilitySettings):
        return base
    return TraceabilitySettings(**base.model_dump())
