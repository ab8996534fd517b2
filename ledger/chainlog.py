"""The chain's side of the story: every Anchored event of a log's contracts, and whether the stored log still
holds what was anchored (a deleted or rewritten suffix is a rollback).

Anchors and checkpoints live in the operator's database, so an operator (or an attacker with the database) who
deletes entries from index k onward together with their tree nodes, checkpoints and anchor rows leaves a log that is
consistent with itself. The chain keeps what was anchored: if the latest checkpoint anchored there is not a
checkpoint of the log, is larger than the log, or has another root than the log at its size, history was cut.

An Anchored event carries only the checkpoint's SHA-256, not its size: a hash the log does not hold says that a
checkpoint was deleted, not how many entries went with it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ledger.anchor import ANCHORED_TOPIC
from ledger.verify import RolledBack, VerificationError

if TYPE_CHECKING:
    from web3 import Web3

# Blocks per eth_getLogs call: public nodes cap the range (often 10,000) or the number of results.
LOG_CHUNK_BLOCKS = 10_000


@dataclass(frozen=True, slots=True)
class AnchoredEvent:
    """One Anchored(checkpointHash, sender) event, where it is on chain."""

    contract: str
    checkpoint_sha256: bytes
    sender: str
    block_number: int
    log_index: int
    tx_hash: str


def _int(value: Any) -> int:
    return int(value, 16) if isinstance(value, str) else int(value)


def _bytes(value: Any) -> bytes:
    return bytes.fromhex(value[2:] if value[:2] in ("0x", "0X") else value) if isinstance(value, str) else bytes(value)


def anchored_events(
    w3: Web3,
    contracts: Iterable[str],
    *,
    from_block: int = 0,
    to_block: int | None = None,
    chunk_blocks: int = LOG_CHUNK_BLOCKS,
) -> list[AnchoredEvent]:
    """Every Anchored event the given contracts emitted in [from_block, to_block], in chain order.

    The logs are read with raw `eth_getLogs` requests from a node: web3's result formatting costs several times the
    request itself (benchmarks/chainlog.py).
    """
    from web3 import Web3

    from ledger.verify import AnchorError

    addresses = sorted({Web3.to_checksum_address(c) for c in contracts})
    if not addresses:
        return []
    checksummed: dict[bytes, str] = {}

    def address(raw: bytes) -> str:
        if raw not in checksummed:
            checksummed[raw] = Web3.to_checksum_address(raw)
        return checksummed[raw]

    # The in-process eth-tester provider answers raw requests unformatted for its backend: let web3 format them.
    raw = type(w3.provider).__name__ != "EthereumTesterProvider"
    last = int(w3.eth.block_number) if to_block is None else to_block
    topic = "0x" + ANCHORED_TOPIC.hex()
    found: list[AnchoredEvent] = []
    start = max(0, from_block)
    while start <= last:
        end = min(last, start + chunk_blocks - 1)
        logs: Any
        if raw:
            query = {"address": addresses, "topics": [topic], "fromBlock": hex(start), "toBlock": hex(end)}
            response: Any = w3.provider.make_request("eth_getLogs", [query])  # type: ignore[arg-type]
            if response.get("error"):
                raise AnchorError(f"eth_getLogs failed for blocks {start}..{end}: {response['error']}")
            logs = response["result"]
        else:
            formatted: Any = {"address": addresses, "topics": [ANCHORED_TOPIC], "fromBlock": start, "toBlock": end}
            logs = w3.eth.get_logs(formatted)
        for log in logs:
            topics = [_bytes(t) for t in log["topics"]]
            if log.get("removed") or len(topics) != 3 or topics[0] != ANCHORED_TOPIC:
                continue
            found.append(
                AnchoredEvent(
                    contract=address(_bytes(log["address"])),
                    checkpoint_sha256=topics[1],
                    sender=address(topics[2][12:]),
                    block_number=_int(log["blockNumber"]),
                    log_index=_int(log["logIndex"]),
                    tx_hash="0x" + _bytes(log["transactionHash"]).hex(),
                )
            )
        start = end + 1
    found.sort(key=lambda e: (e.block_number, e.log_index))
    return found


@dataclass
class ChainAudit:
    """What the chain's Anchored events say about a stored log."""

    events: int = 0  # Anchored events of the log's senders read from the chain
    latest: AnchoredEvent | None = None  # the latest of them
    latest_size: int | None = None  # the size of the checkpoint it anchored, if the log holds that checkpoint
    problems: list[VerificationError] = field(default_factory=list)


def audit(
    events: list[AnchoredEvent],
    checkpoints: Mapping[bytes, int],
    log_size: int,
    root_matches: Callable[[int], bool],
    *,
    senders: set[str] | None = None,
) -> ChainAudit:
    """Hold a stored log to what was anchored: `checkpoints` maps each stored checkpoint's hash to its size,
    `root_matches(size)` says whether the log's root at `size` is the stored checkpoint's.

    Only events sent by `senders` count (anyone may call the contract); None counts every event.
    """
    ours = [e for e in events if senders is None or e.sender in senders]
    result = ChainAudit(events=len(ours))
    if not ours:
        return result
    latest = ours[-1]
    result.latest = latest
    where = f"block {latest.block_number}, tx {latest.tx_hash}"
    unknown = [e for e in ours if e.checkpoint_sha256 not in checkpoints]
    if unknown:
        last_unknown = unknown[-1]
        what = "the latest checkpoint anchored on chain" if last_unknown is latest else "a checkpoint anchored on chain"
        result.problems.append(
            RolledBack(
                f"rolled back: {what} (block {last_unknown.block_number}, tx {last_unknown.tx_hash}) is not in "
                f"the log of {log_size} entries, and {len(unknown)} anchored checkpoint(s) are missing: entries "
                "and their checkpoints were deleted or rewritten",
                index=log_size,
                expected=last_unknown.checkpoint_sha256,
                found=None,
            )
        )
    size = checkpoints.get(latest.checkpoint_sha256)
    result.latest_size = size
    if size is None:
        return result
    if size > log_size:
        result.problems.append(
            RolledBack(
                f"rolled back: the latest anchored checkpoint ({where}) has size {size} but the log has "
                f"{log_size} entries",
                index=log_size,
                expected=size,
                found=log_size,
            )
        )
    elif not root_matches(size):
        result.problems.append(
            RolledBack(
                f"rewritten: the log's root at size {size} differs from the latest anchored checkpoint's ({where})",
                index=size,
            )
        )
    return result
