"""Checkpoints: sign the log's size and root every N seconds or M entries, after checking consistency; anchor them."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from ledger import reader, storage, writer
from ledger.anchor import AnchorReceipt
from ledger.checkpoint import Checkpoint, Signer, checkpoint_hash
from ledger.keyring import KeyHistory, KeyRotationError, LogKey, predecessor, record_signing_key
from ledger.verify import VerificationError, verify_consistency
from ledger.witness_client import PoolResult, WitnessPool, parse_witnesses
from services.kernel.database import table_of, unit_of_work, utcnow
from services.kernel.dbfaults import outage_code
from services.kernel.periodic import PeriodicWorker
from services.provenance.anchoring import ChainAnchorer, make_anchorer
from services.provenance.models import WitnessCosignature
from services.provenance.service import Provenance

logger = logging.getLogger("smartgate.provenance.checkpointer")


class SigningKeyRetired(Exception):
    """The configured signing key was replaced by a later key of the log: it never signs again."""


class LedgerInconsistent(Exception):
    """The stored log does not extend the previous checkpoint: nothing is signed until someone looks."""

    def __init__(self, message: str, error: VerificationError | None = None) -> None:
        """Carry the verification error with its evidence."""
        super().__init__(f"{message}: {error}" if error else message)
        self.error = error


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one checkpoint pass did."""

    signed: tuple[int, bytes] | None  # the new checkpoint (size, note), if the log had grown
    anchored: AnchorReceipt | None  # the receipt of the latest checkpoint, if it was anchored by this pass
    anchor_error: str | None  # why anchoring failed (it is retried on the next pass)
    witnessed: PoolResult | None = None  # what the witnesses said about the latest checkpoint, if asked this pass


