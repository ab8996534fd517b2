"""The neutral declaration item the model reads, whatever its source (a public dataset's adapter, our own history)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Item:
    """One declared item, as the model sees it. Identifiers are opaque strings; "" means absent.

    ``fta_claim`` is the preferential tariff claimed ("" when the general rate applies), e.g. the KCS tax type
    ``FCN1`` (Korea-China FTA). ``value`` is the declared customs value in one currency, ``net_mass`` in kg.
    """

    id: str
    date: dt.date
    office: str
    declarant: str
    importer: str
    seller: str
    courier: str
    hs6: str
    origin: str
    departure: str
    tax_rate: float
    tax_type: str
    fta_claim: str
    origin_indicator: str
    net_mass: float
    value: float
    import_type: str = ""
    import_use: str = ""
    payment_type: str = ""
    transport_mode: str = ""
    process_type: str = ""


@dataclass(frozen=True, slots=True)
class Case:
    """One decided declaration of the platform's own history: its goods lines as items, the officer's violation
    flag (0/1) and the additional duties the inspection found (``revenue``, in VND; 0 when none)."""

    id: str
    date: dt.date
    items: tuple[Item, ...]
    label: int
    revenue: float = 0.0


class DatasetError(ValueError):
    """A dataset file that cannot be read as the adapter expects (missing, wrong columns, bad values)."""
