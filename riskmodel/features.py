"""Leak-free features of a declaration item: risk profiles, value and tax bands, FTA and route checks.

Risk profiles (smoothed fraud rate and frequency per declarant, importer, seller, HS code, origin, route, ...) are
*target encodings*: computed on rows with known outcomes and looked up for the row being scored. A row must never be
encoded with statistics that include its own label (in-sample encoding): a one-off importer's "rate" would then be its
own label and the model learns to trust the profile, which on later declarations it cannot do. So:

- at serving time and on a later period, profiles come from the training period only (:meth:`Profiles.transform`);
- for the training rows themselves, :func:`out_of_fold` encodes each fold with profiles fitted on the other folds,
  and :func:`earlier_periods` (the alternative) with profiles of the months before the row's month only.

Everything a fitted :class:`Profiles` holds is plain JSON (it travels inside the ONNX file's metadata), and transform
needs numpy only.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np

from riskmodel.records import Item

VERSION = 1
SMOOTHING = 20.0
MIN_BAND = 5  # rows an HS band needs before it is used (else the coarser band)
EU = frozenset(
    "AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE".split()
)  # FEU: Korea-EU FTA (GB was in it until 2021)
ASEAN = frozenset("BN KH ID LA MY MM PH SG TH VN".split())
EFTA = frozenset("CH IS LI NO".split())
FTA_PARTNERS = {"EU": EU | {"GB"}, "AS": ASEAN, "EF": EFTA}


def _hs(n: int) -> Callable[[Item], str]:
    return lambda it: it.hs6[:n]


# Risk profiles: name -> key of an item. Order matters (it is the feature order); append only, bump VERSION.
KEYS: dict[str, Callable[[Item], str]] = {
    "declarant": lambda it: it.declarant,
    "importer": lambda it: it.importer,
    "seller": lambda it: it.seller,
    "courier": lambda it: it.courier,
    "hs6": lambda it: it.hs6,
    "hs4": _hs(4),
    "hs2": _hs(2),
    "origin": lambda it: it.origin,
    "departure": lambda it: it.departure,
    "route": lambda it: f"{it.departure}>{it.origin}>{it.office}",
    "office": lambda it: it.office,
    "tax_type": lambda it: it.tax_type,
    "origin_indicator": lambda it: it.origin_indicator,
    "import_type": lambda it: it.import_type,
    "import_use": lambda it: it.import_use,
    "payment_type": lambda it: it.payment_type,
    "transport_mode": lambda it: it.transport_mode,
    "hs6_origin": lambda it: f"{it.hs6}|{it.origin}",
    "hs4_origin": lambda it: f"{it.hs6[:4]}|{it.origin}",
    "importer_hs4": lambda it: f"{it.importer}|{it.hs6[:4]}",
    "declarant_importer": lambda it: f"{it.declarant}|{it.importer}",
    "declarant_hs2": lambda it: f"{it.declarant}|{it.hs6[:2]}",
    "importer_seller": lambda it: f"{it.importer}|{it.seller}",
    "office_hs2": lambda it: f"{it.office}|{it.hs6[:2]}",
    "fta_origin": lambda it: f"{it.fta_claim}|{it.origin}",
}


def key_tuple(it: Item) -> tuple[str, ...]:
    """Every key of an item, in the order of KEYS, in one call (what scoring at filing uses; a test keeps it equal
    to KEYS)."""
    hs6, origin, importer, declarant, office = it.hs6, it.origin, it.importer, it.declarant, it.office
    hs4, hs2 = hs6[:4], hs6[:2]
    return (
        declarant,
        importer,
        it.seller,
        it.courier,
        hs6,
        hs4,
        hs2,
        origin,
        it.departure,
        f"{it.departure}>{origin}>{office}",
        office,
        it.tax_type,
        it.origin_indicator,
        it.import_type,
        it.import_use,
        it.payment_type,
        it.transport_mode,
        f"{hs6}|{origin}",
        f"{hs4}|{origin}",
        f"{importer}|{hs4}",
        f"{declarant}|{importer}",
        f"{declarant}|{hs2}",
        f"{importer}|{it.seller}",
        f"{office}|{hs2}",
        f"{it.fta_claim}|{origin}",
    )


LOOKUP_ONLY = ("declarant", "importer", "seller", "hs6")  # also a label-free frequency feature

BASE = (
    "log_value",
    "log_mass",
    "log_unit_value",
    "tax_rate",
    "unit_value_vs_hs",  # robust z-score of log(value/kg) within the item's HS band
    "value_vs_hs",  # log value minus the band's median log value
    "tax_rate_vs_hs",  # declared tax rate minus the band's median rate (a rate below the band's: misclassification?)
    "hs_band_level",  # 6, 4, 2 or 0: how specific the band used was
    "fta_claim",
    "fta_partner_mismatch",  # preferential rate of an agreement whose partner is not the origin
    "origin_ne_departure",  # shipped from elsewhere than its origin (transshipment)
    "fta_transshipped",  # FTA claim on a transshipped item (direct consignment rule)
    "weekday",
)


def feature_names() -> list[str]:
    """The model's input columns, in order."""
    names = list(BASE)
    for key in KEYS:
        names += [f"rate_{key}", f"seen_{key}"]
    return names