class Checkpointer:
    """Signs, checks and anchors checkpoints; `checkpoint_now()` is the whole pass, the thread only schedules it."""

    def __init__(
        self,
        prov: Provenance,
        *,
        anchorer_factory: Callable[[], ChainAnchorer] | None = None,
        connect_at_start: bool = False,
    ) -> None:
        """Bind the service. The chain is connected on the first anchor (it can take seconds), or, with
        `connect_at_start`, as soon as the thread starts, so that a serving process never pays for it later
        (and a misconfigured chain shows in the log at once)."""
        self.prov = prov
        self.connect_at_start = connect_at_start
        settings = prov.settings
        endpoints = parse_witnesses(settings.ledger_witnesses)
        self.witness_pool: WitnessPool | None = (
            WitnessPool(
                endpoints,
                settings.ledger_witness_quorum or len(endpoints),
                timeout=settings.ledger_witness_timeout_seconds,
            )
            if endpoints
            else None
        )
        self.interval = prov.settings.ledger_checkpoint_seconds
        self.every_entries = prov.settings.ledger_checkpoint_entries
        self.anchor_interval = prov.settings.ledger_anchor_seconds
        self._last_anchor_at: float | None = None  # monotonic time of this process's last anchor
        self._anchorer_factory = anchorer_factory or (lambda: make_anchorer(prov.settings, prov.sessions))
        self._anchorer: ChainAnchorer | None = None
        self._pass_lock = threading.Lock()
        self._count_lock = threading.Lock()
        self._appended = 0
        self.worker = PeriodicWorker(
            "ledger-checkpointer",
            self._scheduled_pass,
            interval=self.interval,
            logger=logger,
            what="checkpoint pass",
            on_start=self._connect_at_start,
        )

    # -- one pass ---------------------------------------------------------------------------------------------

    def sign(self) -> tuple[int, bytes] | None:
        """Sign and store a checkpoint of the current size if the log grew, after checking it extends the last."""
        prov = self.prov
        try:
            with unit_of_work(prov.sessions) as session:
                conn = session.connection()
                # Appends wait while we read the size and the tree's right edge (PostgreSQL; SQLite has one writer).
                storage.lock_for_append(conn)
                size = storage.log_size(conn)
                latest = storage.get_checkpoint(conn)
                if latest is not None and latest[0] > size:
                    raise LedgerInconsistent(f"the log has {size} entries but checkpoint {latest[0]} was signed")
                history, own = self._record_key(conn)
                if size == 0 or (latest is not None and latest[0] == size) or size < own.valid_from_size:
                    return None
                root = writer.compact_range(conn, size).root()
                if latest is not None:
                    self._check_extends(conn, latest, size, root, history)
                cosigners = self._rotation_cosigners(history, own, latest)
                note = Checkpoint(prov.origin, size, root).sign(prov.signer, *cosigners)
                storage.insert_checkpoint(conn, size, note, utcnow())
        except IntegrityError:
            # Another process signed the same size first (PostgreSQL without the lock cannot happen; be calm anyway).
            logger.info("checkpoint already signed by another process")
            return None
        with self._count_lock:
            self._appended = 0
        logger.info("checkpoint signed", extra={"size": size})
        return size, note

    def _record_key(self, conn: Connection) -> tuple[KeyHistory, LogKey]:
        """Make the configured key the log's signing key (recording a rotation the first time it is seen); return the
        key history and the configured key's entry in it. A retired key raises SigningKeyRetired."""
        prov = self.prov
        previous = prov.previous_signer.verifier if prov.previous_signer is not None else None
        try:
            record = record_signing_key(conn, prov.verifier, origin=prov.origin, now=utcnow(), previous=previous)
        except KeyRotationError as exc:
            raise SigningKeyRetired(str(exc)) from exc
        for key in record.recorded:
            logger.warning(
                "ledger signing key recorded",
                extra={"vkey": key.vkey, "valid_from_size": key.valid_from_size, "keys": len(record.history)},
            )
        if record.unrecorded_below is not None and record.recorded:
            logger.critical(
                "checkpoints below this size were signed by a key the log did not record; set "
                "SMARTGATE_LEDGER_PREVIOUS_SIGNING_KEY to it, or verifiers need it with --key",
                extra={"size": record.unrecorded_below},
            )
        own = record.history.find(prov.verifier)
        assert own is not None
        return record.history, own

    def _rotation_cosigners(self, history: KeyHistory, own: LogKey, latest: tuple[int, bytes] | None) -> list[Signer]:
        """The retiring key, when this is the first checkpoint of a newly recorded key and that key is configured
        (SMARTGATE_LEDGER_PREVIOUS_SIGNING_KEY): it cosigns the same note, so that whoever trusts only the old key
        sees the new one sign the tree head the old one vouches for."""
        previous = self.prov.previous_signer
        before = predecessor(history, own)
        if previous is None or before is None or before.verifier != previous.verifier:
            return []
        if latest is not None and latest[0] >= own.valid_from_size:
            return []  # the new key signed before: only its first checkpoint is cosigned
        return [previous]

    def _check_extends(
        self, conn: Connection, latest: tuple[int, bytes], size: int, root: bytes, history: KeyHistory
    ) -> None:
        """Check the previous checkpoint's signature (under the key valid at its size), and that the stored tree of
        `size` extends its root."""
        prev_size, prev_note = latest
        try:
            prev, _key = history.open(prev_note, origin=self.prov.origin, index=prev_size)
            proof = reader.consistency_proof(conn, prev_size, size)
            verify_consistency(prev_size, size, proof, prev.root_hash, root)
        except VerificationError as exc:
            logger.critical("ledger inconsistent; not signing", extra={"evidence": exc.evidence()})
            raise LedgerInconsistent(f"the log no longer extends checkpoint {prev_size}", exc) from exc
        except LookupError as exc:
            raise LedgerInconsistent(f"tree nodes missing between {prev_size} and {size}: {exc}") from exc

    def anchorer(self) -> ChainAnchorer:
        """The chain anchorer, connected (and the contract deployed) on first use."""
        if self._anchorer is None:
            self._anchorer = self._anchorer_factory()
        return self._anchorer

    def anchor_latest(self) -> AnchorReceipt | None:
        """Anchor the latest checkpoint unless it already is on this chain; store the receipt beside it."""
        with self.prov.read_engine.connect() as conn:
            latest = storage.get_checkpoint(conn)
            if latest is None:
                return None
            size, note = latest
            rows = storage.anchors_for(conn, size)
        anchorer = self.anchorer()
        # A reset or new chain lost the contract (and its anchors): redeploy first, so that the latest checkpoint
        # counts as not anchored on the contract that is there now.
        anchorer.ensure_contract()
        if any(int(r["chain_id"]) == anchorer.chain_id and r["contract"] == anchorer.contract for r in rows):
            return None
        # The chain call happens outside any database transaction: it can take seconds. It raises, and nothing is
        # recorded, unless the transaction's receipt carries the Anchored event of this checkpoint.
        receipt = anchorer.anchor(checkpoint_hash(note))
        with unit_of_work(self.prov.sessions) as session:
            writer.record_anchor(session.connection(), size, receipt)
        logger.info(
            "checkpoint anchored",
            extra={
                "size": size,
                "tx_hash": receipt.tx_hash,
                "contract": receipt.contract,
                "chain_id": receipt.chain_id,
            },
        )
        return receipt

    def witness_latest(self) -> PoolResult | None:
        """Submit the latest checkpoint to the configured witnesses that have not cosigned it yet; store their
        cosignatures. A witness that is down is asked again at the next pass (with the then latest checkpoint, and a
        consistency proof from the size it last cosigned); the checkpoint goes on unwitnessed meanwhile."""
        pool = self.witness_pool
        if pool is None:
            return None
        prov = self.prov
        table = table_of(WitnessCosignature)
        with prov.read_engine.connect() as conn:
            latest = storage.get_checkpoint(conn)
            if latest is None:
                return None
            size, note = latest
            have = {row[0] for row in conn.execute(select(table.c.witness).where(table.c.checkpoint_size == size))}
        missing = {e.key.vkey for e in pool.endpoints} - have
        if not missing:
            return None

        def proof(old: int, new: int) -> list[bytes]:
            with prov.read_engine.connect() as conn:
                return reader.consistency_proof(conn, old, new)

        result = pool.cosign(note, size, proof, only=missing)
        if result.by_witness:
            with unit_of_work(prov.sessions) as session:
                now = utcnow()
                session.execute(
                    table.insert(),
                    [
                        {"checkpoint_size": size, "witness": vkey, "line": line, "cosigned_at": now}
                        for vkey, line in result.by_witness.items()
                    ],
                )
        total = len(have) + len(result.by_witness)
        extra = {"size": size, "cosignatures": total, "quorum": pool.quorum}
        for name, why in result.refused.items():
            # The witness saw a checkpoint this one contradicts (or does not trust this key): a human must look.
            logger.critical("witness refused the checkpoint", extra={**extra, "witness": name, "error": why})
        if result.unavailable:
            logger.warning(
                "witnesses unavailable; checkpoint not yet cosigned by them",
                extra={**extra, "witnesses": sorted(result.unavailable)},
            )
        if result.by_witness:
            logger.info("checkpoint cosigned", extra={**extra, "witnessed": total >= pool.quorum})
        return result

    def anchor_due(self, signed: tuple[int, bytes] | None) -> bool:
        """Whether a scheduled pass anchors: always once the log stopped growing (this pass signed nothing),
        while it grows at most every `SMARTGATE_LEDGER_ANCHOR_SECONDS` (each anchor is a chain transaction)."""
        if signed is None or self._last_anchor_at is None:
            return True
        return time.monotonic() - self._last_anchor_at >= self.anchor_interval

    def checkpoint_now(self, *, scheduled: bool = False) -> Outcome:
        """One pass: sign a checkpoint if the log grew, then anchor the latest checkpoint if it is not yet
        (a `scheduled` pass only when `anchor_due`; a direct call always).

        An anchoring failure never loses the checkpoint: it stays stored and the next pass anchors it.
        """
        with self._pass_lock:
            signed = self.sign()
            witnessed = self.witness_latest()
            if scheduled and not self.anchor_due(signed):
                return Outcome(signed, None, None, witnessed)
            try:
                anchored = self.anchor_latest()
            except Exception as exc:
                if outage_code(exc):
                    raise  # the database, not the chain, is down: keep the chain connection
                logger.warning("anchoring failed; will retry", extra={"error": f"{type(exc).__name__}: {exc}"})
                self._anchorer = None  # reconnect next time (a restarted node may have lost the contract)
                return Outcome(signed, None, f"{type(exc).__name__}: {exc}", witnessed)
            if anchored is not None:
                self._last_anchor_at = time.monotonic()
            return Outcome(signed, anchored, None, witnessed)

    # -- scheduling -------------------------------------------------------------------------------------------

    def note_appended(self, count: int) -> None:
        """Count appended entries; wake the thread once M have accumulated since the last checkpoint."""
        with self._count_lock:
            self._appended += count
            due = self._appended >= self.every_entries
        if due:
            self.worker.wake()

    def start(self) -> None:
        """Run passes every N seconds (or after M entries) in a background thread until stop()."""
        self.worker.start()

    def stop(self) -> None:
        """Stop the thread (a pass in progress finishes first), then, if the chain is connected, one last pass so
        that checkpoints held back by the anchor interval are anchored before this process stops leading."""
        was_running = self.worker.thread is not None
        self.worker.stop(timeout=30)
        if was_running and self._anchorer is not None:
            try:
                self.checkpoint_now()
            except Exception:
                logger.exception("last checkpoint pass before stopping failed")

    def _connect_at_start(self) -> None:
        if self.connect_at_start:
            try:
                self.anchorer()
            except Exception as exc:  # noqa: BLE001 - the next pass retries; the log says why
                logger.warning("anchor chain not reachable yet", extra={"error": f"{type(exc).__name__}: {exc}"})

    def _scheduled_pass(self) -> None:
        """What the thread does each time (a database outage propagates: the worker logs it and retries)."""
        try:
            self.checkpoint_now(scheduled=True)
        except LedgerInconsistent:
            logger.exception("checkpoint refused: the ledger is inconsistent (run `smartgate ledger verify`)")
        except SigningKeyRetired as exc:
            logger.critical("checkpoint refused: the configured signing key is retired", extra={"error": str(exc)})
