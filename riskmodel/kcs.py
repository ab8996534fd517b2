"""Adapter for the Korea Customs Service synthetic import declarations (Jeong et al. 2022, MIT licence).

The repository carries a copy in ``data/kcs-synthetic/`` (train.csv: 2020, valid.csv: 2021 Q1). Labels: ``Fraud``.
"""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import numpy as np

from riskmodel.records import DatasetError, Item

COLUMNS = (
    "Declaration ID",
    "Date",
    "Office ID",
    "Process Type",
    "Import Type",
    "Import Use",
    "Payment Type",
    "Mode of Transport",
    "Declarant ID",
    "Importer ID",
    "Seller ID",
    "Courier ID",
    "HS6 Code",
    "Country of Departure",
    "Country of Origin",
    "Tax Rate",
    "Tax Type",
    "Country of Origin Indicator",
    "Net Mass",
    "Item Price",
    "Fraud",
)
SPLITS = ("train.csv", "valid.csv")


def _float(row: dict[str, str], column: str, where: str) -> float:
    text = row[column].strip()
    if not text:
        return 0.0
    try:
        return float(text)
    except ValueError:
        raise DatasetError(f"{where}: column '{column}' is not a number: {text[:30]!r}") from None


def read_csv(path: Path) -> tuple[list[Item], np.ndarray]:
    """The items and 0/1 fraud labels of one KCS CSV file; DatasetError names the first problem."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: no such file")
    try:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise DatasetError(f"{path}: not a KCS declarations file, missing columns: {', '.join(missing)}")
            items, labels = [], []
            for number, row in enumerate(reader, 2):
                where = f"{path}:{number}"
                try:
                    date = dt.date.fromisoformat(row["Date"].strip())
                except ValueError:
                    raise DatasetError(f"{where}: bad date {row['Date'][:30]!r}") from None
                fraud = row["Fraud"].strip()
                if fraud not in ("0", "1"):
                    raise DatasetError(f"{where}: Fraud must be 0 or 1, not {fraud[:30]!r}")
                tax_type = row["Tax Type"].strip()
                hs = row["HS6 Code"].strip().zfill(6)
                items.append(
                    Item(
                        id=row["Declaration ID"].strip(),
                        date=date,
                        office=row["Office ID"].strip(),
                        declarant=row["Declarant ID"].strip(),
                        importer=row["Importer ID"].strip(),
                        seller=row["Seller ID"].strip(),
                        courier=row["Courier ID"].strip(),
                        hs6=hs,
                        origin=row["Country of Origin"].strip(),
                        departure=row["Country of Departure"].strip(),
                        tax_rate=_float(row, "Tax Rate", where),
                        tax_type=tax_type,
                        # KCS tax types starting with F are FTA-preferential rates (FCN*: Korea-China FTA).
                        fta_claim=tax_type if tax_type.startswith("F") else "",
                        origin_indicator=row["Country of Origin Indicator"].strip(),
                        net_mass=_float(row, "Net Mass", where),
                        value=_float(row, "Item Price", where),
                        import_type=row["Import Type"].strip(),
                        import_use=row["Import Use"].strip(),
                        payment_type=row["Payment Type"].strip(),
                        transport_mode=row["Mode of Transport"].strip(),
                        process_type=row["Process Type"].strip(),
                    )
                )
                labels.append(int(fraud))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"{path}: cannot read: {exc}") from None
    if not items:
        raise DatasetError(f"{path}: no rows")
    return items, np.asarray(labels, dtype=np.int8)


def read_dir(directory: Path) -> dict[str, tuple[list[Item], np.ndarray]]:
    """train.csv and valid.csv of a KCS directory (valid.csv optional), by split name."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DatasetError(f"{directory}: no such directory")
    if not (directory / "train.csv").is_file():
        raise DatasetError(f"{directory}: no train.csv in it (expected the KCS files train.csv, valid.csv)")
    out = {"train": read_csv(directory / "train.csv")}
    if (directory / "valid.csv").is_file():
        out["valid"] = read_csv(directory / "valid.csv")
    return out


def write_csv(path: Path, items: list[Item], labels: list[int] | np.ndarray) -> None:
    """Write items and 0/1 labels in the KCS columns, so that `train --dataset kcs` reads them (the platform exports
    its own inspected history this way). `Critical Fraud` is written as 0."""
    path = Path(path)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow([*COLUMNS, "Critical Fraud"])
        for it, y in zip(items, labels, strict=True):
            row = [it.id, it.date.isoformat(), it.office, it.process_type, it.import_type, it.import_use,
                   it.payment_type, it.transport_mode, it.declarant, it.importer, it.seller, it.courier, it.hs6,
                   it.departure, it.origin, repr(float(it.tax_rate)), it.tax_type, it.origin_indicator,
                   repr(float(it.net_mass)), repr(float(it.value)), int(y), 0]  # fmt: skip
            writer.writerow(row)
