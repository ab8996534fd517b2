"""Tables of the provenance service besides the ledger's own: the subject-owner read model and anchor contracts."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from services.kernel.database import Base, UTCDateTime, utcnow


class SubjectOwner(Base):
    """Which organisation a declaration subject belongs to, learnt from its events (a read model, never joined)."""

    __tablename__ = "provenance_subject_owners"

    subject: Mapped[str] = mapped_column(String(200), primary_key=True)
    organisation_id: Mapped[str] = mapped_column(String(36), index=True)
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class AnchorContract(Base):
    """An Anchor contract this service deployed on a JSON-RPC chain, so it is deployed once per chain."""

    __tablename__ = "provenance_anchor_contracts"

    chain_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    contract: Mapped[str] = mapped_column(String(42), primary_key=True)
    deployed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class WitnessCosignature(Base):
    """A witness's C2SP cosignature line on one of the log's checkpoints (appended to that checkpoint's note in
    bundles and on the public checkpoint endpoint). Insert-only."""

    __tablename__ = "provenance_cosignatures"

    checkpoint_size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    witness: Mapped[str] = mapped_column(String(400), primary_key=True)  # the witness's vkey
    line: Mapped[str] = mapped_column(Text)
    cosigned_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
