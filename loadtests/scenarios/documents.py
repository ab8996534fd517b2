"""Trader documents and payment flow: file, answer documents requests, pay cleared declarations, and the treasury
confirming those payments, which releases them."""

from __future__ import annotations

import random
import uuid
from typing import Any

from locust import HttpUser, SequentialTaskSet, between, task

from loadtests.scenarios.common import API, BOARD, declaration_body, keys, ok_json

# A small stand-in for a scanned phytosanitary certificate (the bytes vary so each is stored on its own).
CERTIFICATE = b"%PDF-1.4\n% phytosanitary certificate\n"


class DocumentsFlow(SequentialTaskSet):
    """One round of a trader's back office: every step is named "[Documents] n. Step"."""

    rng: random.Random
    awaiting: dict[str, Any] | None
    payable: dict[str, Any] | None
    payment: dict[str, Any] | None

    def on_start(self) -> None:
        """A random stream per simulated user."""
        self.rng = random.Random()
        self.awaiting = None
        self.payable = None
        self.payment = None

    @task
    def file_and_submit(self) -> None:
        """New work for the officers."""
        with self.client.post(
            f"{API}/declarations?submit=true",
            json=declaration_body(self.rng),
            headers={"Idempotency-Key": f"load-{uuid.uuid4()}"},
            name="[Documents] 1. File and submit",
            catch_response=True,
        ) as resp:
            ok_json(resp, 201)

    @task
    def find_documents_requests(self) -> None:
        """The organisation's declarations waiting for documents; claim one."""
        self.awaiting = self._claim("awaiting_documents", "[Documents] 2. Awaiting documents")

    @task
    def upload(self) -> None:
        """Upload the certificate (multipart); the declaration goes back to its officer."""
        if self.awaiting is None:
            return
        data = CERTIFICATE + uuid.uuid4().hex.encode()
        with self.client.post(
            f"{API}/declarations/{self.awaiting['id']}/documents",
            files={"file": ("phyto.pdf", data, "application/pdf")},
            data={"description": "phytosanitary certificate"},
            name="[Documents] 3. Upload document",
            catch_response=True,
        ) as resp:
            doc = ok_json(resp, 201)
            if doc is not None and doc["size_bytes"] != len(data):
                resp.failure(f"stored {doc['size_bytes']} bytes of {len(data)}")

    @task
    def list_documents(self) -> None:
        """The documents now attached."""
        if self.awaiting is None:
            return
        with self.client.get(
            f"{API}/declarations/{self.awaiting['id']}/documents",
            name="[Documents] 4. List documents",
            catch_response=True,
        ) as resp:
            docs = ok_json(resp, 200)
            if docs is not None and not docs:
                resp.failure("the uploaded document is not listed")

    @task
    def find_cleared(self) -> None:
        """Cleared declarations with duties to pay; claim one."""
        self.payable = self._claim("cleared", "[Documents] 5. Cleared, to pay")

    @task
    def pay(self) -> None:
        """Pay the balance (bank reference from the e-payment gateway): a claim, released nothing yet."""
        self.payment = None
        if self.payable is None:
            return
        balance = self.payable["duties_due_vnd"] - self.payable["paid_vnd"]
        if balance <= 0:
            return
        with self.client.post(
            f"{API}/declarations/{self.payable['id']}/payments",
            json={"bank_reference": f"VCB-{uuid.uuid4().hex[:20]}", "amount_vnd": balance},
            name="[Documents] 6. Pay duties",
            catch_response=True,
        ) as resp:
            data = ok_json(resp, 201)
            if data is not None and (data["status"], data["declaration_status"]) != ("claimed", "cleared"):
                resp.failure(f"a trader's payment is {data['status']} and the declaration {data['declaration_status']}")
            self.payment = data

    @task
    def confirm(self) -> None:
        """The treasury confirms the money arrived (its own key): cleared and paid in full is released."""
        treasury = keys().treasury
        if self.payment is None or not treasury:
            return
        with self.client.post(
            f"{API}/payments/{self.payment['id']}/confirm",
            headers={"Authorization": f"Bearer {treasury}"},
            name="[Documents] 7. Treasury confirms",
            catch_response=True,
        ) as resp:
            data = ok_json(resp, 200)
            if data is not None and data["declaration_status"] != "released":
                resp.failure(f"paid in full and confirmed but the declaration is {data['declaration_status']}")

    @task
    def history(self) -> None:
        """The released declaration's history (every transition with actor and time)."""
        if self.payable is None:
            return
        with self.client.get(
            f"{API}/declarations/{self.payable['id']}/history", name="[Documents] 8. History", catch_response=True
        ) as resp:
            ok_json(resp, 200)

    def _claim(self, status: str, name: str) -> dict[str, Any] | None:
        with self.client.get(
            f"{API}/declarations", params={"status": status, "limit": "20"}, name=name, catch_response=True
        ) as resp:
            data = ok_json(resp, 200)
        return BOARD.claim(data["items"], statuses=[status]) if data is not None else None


class TraderDocuments(HttpUser):
    """A trader's back office answering officers and paying duties (same organisation as the filing trader)."""

    weight = 2
    wait_time = between(0.1, 0.5)
    tasks = [DocumentsFlow]

    def on_start(self) -> None:
        """Present the trader key on every request."""
        self.client.headers["Authorization"] = f"Bearer {keys().trader}"
