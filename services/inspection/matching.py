"""The gate decision: match what the cameras read to the declarations expected, then proceed or hold with reasons.

Pure functions over plain data, so every rule is testable without a database or a model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from biip.checksums import gs1_standard_check_digit

from ocr.iso6346 import differs_by_one_substitution

Decision = Literal["proceed", "hold"]
MatchKind = Literal["exact", "one_substitution", "qr", "none"]

# The fixed set of hold reasons (the officer console and the risk engine key on these names).
NO_CODE_READ = "no_code_read"
NO_DECLARATION = "no_declaration"
DECLARATION_NOT_CLEARED = "declaration_not_cleared"
CODE_UNVERIFIED = "code_unverified"
CONTAINER_NOT_ON_DECLARATION = "container_not_on_declaration"
SEAL_MISMATCH = "seal_mismatch"
ONE_SUBSTITUTION_MATCH = "one_substitution_match"
PALLET_NOT_ON_DECLARATION = "pallet_not_on_declaration"
PALLET_UNKNOWN = "pallet_unknown"
REASONS = (
    NO_CODE_READ,
    NO_DECLARATION,
    DECLARATION_NOT_CLEARED,
    CODE_UNVERIFIED,
    CONTAINER_NOT_ON_DECLARATION,
    SEAL_MISMATCH,
    ONE_SUBSTITUTION_MATCH,
    PALLET_NOT_ON_DECLARATION,
    PALLET_UNKNOWN,
)
# Reasons that say something about the declaration (not only about the camera): they raise its risk.
MISMATCH_REASONS = frozenset(
    {
        DECLARATION_NOT_CLEARED,
        CONTAINER_NOT_ON_DECLARATION,
        SEAL_MISMATCH,
        ONE_SUBSTITUTION_MATCH,
        PALLET_NOT_ON_DECLARATION,
        PALLET_UNKNOWN,
    }
)

# Declarations that no longer describe goods on the move are never matched (UCC: an invalidated declaration
# has no legal effect). An exited one still is, so a second pass through an exit lane is held, not waved on.
DEAD_STATUSES = frozenset({"cancelled", "expired", "rejected"})
# Entering the control zone needs a registered declaration; its review and inspection happen inside the zone.
ENTRY_STATUSES = frozenset({"submitted", "awaiting_documents", "inspection", "cleared", "released"})
# Leaving it needs the goods released.
EXIT_STATUSES = frozenset({"released"})

# Which candidate to prefer when one container is on several live declarations (containers are reused).
_STATUS_RANK = {"released": 0, "cleared": 1, "inspection": 2, "awaiting_documents": 2, "submitted": 2, "draft": 3}

_STATUS_ORDER = {"verified": 0, "corrected": 1, "check_digit_computed": 2, "failed": 3}

QR_PREFIX = "SGDECL:"
# A pallet's QR code: its GS1 Digital Link URI, on id.gs1.org or any resolver (`https://…/00/{sscc}`).
_PALLET_RE = re.compile(r"^https?://[^/?#\s]+(?:/[^?#\s]*)?/00/(?P<sscc>\d{18})(?:[/?#]\S*)?$")
_QR_RE = re.compile(r"^SGDECL:(?P<number>[A-Z0-9][A-Z0-9-]{2,31})(?:;sha256=(?P<sha>[0-9a-f]{64}))?$")


@dataclass(frozen=True, slots=True)
class Expected:
    """A declaration as the gate knows it (from the read model)."""

    declaration_id: str
    number: str | None
    status: str
    containers: tuple[tuple[str, tuple[str, ...]], ...]  # (number, seals)
    truck_plate: str | None = None
    body_sha256: str | None = None
    updated_order: int = 0  # larger = more recent (event sequence)
    organisation_id: str | None = None  # the trader's organisation, when the read model knows it

    @property
    def container_numbers(self) -> frozenset[str]:
        """The container numbers declared."""
        return frozenset(n for n, _ in self.containers)

    @property
    def seals(self) -> frozenset[str]:
        """Every seal declared on any of its containers."""
        return frozenset(normalise_seal(s) for _, seals in self.containers for s in seals)


@dataclass(frozen=True, slots=True)
class Code:
    """A container code read from one image."""

    code: str
    status: str
    image: int  # index of the image it came from
    primary: bool  # the image's best reading


@dataclass(frozen=True, slots=True)
class QrKey:
    """A declaration QR code: its registration number and, optionally, the hash of the body it was printed from."""

    number: str
    body_sha256: str | None


@dataclass(frozen=True, slots=True)
class Outcome:
    """The decision and everything it rests on."""

    decision: Decision
    reasons: list[str]
    match_kind: MatchKind
    declaration: Expected | None = None
    code: Code | None = None
    matched_container: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def mismatch(self) -> bool:
        """Whether this hold says something about the declaration (so its risk goes up)."""
        return self.decision == "hold" and self.declaration is not None and bool(MISMATCH_REASONS & set(self.reasons))


def normalise_code(text: str) -> str:
    """A container number without spaces, upper case."""
    return "".join(text.split()).upper()


def normalise_seal(text: str) -> str:
    """A seal number as compared: no spaces or dashes, upper case (seal printers differ in punctuation)."""
    return re.sub(r"[\s-]", "", text).upper()


def normalise_plate(text: str | None) -> str | None:
    """A plate as compared: letters and digits only (24C-123.45 and 24C12345 are the same truck)."""
    if not text:
        return None
    return re.sub(r"[^0-9A-Za-z]", "", text).upper() or None


def parse_qr(data: str) -> QrKey | None:
    """A declaration key from a QR payload `SGDECL:<number>[;sha256=<hex>]`, or None for any other QR."""
    m = _QR_RE.match(data.strip())
    if m is None:
        return None
    return QrKey(m.group("number"), m.group("sha"))


def parse_pallet(data: str) -> str | None:
    """The SSCC of a pallet's GS1 Digital Link QR payload (check digit verified), or None for any other QR."""
    m = _PALLET_RE.match(data.strip())
    if m is None:
        return None
    sscc = m.group("sscc")
    return sscc if str(gs1_standard_check_digit(sscc[:-1])) == sscc[-1] else None


