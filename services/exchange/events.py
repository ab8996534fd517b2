"""The events the exchange service publishes (models in services/kernel/catalogue.py: `ExchangeMessageLogged`):
one per message or receipt sent or received, hashes only, for both administrations' ledgers."""

from __future__ import annotations

MESSAGE_SENT = "exchange.message_sent"
MESSAGE_RECEIVED = "exchange.message_received"
RECEIPT_SENT = "exchange.receipt_sent"
RECEIPT_RECEIVED = "exchange.receipt_received"
