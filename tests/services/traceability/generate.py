"""Seeded generators of valid EPCIS 2.0 events: farm diary events of many shapes (tests and benchmarks)."""

from __future__ import annotations

import random
from typing import Any

from biip.checksums import gs1_standard_check_digit

CONTEXT: list[Any] = [
    "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld",
    {"sg": "https://smartgate.example/epcis/"},
]
BIZ_STEPS = ["commissioning", "packing", "shipping", "receiving", "inspecting", "loading", "transforming"]
BIZ_STEPS = [s for s in BIZ_STEPS if s != "transforming"]
DISPOSITIONS = ["active", "in_transit", "conformant", "non_conformant", "in_progress"]
OFFSETS = ["+07:00", "+08:00", "+00:00", "-05:00"]


def _check(body: str) -> str:
    return body + str(gs1_standard_check_digit(body))


def gtin(rng: random.Random) -> str:
    return _check("0893" + "".join(rng.choice("0123456789") for _ in range(9)))


def gln(rng: random.Random) -> str:
    return _check("893" + "".join(rng.choice("0123456789") for _ in range(9)))


def sscc(rng: random.Random) -> str:
    return _check("3893" + "".join(rng.choice("0123456789") for _ in range(13)))


def lot(rng: random.Random) -> str:
    return "LC" + "".join(rng.choice("ABCDEFGHJK") for _ in range(3)) + str(rng.randint(1, 99))


def epc(rng: random.Random) -> str:
    """An EPC as a URN or as a Digital Link URI on another domain."""
    pick = rng.randrange(4)
    if pick == 0:
        return f"urn:epc:id:sgtin:8930001.0{rng.randint(10000, 99999)}.{rng.randint(1, 10**6)}"
    if pick == 1:
        return f"urn:epc:id:sscc:8930001.{rng.randint(10**9, 10**10 - 1)}"
    if pick == 2:
        return f"https://id.gs1.org/01/{gtin(rng)}/21/S{rng.randint(1, 10**6)}"
    return f"https://trace.example.vn/00/{sscc(rng)}?src=qr"


def quantity(rng: random.Random) -> dict[str, Any]:
    element: dict[str, Any] = {"epcClass": f"https://id.gs1.org/01/{gtin(rng)}/10/{lot(rng)}"}
    if rng.random() < 0.3:
        element["epcClass"] = f"urn:epc:class:lgtin:8930001.0{rng.randint(10000, 99999)}.{lot(rng)}"
    element["quantity"] = rng.choice([rng.randint(1, 5000), round(rng.uniform(0.1, 999), rng.randint(1, 3))])
    if rng.random() < 0.8:
        element["uom"] = rng.choice(["KGM", "TNE", "H87"])
    return element


def time(rng: random.Random) -> tuple[str, str]:
    offset = rng.choice(OFFSETS)
    fraction = rng.choice(["", ".5", ".123", ".120", ".1234"])
    stamp = f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}"
    return (
        f"{stamp}:{rng.randint(0, 59):02d}{fraction}{'Z' if offset == '+00:00' and rng.random() < 0.5 else offset}",
        offset,
    )


def place(rng: random.Random) -> dict[str, Any]:
    if rng.random() < 0.5:
        found: dict[str, Any] = {"id": f"urn:epc:id:sgln:8930001.{rng.randint(10000, 99999)}.0"}
    else:
        found = {"id": f"https://id.gs1.org/414/{gln(rng)}"}
    if rng.random() < 0.2:
        found["sg:growingArea"] = f"VN-LC-{rng.randint(1, 999):03d}"
    return found


def event(rng: random.Random) -> dict[str, Any]:  # noqa: C901 - one branch per optional field
    """One valid event of a random type and shape."""
    kind = rng.choice(["ObjectEvent", "ObjectEvent", "AggregationEvent", "TransformationEvent", "TransactionEvent"])
    at, offset = time(rng)
    ev: dict[str, Any] = {"type": kind, "eventTime": at, "eventTimeZoneOffset": offset}
    if kind == "ObjectEvent":
        ev["action"] = rng.choice(["ADD", "OBSERVE", "DELETE"])
        ev["epcList"] = [epc(rng) for _ in range(rng.randint(0, 4))]
        if rng.random() < 0.6 or not ev["epcList"]:
            ev["quantityList"] = [quantity(rng) for _ in range(rng.randint(1, 3))]
        if ev["action"] == "ADD" and rng.random() < 0.5:
            ev["ilmd"] = {
                "sg:harvestAreaHa": round(rng.uniform(0.1, 9), 2),
                "sg:crop": rng.choice(["lychee", "banana"]),
            }
    elif kind == "AggregationEvent":
        ev["action"] = rng.choice(["ADD", "OBSERVE"])
        ev["parentID"] = f"https://id.gs1.org/00/{sscc(rng)}"
        ev["childEPCs"] = [epc(rng) for _ in range(rng.randint(1, 3))]
    elif kind == "TransactionEvent":
        ev["action"] = "ADD"
        ev["epcList"] = [epc(rng) for _ in range(rng.randint(1, 3))]
        ev["bizTransactionList"] = [
            {"type": rng.choice(["po", "inv", "desadv"]), "bizTransaction": f"urn:epcglobal:cbv:bt:{gln(rng)}:{i}"}
            for i in range(rng.randint(1, 2))
        ]
    else:
        ev["inputQuantityList"] = [quantity(rng) for _ in range(rng.randint(1, 3))]
        ev["outputEPCList"] = [f"https://id.gs1.org/00/{sscc(rng)}"]
        if rng.random() < 0.5:
            ev["transformationID"] = f"urn:uuid:{rng.randint(10**8, 10**9)}-0000-4000-8000-000000000000"
    if rng.random() < 0.8:
        step = rng.choice(BIZ_STEPS)
        ev["bizStep"] = rng.choice([step, f"https://ref.gs1.org/cbv/BizStep-{step}"])
    if rng.random() < 0.6:
        ev["disposition"] = rng.choice(DISPOSITIONS)
    if rng.random() < 0.6:
        ev["readPoint"] = place(rng)
    if rng.random() < 0.7:
        ev["bizLocation"] = place(rng)
    if rng.random() < 0.3:
        ev["sourceList"] = [{"type": "owning_party", "source": f"https://id.gs1.org/417/{gln(rng)}"}]
    if rng.random() < 0.3:
        ev["destinationList"] = [
            {"type": "location", "destination": f"urn:epc:id:sgln:8930002.{rng.randint(10000, 99999)}.0"}
        ]
    if rng.random() < 0.3:
        ev["sg:phytoCertificate"] = f"VN-PC-{rng.randint(1, 10**6)}"
    if rng.random() < 0.2:
        ev["certificationInfo"] = f"https://cert.example.vn/{rng.randint(1, 999)}"
    if rng.random() < 0.2:
        ev["eventID"] = f"urn:uuid:{rng.randint(10**8, 10**9 - 1)}-1111-4111-8111-{rng.randint(10**11, 10**12 - 1)}"
    return ev


def document(events: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "@context": CONTEXT,
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2026-12-03T09:00:00Z",
        "epcisBody": {"eventList": events},
    }
