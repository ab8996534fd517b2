"""Webhooks: traders register HTTPS endpoints and receive their declarations' events, signed, retried, logged."""
