"""Filing with the learned model active vs without a model, in the same run (issue 16 §4, second half).

Usage: .venv/bin/python benchmarks/risk_filing.py --model var/risk.onnx [--n 300] [--blocks 6] [--json out.json]

Migrates a fresh SQLite database, stores the model (value currency KRW, as trained on the KCS data) and a rule set
with a `model:` block, then files declarations of 10 goods lines through the service layer (prepare + store, in a
transaction, as the endpoint does: duties, rules, the model's score of every line, its reasons when the declaration
goes to an officer, the score row), in alternating blocks with the model active and with no model deployed. The
clock is the thread's CPU time (the shared 2-core machine's wall time is mostly scheduling). Target: with the model
<= 10 % slower. Exit 1 if missed.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import os
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from services.declarations import riskmodels, rulesets, service  # noqa: E402
from services.declarations.assessment import VN_TZ  # noqa: E402
from services.declarations.schemas import EXAMPLE, DeclarationIn  # noqa: E402
from services.declarations.tariff import DEMO_RATES, post_rate  # noqa: E402
from services.kernel.auth import Principal, Role, get_or_create_organisation  # noqa: E402
from services.kernel.database import make_engine, make_sessionmaker, unit_of_work  # noqa: E402
from services.kernel.migrate import upgrade  # noqa: E402

RULES = """version: 'bench.model'
seed: 7
target: {green: 57.5, yellow: 37.5, red: 5.0}
thresholds: {yellow: 30, red: 75}
random_selection: {red: 0.01, yellow: 0.04}
model: {threshold: 0.5, weight: 40, exploration: 0.10}
rules:
  - {id: fresh_fruit_phyto, type: hs_watchlist, prefixes: ['0810'], weight: 20}
  - {id: form_e, type: form_e_non_chinese_origin, weight: 45}
  - {id: new_trader, type: new_trader, max_prior_declarations: 3, weight: 25}
  - {id: compliance_class, type: compliance_class, weights: {A: -15, B: 0, C: 35}}
"""
KRW_IN_VND = Decimal("18.2")


def body(n: int) -> DeclarationIn:
    """The example with 10 goods lines (origins and HS codes varied, so scores vary)."""
    doc = copy.deepcopy(EXAMPLE)
    item = doc["items"][0]
    codes = ["08109020", "08043000", "08061000", "07020000", "26011110"]
    doc["items"] = [
        dict(
            item,
            hs_code=codes[(n + i) % len(codes)],
            origin="TH" if n % 5 == 0 and i == 0 else "CN",
            description=f"Goods, grade {i + 1}",
            gross_mass_kg="1300",
            net_mass_kg="1200",
        )
        for i in range(10)
    ]
    doc["total_gross_mass_kg"], doc["total_net_mass_kg"] = "13000", "12000"
    return DeclarationIn.model_validate(doc)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="A model from `smartgate risk model train`")
    parser.add_argument("--n", type=int, default=300, help="Filings per mode")
    parser.add_argument("--blocks", type=int, default=6, help="Alternating blocks per mode")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        upgrade(url)
        sessions = make_sessionmaker(make_engine(url))
        admin = Principal(key_id="bench-admin", role=Role.admin, organisation_id=None)
        today = dt.datetime.now(VN_TZ).date()
        with unit_of_work(sessions) as session:
            org = get_or_create_organisation(session, name="Bench Trading")
            trader = Principal(key_id="bench-trader", role=Role.trader, organisation_id=org.id)
            for currency, rate in {**DEMO_RATES, "KRW": KRW_IN_VND}.items():
                post_rate(session, currency=currency, day=today, vnd_per_unit=rate, source="bench", actor="bench")
            rulesets.create(session, principal=admin, source_yaml=RULES)
            rulesets.activate(session, principal=admin, version="bench.model")
            riskmodels.upload(session, principal=admin, version="bench", data=args.model.read_bytes(),
                              value_currency="KRW")  # fmt: skip
            riskmodels.dry_run(session, principal=admin, version="bench", limit=10)
        times: dict[str, list[float]] = {"inactive": [], "active": []}
        channels: dict[str, dict[str, int]] = {"inactive": {}, "active": {}}
        per_block = max(1, args.n // args.blocks)
        count = 0
        for n in range(20):  # warm-up: caches, bands, the trader's first filings
            with unit_of_work(sessions) as session:
                service.create(session, principal=trader, body=body(n), submit=True)
        for _ in range(args.blocks):
            for mode in ("inactive", "active"):
                with unit_of_work(sessions) as session:
                    if mode == "active":
                        riskmodels.activate(session, principal=admin, version="bench")
                    elif session.scalar(__import__("sqlalchemy").text("select count(*) from risk_models "
                                                                      "where state = 'active'")):  # fmt: skip
                        riskmodels.rollback(session, principal=admin)
                for _ in range(per_block):
                    count += 1
                    declaration = body(count)
                    start = time.thread_time()
                    with unit_of_work(sessions) as session:
                        decl = service.create(session, principal=trader, body=declaration, submit=True)
                        channel = str(decl.channel)
                    times[mode].append(time.thread_time() - start)
                    channels[mode][channel] = channels[mode].get(channel, 0) + 1
        with unit_of_work(sessions) as session:
            scored = session.scalar(__import__("sqlalchemy").text("select count(*) from risk_model_scores"))
    result: dict = {
        mode: {
            "filings": len(ts),
            "mean_ms": round(statistics.fmean(ts) * 1000, 3),
            "p50_ms": round(statistics.median(ts) * 1000, 3),
            "channels": channels[mode],
        }
        for mode, ts in times.items()
    }
    ratio = result["active"]["mean_ms"] / result["inactive"]["mean_ms"]
    result["ratio_active_to_inactive"] = round(ratio, 3)
    result["score_rows"] = scored
    print(json.dumps(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    print(f"filing with the model active: {ratio:.2f}x the CPU time without (target <= 1.10)")
    return 0 if ratio <= 1.10 else 1


if __name__ == "__main__":
    sys.exit(main())
