"""How long a declaration's trace check takes against a repository of N lots (a harvest and a packing each).

`python benchmarks/tracecheck.py --lots 5000 [--backend sqlite|postgresql]`: fills a fresh database through the
traceability service's store (as the diary does: hashed, indexed, with ledger outbox rows), then times the trace
check (load the repository's harvests, packings and sprayings, run every rule and the anomaly flags, write the
claims) of a declaration naming one pallet and one naming twenty, rolled back each time.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from biip.checksums import gs1_standard_check_digit

from benchmarks.epcis import PRINCIPAL, database
from services.kernel import catalogue
from services.kernel.database import make_engine, make_sessionmaker, unit_of_work
from services.traceability import service, tracecheck
from services.traceability.diary import CONTEXT

GTIN = "08930001000018"
FARMS = [f"8930001{n:05d}" for n in range(50)]
HOUSES = [f"8931001{n:05d}" for n in range(3)]


def _check(body: str) -> str:
    return body + str(gs1_standard_check_digit(body))


def sscc(n: int) -> str:
    return _check(f"08930001{n:09d}")


def events(lots: int, rng: random.Random) -> list[dict[str, Any]]:
    out = []
    start = dt.datetime(2026, 5, 1, 6, 0, tzinfo=dt.UTC)
    for n in range(lots):
        farm, house = _check(rng.choice(FARMS)), _check(rng.choice(HOUSES))
        at = start + dt.timedelta(hours=rng.randint(0, 24 * 60))
        kg = rng.randint(800, 1400)
        lot = f"https://id.gs1.org/01/{GTIN}/10/L{n}"
        place = {"id": f"https://id.gs1.org/414/{farm}"}
        out.append({"type": "ObjectEvent", "eventTime": at.isoformat(), "eventTimeZoneOffset": "+00:00",
                    "action": "ADD", "epcList": [], "bizStep": "commissioning", "disposition": "active",
                    "readPoint": place, "bizLocation": place,
                    "quantityList": [{"epcClass": lot, "quantity": kg, "uom": "KGM"}],
                    "ilmd": {"sg:growingArea": "VN-LC-1", "sg:harvestAreaHa": 0.2}})  # fmt: skip
        hplace = {"id": f"https://id.gs1.org/414/{house}"}
        packed = (at + dt.timedelta(hours=rng.randint(12, 36))).isoformat()
        out.append({"type": "TransformationEvent", "eventTime": packed, "eventTimeZoneOffset": "+00:00",
                    "bizStep": "packing", "disposition": "in_progress", "readPoint": hplace, "bizLocation": hplace,
                    "inputQuantityList": [{"epcClass": lot, "quantity": kg - 50, "uom": "KGM"}],
                    "outputEPCList": [f"https://id.gs1.org/00/{sscc(n)}"]})  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lots", type=int, default=5000)
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    rng = random.Random(15)
    with tempfile.TemporaryDirectory() as tmp:
        url, _ = database(args.backend, Path(tmp))
        sessions = make_sessionmaker(make_engine(url))
        evs = events(args.lots, rng)
        for start in range(0, len(evs), 1000):
            with unit_of_work(sessions) as session:
                service.store(session, evs[start : start + 1000], CONTEXT, capture_id=None, principal=PRINCIPAL)
        print(f"{args.backend}: {args.lots:,} lots ({len(evs):,} events)")
        for pallets in (1, 20):
            request = catalogue.DeclarationTraceRequested(
                declaration_id="bench", number="KT-BENCH", version=1, kind="export", destination="CN",
                lines=[catalogue.TraceLine(line=1, hs_code="08109020", net_mass_kg=str(500 * pallets), gtin=GTIN,
                                           ssccs=[sscc(n) for n in range(pallets)])],
            )  # fmt: skip
            took = []
            for _ in range(args.runs):
                session = sessions()
                began = time.perf_counter()
                tracecheck.check(session, request, tracecheck.load(session))
                session.flush()
                took.append(time.perf_counter() - began)
                session.rollback()
                session.close()
            print(f"  check naming {pallets:>2} pallet(s): p50 {statistics.median(took) * 1000:,.0f} ms, "
                  f"max {max(took) * 1000:,.0f} ms over {args.runs} runs")  # fmt: skip


if __name__ == "__main__":
    main()