def _log_unit_value(it: Item) -> float:
    return math.log1p(max(it.value, 0.0)) - math.log1p(max(it.net_mass, 0.0))


def _keys(items: Sequence[Item]) -> list[list[str]]:
    """The key of every item under every profile, column by column (in the order of KEYS)."""
    return [[key(it) for it in items] for key in KEYS.values()]


def _grouped_quantiles(groups: list[str], values: np.ndarray, qs: Sequence[float]) -> dict[str, list[float]]:
    """Per group: its row count and the quantiles qs of its values (linear interpolation, like numpy's default)."""
    names, inverse = np.unique(np.asarray(groups, dtype=object), return_inverse=True)
    order = np.lexsort((values, inverse))
    sorted_values = values[order]
    counts = np.bincount(inverse, minlength=len(names))
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    out = {}
    columns = []
    for q in qs:
        pos = starts + q * (counts - 1)
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, starts + counts - 1)
        frac = pos - lo
        columns.append(sorted_values[lo] * (1 - frac) + sorted_values[hi] * frac)
    for i, name in enumerate(names):
        out[str(name)] = [float(counts[i])] + [float(c[i]) for c in columns]
    return out


def _partner_mismatch(it: Item) -> float:
    if not it.fta_claim or len(it.fta_claim) < 3:
        return 0.0
    partner = it.fta_claim[1:3]
    allowed = FTA_PARTNERS.get(partner, frozenset({partner}))
    return 0.0 if it.origin in allowed else 1.0


class Profiles:
    """Risk profiles and HS bands fitted on labelled rows; :meth:`transform` turns items into the feature matrix."""

    def __init__(self, spec: dict) -> None:
        if spec.get("version") != VERSION:
            raise ValueError(f"feature spec version {spec.get('version')} is not {VERSION}")
        self.spec = spec
        self.prior: float = spec["prior"]
        self.rows: int = spec["rows"]
        self.tables: dict[str, dict[str, list[int]]] = spec["tables"]
        self.bands: dict[str, list[float]] = spec["bands"]
        self.names = feature_names()
        self._cell_tables: list[dict[str, tuple[float, float]]] | None = None

    def prepare(self) -> Profiles:
        """Compute, once, each profile's seen keys' two feature values (scoring at filing then does one dictionary
        look-up per profile). The scorer calls it when it loads a model."""
        if self._cell_tables is None:
            prior, m = self.prior, float(self.spec["smoothing"])
            per_10k = 10_000.0 / self.rows
            self._cell_tables = [
                {k: ((pos + m * prior) / (n + m), math.log1p(n * per_10k)) for k, (n, pos) in
                 self.tables[name].items()}
                for name in KEYS
            ]  # fmt: skip
        return self

    @classmethod
    def fit(cls, items: Sequence[Item], labels: np.ndarray, keys: list[list[str]] | None = None) -> Profiles:
        """Profiles of these rows (their outcomes are used: never transform the same rows with it for training).
        ``keys`` is :func:`_keys` of the items when the caller has it already."""
        labels = np.asarray(labels)
        if len(items) != len(labels) or not len(items):
            raise ValueError("fit needs as many labels as items, and at least one")
        keys = keys if keys is not None else _keys(items)
        positive = labels.astype(bool).tolist()
        tables: dict[str, dict[str, list[int]]] = {}
        for name, column in zip(KEYS, keys, strict=True):
            counts = Counter(column)
            hits = Counter(k for k, y in zip(column, positive, strict=True) if y)
            tables[name] = {k: [n, hits.get(k, 0)] for k, n in counts.items()}
        uv = np.asarray([_log_unit_value(it) for it in items])
        lv = np.asarray([math.log1p(max(it.value, 0.0)) for it in items])
        tax = np.asarray([it.tax_rate for it in items], dtype=np.float64)
        groups = [f"{n}:{it.hs6[:n]}" for n in (6, 4, 2, 0) for it in items]
        reps = 4
        q_uv = _grouped_quantiles(groups, np.tile(uv, reps), (0.25, 0.5, 0.75))
        q_lv = _grouped_quantiles(groups, np.tile(lv, reps), (0.5,))
        q_tax = _grouped_quantiles(groups, np.tile(tax, reps), (0.5,))
        bands = {}
        for band, (count, q1, med, q3) in q_uv.items():
            if count < MIN_BAND and band != "0:":
                continue
            bands[band] = [med, max((q3 - q1) / 1.349, 0.25), q_lv[band][1], q_tax[band][1]]
        spec = {
            "version": VERSION,
            "prior": float(labels.mean()),
            "rows": len(items),
            "smoothing": SMOOTHING,
            "tables": tables,
            "bands": bands,
        }
        return cls(spec)

    def _band(self, hs6: str) -> tuple[int, list[float]]:
        for n in (6, 4, 2):
            band = self.bands.get(f"{n}:{hs6[:n]}")
            if band is not None:
                return n, band
        return 0, self.bands["0:"]

    def transform(self, items: Sequence[Item], keys: list[list[str]] | None = None) -> np.ndarray:
        """The float32 feature matrix of these items (one row each, columns of :func:`feature_names`)."""
        if keys is None and len(items) <= 16:  # scoring at filing: one item at a time, plain Python is fastest
            return np.asarray([self._row(it) for it in items], dtype=np.float32).reshape(len(items), len(self.names))
        out = np.empty((len(items), len(self.names)), dtype=np.float32)
        for i, it in enumerate(items):
            out[i, : len(BASE)] = self._base(it)
        keys = keys if keys is not None else _keys(items)
        prior, m = self.prior, float(self.spec["smoothing"])
        per_10k = 10_000.0 / self.rows
        unseen = (0, 0)
        for j, (name, column) in enumerate(zip(KEYS, keys, strict=True)):
            table = self.tables[name]
            cells = np.asarray([table.get(k, unseen) for k in column], dtype=np.float64).reshape(len(items), 2)
            n, pos = cells[:, 0], cells[:, 1]
            out[:, len(BASE) + 2 * j] = (pos + m * prior) / (n + m)
            out[:, len(BASE) + 2 * j + 1] = np.log1p(n * per_10k)
        return out

    def _base(self, it: Item) -> list[float]:
        luv = _log_unit_value(it)
        lv = math.log1p(max(it.value, 0.0))
        level, (med_uv, scale_uv, med_v, med_tax) = self._band(it.hs6)
        shipped_elsewhere = 1.0 if it.departure and it.origin and it.departure != it.origin else 0.0
        return [
            lv,
            math.log1p(max(it.net_mass, 0.0)),
            luv,
            it.tax_rate,
            (luv - med_uv) / scale_uv,
            lv - med_v,
            it.tax_rate - med_tax,
            float(level),
            1.0 if it.fta_claim else 0.0,
            _partner_mismatch(it),
            shipped_elsewhere,
            shipped_elsewhere if it.fta_claim else 0.0,
            float(it.date.weekday()),
        ]

    def row(self, it: Item) -> list[float]:
        """One item's features, as a list (the single-item path of scoring)."""
        return self._row(it)

    def _row(self, it: Item) -> list[float]:
        row = self._base(it)
        unseen = (self.prior, 0.0)
        tables = self.prepare()._cell_tables
        assert tables is not None
        for key, cells in zip(key_tuple(it), tables, strict=True):
            row += cells.get(key, unseen)
        return row


