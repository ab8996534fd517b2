"""The problems the inbox answers (docs/errors.md): each refusal is also recorded (exchange_rejections)."""

from __future__ import annotations

from services.kernel.errors import AppError


class ExchangeUnauthenticated(AppError):
    """The message is not signed by a key of a registered partner, or its signature does not verify."""

    status, title, type_slug = 401, "Exchange message not authenticated", "exchange-unauthenticated"


class ExchangeRefused(AppError):
    """A verified message that this side does not take: not for us, from the future, too old, schema-invalid."""

    status, title, type_slug = 422, "Exchange message refused", "exchange-refused"


class ExchangeReplay(AppError):
    """A message id seen before, with another body."""

    status, title, type_slug = 409, "Exchange message replayed", "exchange-replay"


class ExchangeRateLimited(AppError):
    """The partner pushes faster than its rate."""

    status, title, type_slug = 429, "Exchange partner over its rate", "exchange-rate-limited"