def pallets_of(barcodes: list[dict[str, str]]) -> list[str]:
    """The pallets (SSCCs) whose Digital Link QR codes were read, once each, in reading order."""
    out: list[str] = []
    for b in barcodes:
        sscc = parse_pallet(b["data"]) if b["type"] == "QRCODE" else None
        if sscc is not None and sscc not in out:
            out.append(sscc)
    return out


def split_barcodes(barcodes: list[dict[str, str]]) -> tuple[list[str], list[QrKey]]:
    """Seal numbers (1-D barcodes) and declaration keys (QR codes) among the symbols read."""
    seals: list[str] = []
    keys: list[QrKey] = []
    for b in barcodes:
        if b["type"] == "QRCODE":
            key = parse_qr(b["data"])
            if key is not None and key not in keys:
                keys.append(key)
        else:
            seal = normalise_seal(b["data"])
            if seal and seal not in seals:
                seals.append(seal)
    return seals, keys


def codes_of(reads: list[dict[str, Any]]) -> list[Code]:
    """Every distinct code read, best first: primaries (each image's top reading) before alternatives,
    verified before anything else."""
    seen: dict[str, Code] = {}
    for index, read in enumerate(reads):
        for rank, c in enumerate(read.get("container_codes", [])):
            code = Code(normalise_code(c["code"]), c["status"], index, rank == 0)
            old = seen.get(code.code)
            if old is None or _code_key(code) < _code_key(old):
                seen[code.code] = code
    return sorted(seen.values(), key=_code_key)


def _code_key(c: Code) -> tuple[int, int, int]:
    return (0 if c.primary else 1, _STATUS_ORDER.get(c.status, 9), c.image)


def near_patterns(code: str) -> list[str]:
    """SQL LIKE patterns matching every code that differs from `code` in exactly one position (or equals it)."""
    return [code[:i] + "_" + code[i + 1 :] for i in range(len(code))]


def pick(candidates: list[Expected], *, prefer_number: str | None = None) -> Expected | None:
    """The declaration to match among several live ones: the one the QR names, else the furthest along, else
    the most recently changed."""
    live = [c for c in candidates if c.status not in DEAD_STATUSES]
    if not live:
        return None
    if prefer_number:
        named = [c for c in live if c.number == prefer_number]
        if named:
            live = named
    return min(live, key=lambda c: (_STATUS_RANK.get(c.status, 4), -c.updated_order))


