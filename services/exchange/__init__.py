"""The exchange service: signed messages with the partner administration across the border (docs/exchange.md)."""
