"""What the exchange carries: the message types and the shapes a type's code receives and returns.

The types themselves live in `services.exchange.messages` (`MESSAGE_TYPES`); this module defines the contract
between them and the transport (docs/exchange.md), and loads them when that package is present.
"""

from __future__ import annotations

import datetime as dt
import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from services.kernel.outbox import Event

logger = logging.getLogger("smartgate.exchange")

# A warning an inbound handler returns: {"code", "detail"} → the receipt says "acceptedWithWarnings".
Warning = dict[str, str]


@dataclass(frozen=True)
class Outbound:
    """A message to send, made from one of our domain events (`recipient` None: every active partner)."""

    type: str
    correlation_id: str
    recipient: str | None
    payload: dict[str, Any]


@dataclass(frozen=True)
class Inbound:
    """A received message, verified (signature, sender, recipient, time) and valid against its schema."""

    message_id: str
    sender: str
    type: str
    correlation_id: str
    created_at: dt.datetime
    payload: dict[str, Any]


@dataclass(frozen=True)
class MessageType:
    """One kind of message: its payload schema, how our events become it, what receiving it does."""

    name: str
    version: int
    schema: dict[str, Any]
    outbound: Callable[[Event], list[Outbound]] | None
    inbound: Callable[[Session, Inbound], list[Warning]]


class Rejected(Exception):
    """Raised by an inbound handler: the message is refused (receipt "rejected" with this reason), nothing stored."""

    def __init__(self, code: str, detail: str, pointer: str | None = None) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.pointer = pointer

    def reason(self) -> dict[str, str]:
        """The receipt's reason."""
        out = {"code": self.code, "detail": self.detail}
        if self.pointer is not None:
            out["pointer"] = self.pointer
        return out


def load_message_types() -> dict[str, MessageType]:
    """`services.exchange.messages.MESSAGE_TYPES` when that package is installed, else none."""
    try:
        module = importlib.import_module("services.exchange.messages")
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("services.exchange.messages"):
            return {}
        raise
    types: dict[str, MessageType] = dict(getattr(module, "MESSAGE_TYPES", {}))
    return types
