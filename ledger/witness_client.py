"""Ask a C2SP tlog-witness for a cosignature (the log's side of add-checkpoint)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import httpx

from ledger.witness import SIZE_CONTENT_TYPE, CosignatureVerifier, encode_add_checkpoint, split_note


class WitnessUnavailable(Exception):
    """The witness could not be reached or answered with a server error: try again later."""


class WitnessRefused(Exception):
    """The witness refused the checkpoint (4xx): the log and the witness disagree, which needs a human."""

    def __init__(self, status: int, detail: str) -> None:
        """Record the HTTP status and the witness's answer."""
        super().__init__(f"witness answered {status}: {detail}")
        self.status = status


@dataclass(frozen=True, slots=True)
class WitnessEndpoint:
    """A witness the log submits to: its submission URL prefix and its cosignature key."""

    url: str
    key: CosignatureVerifier

    @classmethod
    def parse(cls, spec: str) -> WitnessEndpoint:
        """Parse `URL|VKEY`."""
        url, sep, vkey = spec.strip().partition("|")
        if not sep or not url.startswith(("http://", "https://")):
            raise ValueError(f"witness {spec!r}: expected URL|VKEY")
        return cls(url.rstrip("/"), CosignatureVerifier.from_vkey(vkey))


def request_cosignature(
    client: httpx.Client,
    witness: WitnessEndpoint,
    note: bytes,
    size: int,
    old_size: int,
    proof: Callable[[int, int], list[bytes]],
) -> tuple[str, int]:
    """Submit a checkpoint of `size` claiming the witness is at `old_size`; return (its cosignature line, the size
    the witness was at). On 409 with the witness's size, retry once from that size (`proof(old, new)` gives the
    consistency proof). The line is checked against the witness key before it is returned."""
    body, _ = split_note(note)
    for _attempt in range(2):
        proof_hashes = proof(old_size, size) if 0 < old_size < size else []
        try:
            resp = client.post(
                f"{witness.url}/add-checkpoint", content=encode_add_checkpoint(old_size, proof_hashes, note)
            )
        except httpx.HTTPError as exc:
            raise WitnessUnavailable(f"{witness.url}: {type(exc).__name__}: {exc}") from exc
        if resp.status_code == 409 and resp.headers.get("content-type", "").split(";")[0] == SIZE_CONTENT_TYPE:
            text = resp.text.strip()
            if not text.isdigit():
                raise WitnessRefused(409, f"malformed size {text[:40]!r}")
            new_old = int(text)
            if new_old > size or new_old == old_size:
                raise WitnessRefused(409, f"the witness is at size {new_old}, beyond this checkpoint of size {size}")
            old_size = new_old
            continue
        if resp.status_code >= 500:
            raise WitnessUnavailable(f"{witness.url}: HTTP {resp.status_code}")
        if resp.status_code != 200:
            raise WitnessRefused(resp.status_code, resp.text[:300])
        for line in resp.text.split("\n"):
            if witness.key.verify_line(body, line) is not None:
                return line + "\n", old_size
        raise WitnessRefused(200, "no valid cosignature by the configured witness key in the answer")
    raise WitnessRefused(409, "the witness's size kept changing")


def parse_witnesses(value: str) -> list[WitnessEndpoint]:
    """Parse a settings value `URL|VKEY,URL|VKEY,...` (empty: no witnesses)."""
    endpoints = [WitnessEndpoint.parse(item) for item in value.split(",") if item.strip()]
    if len({e.key.vkey for e in endpoints}) != len(endpoints):
        raise ValueError("a witness key is listed twice")
    return endpoints


@dataclass
class PoolResult:
    """What one round of submissions gave."""

    lines: list[str]  # valid cosignature lines, one per witness that cosigned
    by_witness: dict[str, str]  # witness vkey -> its cosignature line
    unavailable: dict[str, str]  # witness name -> why it could not be asked (retry later)
    refused: dict[str, str]  # witness name -> its refusal (the log and the witness disagree: alarm)
    witnessed: bool  # at least `quorum` witnesses cosigned


class WitnessPool:
    """The witnesses a log submits its checkpoints to, and the size each one was last seen at.

    A witness that is down is skipped (the checkpoint goes on unwitnessed by it); the next checkpoint submitted to
    it carries a consistency proof from the size it last cosigned, which it tells with its 409 answer, so it catches
    up with one request whenever it is back."""

    def __init__(self, endpoints: list[WitnessEndpoint], quorum: int, *, timeout: float = 5.0) -> None:
        """Witnesses, the number that make a checkpoint witnessed, and the HTTP timeout per request."""
        if not 0 <= quorum <= len(endpoints):
            raise ValueError(f"witness quorum {quorum} must lie between 0 and {len(endpoints)}")
        self.endpoints = endpoints
        self.quorum = quorum
        self._sizes: dict[str, int] = {}
        self._client = httpx.Client(timeout=timeout)

    def cosign(
        self, note: bytes, size: int, proof: Callable[[int, int], list[bytes]], *, only: set[str] | None = None
    ) -> PoolResult:
        """Ask every witness (or those whose vkeys are in `only`) to cosign the checkpoint `note` of `size`
        (sequentially; a witness answers in milliseconds, a down one costs at most the timeout)."""
        lines: list[str] = []
        by_witness: dict[str, str] = {}
        unavailable: dict[str, str] = {}
        refused: dict[str, str] = {}
        for endpoint in self.endpoints:
            vkey = endpoint.key.vkey
            if only is not None and vkey not in only:
                continue
            try:
                line, _ = request_cosignature(self._client, endpoint, note, size, self._sizes.get(vkey, 0), proof)
            except WitnessUnavailable as exc:
                unavailable[endpoint.key.name] = str(exc)
                continue
            except WitnessRefused as exc:
                refused[endpoint.key.name] = str(exc)
                continue
            self._sizes[vkey] = size
            lines.append(line)
            by_witness[vkey] = line
        return PoolResult(lines, by_witness, unavailable, refused, len(lines) >= self.quorum)

    def close(self) -> None:
        """Close the HTTP connections."""
        self._client.close()
