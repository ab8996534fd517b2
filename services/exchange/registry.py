"""The registry of exchanged message types: what each type is, how it is made from our events and what it does
when received (the contract between the transport and the message types, issue 14)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from services.kernel.outbox import Event

Warning = dict[str, str]  # {"code", "detail"}: the receipt says acceptedWithWarnings


@dataclass(frozen=True)
class Outbound:
    """A message to send, made from one of our events (the transport adds the envelope)."""

    type: str
    correlation_id: str
    recipient: str | None
    payload: dict[str, Any]


@dataclass(frozen=True)
class Inbound:
    """A received message, verified and valid against its schema."""

    message_id: str
    sender: str
    type: str
    correlation_id: str
    created_at: dt.datetime
    payload: dict[str, Any]


@dataclass(frozen=True)
class MessageType:
    """One message type: its name, version, payload schema, and its outbound and inbound functions."""

    name: str
    version: int
    schema: dict[str, Any]
    outbound: Callable[[Event], list[Outbound]] | None
    inbound: Callable[[Session, Inbound], list[Warning]]


class Rejected(Exception):
    """A received message refused by its type (receipt `rejected`, nothing stored)."""

    def __init__(self, code: str, detail: str, pointer: str | None = None) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail
        self.pointer = pointer
