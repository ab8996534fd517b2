"""The tariff schedule and exchange rates: load a CSV schedule, post daily rates."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.declarations import codes
from services.declarations.models import ExchangeRate, TariffLine

CSV_COLUMNS = (
    "hs_code", "description", "mfn_rate", "acfta_rate", "vat_rate", "export_rate",
    "mfn_source", "acfta_source", "vat_source", "export_source", "status", "notes",
)  # fmt: skip
STATUSES = ("verified", "unverified")


class TariffFileError(ValueError):
    """A schedule that cannot be loaded; the message names the line and column."""


def _rate(value: str, *, line: int, column: str, optional: bool = False) -> Decimal | None:
    value = value.strip()
    if not value and optional:
        return None
    try:
        rate = Decimal(value)
    except InvalidOperation as exc:
        raise TariffFileError(f"line {line}: {column} '{value}' is not a number") from exc
    if not Decimal(0) <= rate <= Decimal(1000):
        raise TariffFileError(f"line {line}: {column} {rate} is outside 0-1000 %")
    return rate


def parse_csv(text: str) -> list[dict[str, Any]]:
    """Validate a whole schedule before anything is written (one bad line rejects the file)."""
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise TariffFileError(f"missing column(s): {', '.join(missing)}")
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for line, row in enumerate(reader, start=2):
        hs = (row["hs_code"] or "").strip().replace(".", "")
        if not codes.HS_CODE.match(hs):
            raise TariffFileError(f"line {line}: hs_code '{hs}' is not 8 digits")
        if hs in seen:
            raise TariffFileError(f"line {line}: hs_code {hs} appears twice")
        seen.add(hs)
        status = (row["status"] or "").strip()
        if status not in STATUSES:
            raise TariffFileError(f"line {line}: status must be verified or unverified")
        rows.append(
            {
                "hs_code": hs,
                "description": (row["description"] or "").strip(),
                "mfn_rate": _rate(row["mfn_rate"] or "", line=line, column="mfn_rate"),
                "acfta_rate": _rate(row["acfta_rate"] or "", line=line, column="acfta_rate", optional=True),
                "vat_rate": _rate(row["vat_rate"] or "", line=line, column="vat_rate"),
                "export_rate": _rate(row["export_rate"] or "", line=line, column="export_rate"),
                "sources": {k: (row[f"{k}_source"] or "").strip() for k in ("mfn", "acfta", "vat", "export")},
                "status": status,
                "notes": (row.get("notes") or "").strip(),
            }
        )
    if not rows:
        raise TariffFileError("the file has no tariff lines")
    return rows


def load(session: Session, rows: list[dict[str, Any]]) -> tuple[int, int]:
    """Insert or replace tariff lines; returns (inserted, updated)."""
    inserted = updated = 0
    for row in rows:
        existing = session.get(TariffLine, row["hs_code"])
        if existing is None:
            session.add(TariffLine(**row))
            inserted += 1
        else:
            for key, value in row.items():
                setattr(existing, key, value)
            updated += 1
    session.flush()
    _forget_reference_data()
    return inserted, updated


def _forget_reference_data() -> None:
    from services.declarations.assessment import REFERENCE_CACHE

    REFERENCE_CACHE.clear()


def post_rate(
    session: Session, *, currency: str, day: dt.date, vnd_per_unit: Decimal, source: str, actor: str
) -> ExchangeRate:
    """Set the VND rate of a currency for a day (replacing a rate posted earlier for that day)."""
    row = session.get(ExchangeRate, (currency, day))
    if row is None:
        row = ExchangeRate(currency=currency, day=day, vnd_per_unit=vnd_per_unit, source=source, posted_by=actor)
        session.add(row)
    else:
        row.vnd_per_unit, row.source, row.posted_by = vnd_per_unit, source, actor
    session.flush()
    _forget_reference_data()
    return row


def rates_on(session: Session, day: dt.date) -> list[ExchangeRate]:
    """The rate in force on `day` for every currency that has one."""
    out = []
    for currency in session.scalars(select(ExchangeRate.currency).distinct().order_by(ExchangeRate.currency)):
        row = session.scalar(
            select(ExchangeRate)
            .where(ExchangeRate.currency == currency, ExchangeRate.day <= day)
            .order_by(ExchangeRate.day.desc())
            .limit(1)
        )
        if row is not None:
            out.append(row)
    return out


# Demo rates (VND per unit), of the order of State Bank of Vietnam central rates in late 2026; for demos and tests.
DEMO_RATES = {"USD": Decimal("25400"), "CNY": Decimal("3560"), "EUR": Decimal("27500"), "THB": Decimal("760")}