def _pick(items: Sequence[Item], rows: np.ndarray) -> list[Item]:
    return [items[i] for i in rows.tolist()]


def _take(keys: list[list[str]], rows: np.ndarray) -> list[list[str]]:
    picked = rows.tolist()
    return [[column[i] for i in picked] for column in keys]


def out_of_fold(items: Sequence[Item], labels: np.ndarray, *, folds: int = 5, seed: int = 0) -> np.ndarray:
    """Training features where each row's profiles come from the other folds only (no row sees its own label)."""
    labels = np.asarray(labels)
    order = np.random.default_rng(seed).permutation(len(items))
    fold_of = np.empty(len(items), dtype=np.int64)
    fold_of[order] = np.arange(len(items)) % folds
    out = np.empty((len(items), len(feature_names())), dtype=np.float32)
    keys = _keys(items)
    for k in range(folds):
        inside = np.flatnonzero(fold_of == k)
        rest = np.flatnonzero(fold_of != k)
        profiles = Profiles.fit(_pick(items, rest), labels[rest], _take(keys, rest))
        out[inside] = profiles.transform(_pick(items, inside), _take(keys, inside))
    return out


def earlier_periods(items: Sequence[Item], labels: np.ndarray) -> np.ndarray:
    """Training features where each row's profiles come from the months before its own only (the first month has
    no past: every key unseen, at the overall rate)."""
    labels = np.asarray(labels)
    months = np.asarray([it.date.year * 12 + it.date.month - 1 for it in items])
    out = np.empty((len(items), len(feature_names())), dtype=np.float32)
    for month in np.unique(months):
        inside = np.flatnonzero(months == month)
        past = np.flatnonzero(months < month)
        if len(past):
            profiles = Profiles.fit(_pick(items, past), labels[past])
        else:  # HS bands are label-free; the rates are emptied
            profiles = Profiles.fit(_pick(items, inside), labels[inside])
            profiles.tables = {name: {} for name in KEYS}
            profiles.prior = float(labels.mean())
        out[inside] = profiles.transform(_pick(items, inside))
    return out


def in_sample(items: Sequence[Item], labels: np.ndarray) -> np.ndarray:
    """The leaky encoding (each row's profiles include its own label): for tests that show why it is not used."""
    return Profiles.fit(items, labels).transform(items)