def decide(  # noqa: C901 - the gate's decision table, readable as one table
    *,
    direction: str,
    reads: list[dict[str, Any]],
    exact: dict[str, list[Expected]],
    near: dict[str, list[Expected]],
    by_number: dict[str, Expected],
    plate: str | None = None,
    pallet_owners: dict[str, frozenset[str]] | None = None,
) -> Outcome:
    """Decide proceed or hold for one gate event.

    `reads` are the per-image OCR results (`GateRead.to_dict()` form); `exact[code]` the live declarations that
    declare `code`; `near[code]` those declaring a container one substitution away from `code`; `by_number` the
    declarations named by QR codes; `pallet_owners[sscc]` the declarations that draw on each pallet whose QR code
    was read (a pallet none draws on is unknown, one only others draw on is foreign: both hold). Proceed only on
    a verified code read that is exactly on a declaration whose status lets the truck through this way, with no
    seal read that was not declared, no unknown or foreign pallet, and nothing contradicting.
    """
    codes = codes_of(reads)
    seals_read, qr_keys = split_barcodes([b for r in reads for b in r.get("barcodes", [])])
    qr = qr_keys[0] if qr_keys else None
    reasons: list[str] = []
    evidence: dict[str, Any] = {"seals_read": seals_read, "codes_read": [c.code for c in codes]}
    if qr is not None:
        evidence["qr"] = {"number": qr.number, "body_sha256": qr.body_sha256}

    kind: MatchKind = "none"
    decl: Expected | None = None
    used: Code | None = None
    container: str | None = None
    prefer = qr.number if qr else None
    # 1. Exact: the best reading that is on a live declaration (verified readings are tried first).
    for c in codes:
        found = pick(exact.get(c.code, []), prefer_number=prefer)
        if found is not None:
            kind, decl, used, container = "exact", found, c, c.code
            break
    # 2. One substitution away from a declared container: a likely misread or a typo, flagged and never trusted.
    if decl is None:
        for c in codes:
            options = [
                e
                for e in near.get(c.code, [])
                if any(differs_by_one_substitution(c.code, n) for n in e.container_numbers)
            ]
            found = pick(options, prefer_number=prefer)
            if found is not None:
                kind, decl, used = "one_substitution", found, c
                container = next(n for n in sorted(found.container_numbers) if differs_by_one_substitution(c.code, n))
                break
    # 3. Only the QR code names a declaration.
    if decl is None and qr is not None:
        found = by_number.get(qr.number)
        if found is not None and found.status not in DEAD_STATUSES:
            kind, decl = "qr", found

    if not codes:
        reasons.append(NO_CODE_READ)
    if decl is None:
        if codes:
            reasons.append(NO_DECLARATION)
        return Outcome("hold", _ordered(reasons), kind, evidence=evidence)

    if kind == "qr" and codes:
        reasons.append(CONTAINER_NOT_ON_DECLARATION)
    if kind == "one_substitution":
        reasons.append(ONE_SUBSTITUTION_MATCH)
    if used is not None and used.status != "verified":
        reasons.append(CODE_UNVERIFIED)
    allowed = EXIT_STATUSES if direction == "out" else ENTRY_STATUSES
    if decl.status not in allowed:
        reasons.append(DECLARATION_NOT_CLEARED)
    # Another verified container on the truck that this declaration does not list.
    others = [c.code for c in codes if c.primary and c.status == "verified" and c.code not in decl.container_numbers]
    if kind == "exact" and others:
        reasons.append(CONTAINER_NOT_ON_DECLARATION)
        evidence["undeclared_containers"] = others
    # The QR code names another declaration than the container's.
    if qr is not None and kind != "qr" and qr.number != decl.number:
        reasons.append(CONTAINER_NOT_ON_DECLARATION)
    declared_seals = decl.seals
    foreign = [s for s in seals_read if s not in declared_seals]
    if declared_seals and foreign:
        reasons.append(SEAL_MISMATCH)
        evidence["undeclared_seals"] = foreign
    evidence["declared_seals"] = sorted(declared_seals)
    evidence["declaration_status"] = decl.status
    if qr is not None and qr.body_sha256 is not None and decl.body_sha256 is not None:
        # Informational: a stale printout (the declaration was amended since) is for the officer to see.
        evidence["qr"]["body_current"] = qr.body_sha256 == decl.body_sha256
    pallets = pallets_of([b for r in reads for b in r.get("barcodes", [])])
    if pallets:
        owners = pallet_owners or {}
        unknown = [p for p in pallets if not owners.get(p)]
        foreign = [p for p in pallets if owners.get(p) and decl.declaration_id not in owners[p]]
        evidence["pallets_read"] = pallets
        if unknown:
            reasons.append(PALLET_UNKNOWN)
            evidence["unknown_pallets"] = unknown
        if foreign:
            reasons.append(PALLET_NOT_ON_DECLARATION)
            evidence["foreign_pallets"] = foreign
    read_plate, declared_plate = normalise_plate(plate), normalise_plate(decl.truck_plate)
    if read_plate and declared_plate:
        evidence["plate_matches"] = read_plate == declared_plate

    reasons = _ordered(reasons)
    decision: Decision = "proceed" if not reasons and kind == "exact" else "hold"
    return Outcome(decision, reasons, kind, decl, used, container, evidence)


def _ordered(reasons: list[str]) -> list[str]:
    """Reasons once each, in the fixed order of REASONS (stable output for clients and tests)."""
    present = set(reasons)
    return [r for r in REASONS if r in present]
