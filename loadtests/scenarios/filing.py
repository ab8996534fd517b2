"""Trader filing flow: file and submit, retry idempotently, read, search, then draft, amend with If-Match, submit."""

from __future__ import annotations

import datetime as dt
import random
import uuid
from typing import Any

from locust import HttpUser, SequentialTaskSet, between, task
from locust.exception import InterruptTaskSet

from loadtests.scenarios.common import API, declaration_body, keys, ok_json


class FilingFlow(SequentialTaskSet):
    """One trader's round: every step is named "[Filing] n. Step" so ids in URLs aggregate."""

    rng: random.Random
    filed: dict[str, Any]
    filed_body: dict[str, Any]
    idempotency_key: str
    draft: dict[str, Any]

    def on_start(self) -> None:
        """A random stream per simulated user (container numbers, quantities)."""
        self.rng = random.Random()

    @task
    def file_and_submit(self) -> None:
        """POST ?submit=true with a fresh Idempotency-Key."""
        self.idempotency_key = f"load-{uuid.uuid4()}"
        self.filed_body = declaration_body(self.rng)
        with self.client.post(
            f"{API}/declarations?submit=true",
            json=self.filed_body,
            headers={"Idempotency-Key": self.idempotency_key},
            name="[Filing] 1. File and submit",
            catch_response=True,
        ) as resp:
            data = ok_json(resp, 201)
            if data is not None and data["status"] not in ("submitted", "cleared", "released"):
                resp.failure(f"filed with ?submit=true but status is {data['status']}")
                data = None
        if data is None:
            raise InterruptTaskSet(reschedule=False)
        self.filed = data

    @task
    def retry(self) -> None:
        """The same request again (a client retry): the first response, marked as replayed."""
        with self.client.post(
            f"{API}/declarations?submit=true",
            json=self.filed_body,
            headers={"Idempotency-Key": self.idempotency_key},
            name="[Filing] 2. Retry (same Idempotency-Key)",
            catch_response=True,
        ) as resp:
            data = ok_json(resp, 201)
            if data is not None and (data["id"] != self.filed["id"] or "Idempotent-Replayed" not in resp.headers):
                resp.failure("a retry with the same Idempotency-Key was not a replay of the first response")

    @task
    def get(self) -> None:
        """Read it back with its ETag."""
        with self.client.get(
            f"{API}/declarations/{self.filed['id']}", name="[Filing] 3. Get", catch_response=True
        ) as resp:
            data = ok_json(resp, 200)
            if data is not None and not resp.headers.get("ETag"):
                resp.failure("no ETag on a declaration")

    @task
    def search(self) -> None:
        """List with filters (container, HS prefix, kind, gate, time window): the new declaration must be found."""
        since = dt.datetime.fromisoformat(self.filed["created_at"]) - dt.timedelta(seconds=1)
        params = {
            "container": self.filed_body["containers"][0]["number"],
            "hs_prefix": "0810",
            "kind": "import",
            "gate": "KIMTHANH",
            "created_from": since.isoformat(),
            "limit": "20",
        }
        with self.client.get(
            f"{API}/declarations", params=params, name="[Filing] 4. List with filters", catch_response=True
        ) as resp:
            data = ok_json(resp, 200)
            if data is not None and self.filed["id"] not in {d["id"] for d in data["items"]}:
                resp.failure("the declaration just filed is missing from a search on its own container")

    @task
    def file_draft(self) -> None:
        """A second declaration kept as a draft."""
        with self.client.post(
            f"{API}/declarations",
            json=declaration_body(self.rng),
            headers={"Idempotency-Key": f"load-{uuid.uuid4()}"},
            name="[Filing] 5. File draft",
            catch_response=True,
        ) as resp:
            data = ok_json(resp, 201)
            etag = resp.headers.get("ETag")
            if data is not None and not etag:
                resp.failure("no ETag on a new draft")
                data = None
        if data is None:
            raise InterruptTaskSet(reschedule=False)
        self.draft = {**data, "etag": etag}

    @task
    def amend(self) -> None:
        """Replace the draft's body (new quantities) with If-Match: version 2."""
        with self.client.post(
            f"{API}/declarations/{self.draft['id']}/amend",
            json=declaration_body(self.rng),
            headers={"If-Match": self.draft["etag"]},
            name="[Filing] 6. Amend (If-Match)",
            catch_response=True,
        ) as resp:
            data = ok_json(resp, 200)
            if data is not None and data["version"] != 2:
                resp.failure(f"an amended draft should be version 2, got {data['version']}")

    @task
    def submit_draft(self) -> None:
        """Register the amended draft (it goes to risk and, if yellow or red, to an officer)."""
        with self.client.post(
            f"{API}/declarations/{self.draft['id']}/submit",
            json={},
            name="[Filing] 7. Submit draft",
            catch_response=True,
        ) as resp:
            ok_json(resp, 200)


class TraderFiling(HttpUser):
    """A trader (or broker) filing declarations."""

    weight = 3
    wait_time = between(0.1, 0.5)
    tasks = [FilingFlow]

    def on_start(self) -> None:
        """Present the trader key on every request."""
        self.client.headers["Authorization"] = f"Bearer {keys().trader}"
