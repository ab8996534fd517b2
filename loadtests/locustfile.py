"""Locust entry point: the scenarios and the threshold listener; `make loadtest` (loadtests/run.py) runs it."""

from locust import events

from loadtests.scenarios.documents import TraderDocuments
from loadtests.scenarios.filing import TraderFiling
from loadtests.scenarios.review import OfficerReview
from loadtests.thresholds import on_quitting

events.quitting.add_listener(on_quitting)

__all__ = ["OfficerReview", "TraderDocuments", "TraderFiling"]
