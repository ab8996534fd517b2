"""Officer review flow: take work from the queue, open it, check its documents, decide."""

from __future__ import annotations

from typing import Any

from locust import HttpUser, SequentialTaskSet, between, task
from locust.exception import InterruptTaskSet

from loadtests.scenarios.common import API, BOARD, DECIDABLE, keys, ok_json, outcome_for


class ReviewFlow(SequentialTaskSet):
    """One decision: every step is named "[Review] n. Step"."""

    decl: dict[str, Any]
    etag: str
    has_documents: bool

    @task
    def queue(self) -> None:
        """The officer's own queue, oldest first; claim the first state nobody else is deciding on."""
        picked = None
        params = {"assigned": "me", "limit": "50"}
        with self.client.get(
            f"{API}/review/queue", params=params, name="[Review] 1. Queue", catch_response=True
        ) as resp:
            data = ok_json(resp, 200)
            if data is not None:
                picked = BOARD.claim(data, statuses=DECIDABLE)
        if picked is None:
            # Nothing to decide now: think, then look again.
            raise InterruptTaskSet(reschedule=False)
        self.decl = picked

    @task
    def open(self) -> None:
        """Open the declaration (body, risk reasons, duties)."""
        with self.client.get(
            f"{API}/declarations/{self.decl['id']}", name="[Review] 2. Open", catch_response=True
        ) as resp:
            if ok_json(resp, 200) is None:
                raise InterruptTaskSet(reschedule=False)
            # The version reviewed: the decision carries it (If-Match), so it never applies to a later one.
            self.etag = resp.headers["ETag"]

    @task
    def documents(self) -> None:
        """What the trader has attached."""
        with self.client.get(
            f"{API}/declarations/{self.decl['id']}/documents", name="[Review] 3. Documents", catch_response=True
        ) as resp:
            data = ok_json(resp, 200)
        if data is None:
            raise InterruptTaskSet(reschedule=False)
        self.has_documents = bool(data)

    @task
    def decide(self) -> None:
        """Request documents, order an inspection, or clear, with a reason."""
        outcome = outcome_for(self.decl, has_documents=self.has_documents)
        reason = {
            "request_documents": "phytosanitary certificate missing",
            "inspect": "red channel: physical inspection of the goods",
            "clear": "documents and goods consistent with the declaration",
        }[outcome]
        with self.client.post(
            f"{API}/declarations/{self.decl['id']}/decisions",
            json={"outcome": outcome, "reason": reason},
            headers={"If-Match": self.etag},
            name=f"[Review] 4. Decide ({outcome})",
            catch_response=True,
        ) as resp:
            ok_json(resp, 200)


class OfficerReview(HttpUser):
    """A customs officer on duty working the yellow and red queue."""

    weight = 2
    wait_time = between(0.1, 0.5)
    tasks = [ReviewFlow]

    def on_start(self) -> None:
        """Present the officer key on every request."""
        self.client.headers["Authorization"] = f"Bearer {keys().officer}"
