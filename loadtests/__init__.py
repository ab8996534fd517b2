"""Locust scenarios that drive the real services over HTTP, a threshold listener, and the `make loadtest` runner."""
