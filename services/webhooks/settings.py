"""Settings of the webhooks service (`SMARTGATE_WEBHOOK_*`)."""

from __future__ import annotations

from pydantic import Field, field_validator

from services.kernel.settings import KernelSettings


class WebhookSettings(KernelSettings):
    """Kernel settings plus delivery cadence, retries and which targets may be called."""

    # Seconds to wait before each retry after a failed attempt: 8 attempts over about 27 hours by default.
    webhook_retry_seconds: list[float] = Field(default=[5, 300, 1800, 7200, 18000, 36000, 36000])
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    # How often the dispatcher looks for due deliveries when nothing woke it.
    webhook_poll_seconds: float = Field(default=1.0, gt=0)
    # Deliveries in flight at once (one slow endpoint must not hold back everyone else's).
    webhook_concurrency: int = Field(default=4, ge=1, le=64)
    webhook_max_endpoints: int = Field(default=10, ge=1)
    # Whether endpoints may be plain http:// and resolve to loopback or private addresses. Unset: only in
    # development and test (a production platform must not be made to call its own network).
    webhook_allow_private_targets: bool | None = None

    @field_validator("webhook_retry_seconds")
    @classmethod
    def _delays(cls, value: list[float]) -> list[float]:
        """Retry delays are non-negative and few."""
        if len(value) > 20 or any(d < 0 for d in value):
            raise ValueError("SMARTGATE_WEBHOOK_RETRY_SECONDS: at most 20 non-negative delays")
        return value

    @property
    def private_targets_allowed(self) -> bool:
        """The effective rule for http:// and private addresses."""
        if self.webhook_allow_private_targets is None:
            return self.environment in ("development", "test")
        return self.webhook_allow_private_targets

    @property
    def max_attempts(self) -> int:
        """The first attempt and one per retry delay."""
        return 1 + len(self.webhook_retry_seconds)


def webhook_settings(base: KernelSettings) -> WebhookSettings:
    """Webhook settings: the kernel fields of `base` (the process's), the webhook fields from the environment."""
    if isinstance(base, WebhookSettings):
        return base
    return WebhookSettings(**base.model_dump())
