"""A seeded population of risk inputs shaped like traffic at Kim Thành (for split and rule tests)."""

from __future__ import annotations

import random
from decimal import Decimal

from services.declarations.risk import RiskInput, UnitValueBand

# (share, HS codes) by goods family; shares follow the gate's mix (fruit-heavy, minerals and chemicals south-bound).
FAMILIES = [
    (0.42, ["08109092", "08106000", "08104000", "08045020", "08039010", "08071100", "08109010"]),
    (0.10, ["07099990", "07049090", "07031019", "07129090"]),
    (0.08, ["26011110", "27040010", "28047000"]),
    (0.12, ["31021000", "31053000", "28151100", "28070000"]),
    (0.18, ["84314990", "85015229", "84295200", "73089099"]),
    (0.10, ["06031900", "07141011", "11081400", "39269099"]),
]
BAND = UnitValueBand(low=Decimal(10_000), high=Decimal(50_000), count=100)


def population(n: int, *, seed: int = 20261127) -> list[RiskInput]:
    """`n` risk inputs drawn from the gate's mix."""
    rng = random.Random(seed)
    out = []
    for k in range(n):
        family = rng.choices([f[1] for f in FAMILIES], weights=[f[0] for f in FAMILIES])[0]
        lines = rng.choice([1, 1, 1, 2, 2, 3])
        kind = "import" if rng.random() < 0.75 else "export"
        form_e = kind == "import" and rng.random() < 0.5
        items = []
        per_kg: list[Decimal | None] = []
        for _ in range(lines):
            origin = "CN" if kind == "import" else "VN"
            if form_e and rng.random() < 0.03:
                origin = rng.choice(["TH", "LA", "KH"])
            items.append({"hs_code": rng.choice(family), "origin": origin})
            # ~7 % of lines fall outside the p5-p95 band, as they would by construction of the band.
            per_kg.append(Decimal(rng.choice([5_000, 80_000])) if rng.random() < 0.07 else Decimal(30_000))
        body = {"kind": kind, "items": items}
        if form_e:
            body["preferential_origin"] = {"form_e_number": f"E{k:015d}", "issued_on": "2026-11-01"}
        out.append(
            RiskInput(
                declaration_id=f"synthetic-{seed}-{k}",
                body_sha256=f"{k:064x}",
                body=body,
                prior_declarations=rng.choice([0, 1, 2]) if rng.random() < 0.08 else 50,
                compliance_class=rng.choices(["A", "B", "C"], weights=[0.30, 0.55, 0.15])[0],
                duties_assessed=rng.random() >= 0.02,
                line_vnd_per_kg=per_kg,
                bands={item["hs_code"]: BAND for item in items},
            )
        )
    return out
