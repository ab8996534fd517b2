"""What the scenarios share: API keys, declaration bodies, response checks and a claim board."""

from __future__ import annotations

import copy
import datetime as dt
import functools
import json
import os
import random
import re
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stdnum import iso6346

if TYPE_CHECKING:  # importing locust monkey-patches the process (gevent); keep this module importable without it
    from locust.clients import ResponseContextManager

API = "/api/v1"
ROLES = ("trader", "officer", "admin", "treasury")
# Owner prefixes seen at the crossing (carrier or leasing company) + "U" for a freight container.
OWNER_CODES = ("CSQU", "MSKU", "TGHU", "OOLU", "CMAU", "TCNU")
_EXPORT_LINE = re.compile(r"^\s*(?:export\s+)?([A-Z][A-Z0-9_]*)=(.*)$")


class MissingKeys(RuntimeError):
    """The scenarios were started without the API keys they need."""


@dataclass(frozen=True)
class Keys:
    """The API keys the simulated users present."""

    trader: str
    officer: str
    admin: str | None = None
    # Confirms the trader's payments (without it the documents flow claims payments but releases nothing).
    treasury: str | None = None


EXAMPLE_FILE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "declaration.json"


@functools.lru_cache(maxsize=1)
def example_body() -> dict[str, Any]:
    """The documented example declaration (the same body as in /docs): load tests are clients, not service code."""
    return json.loads(EXAMPLE_FILE.read_text(encoding="utf-8"))


def parse_env_file(text: str) -> dict[str, str]:
    """`NAME=value` and `export NAME=value` lines of a `var/demo.env`-style file (shell quoting allowed)."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        if match := _EXPORT_LINE.match(line):
            raw = match.group(2).strip()
            # As the shell reads it: quotes removed; an unquoted space ends the value.
            values[match.group(1)] = shlex.split(raw)[0] if raw else ""
    return values


def load_keys(environ: Mapping[str, str]) -> Keys:
    """Keys from `SMARTGATE_LOAD_<ROLE>_KEY`, else from the file named by `SMARTGATE_LOAD_KEYS_FILE`."""
    from_file: dict[str, str] = {}
    if path := environ.get("SMARTGATE_LOAD_KEYS_FILE"):
        try:
            from_file = parse_env_file(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise MissingKeys(f"cannot read SMARTGATE_LOAD_KEYS_FILE={path}: {exc.strerror}") from exc
    found = {
        role: environ.get(f"SMARTGATE_LOAD_{role.upper()}_KEY") or from_file.get(f"{role.upper()}_KEY")
        for role in ROLES
    }
    missing = [role for role in ("trader", "officer") if not found[role]]
    if missing:
        names = ", ".join(f"SMARTGATE_LOAD_{role.upper()}_KEY" for role in missing)
        raise MissingKeys(f"no API key for {', '.join(missing)}: set {names} or SMARTGATE_LOAD_KEYS_FILE")
    return Keys(trader=str(found["trader"]), officer=str(found["officer"]), admin=found["admin"],
                treasury=found["treasury"])  # fmt: skip


@functools.cache
def keys() -> Keys:
    """The keys of this run, read once at first use (not at import, so `locust --help` works without them)."""
    return load_keys(os.environ)


def container_number(rng: random.Random) -> str:
    """A random container number with a valid ISO 6346 check digit."""
    stem = rng.choice(OWNER_CODES) + f"{rng.randrange(1_000_000):06d}"
    return stem + iso6346.calc_check_digit(stem)


def declaration_body(rng: random.Random, *, now: dt.datetime | None = None) -> dict[str, Any]:
    """The README's lychee import with its own container and quantity (masses, value and totals kept consistent)."""
    now = now or dt.datetime.now(dt.UTC)
    body = copy.deepcopy(example_body())
    net_kg = rng.randrange(8_000, 20_001, 250)
    gross_kg = net_kg + net_kg // 12  # cartons and pallets
    # The example's unit price (0.80 USD/kg), so the unit-value risk rule sees ordinary traffic.
    value = (Decimal(net_kg) * Decimal("0.80")).quantize(Decimal("0.01"))
    item = body["items"][0]
    item.update(quantity=str(net_kg), net_mass_kg=str(net_kg), gross_mass_kg=str(gross_kg), customs_value=str(value))
    body["total_net_mass_kg"] = str(net_kg)
    body["total_gross_mass_kg"] = str(gross_kg)
    body["containers"][0]["number"] = container_number(rng)
    # Dates relative to today, so the body stays valid whatever day the run is.
    body["transport"]["expected_arrival"] = (now + dt.timedelta(hours=20)).isoformat(timespec="seconds")
    body["preferential_origin"]["issued_on"] = (now.date() - dt.timedelta(days=7)).isoformat()
    return body


def ok_json(response: ResponseContextManager, status: int) -> Any:
    """The JSON of a response with the expected status; anything else is marked as a failure and gives None."""
    if response.status_code != status:
        response.failure(f"expected {status}, got {response.status_code}: {response.text[:300]}")
        return None
    try:
        return response.json()
    except ValueError:
        response.failure(f"expected JSON, got {response.text[:100]!r}")
        return None


# States an officer decides on; awaiting_documents is the trader's move.
DECIDABLE = ("submitted", "inspection")


def outcome_for(decl: dict[str, Any], *, has_documents: bool) -> str:
    """The officer's policy: inspect red, clear after inspection or once documents are in, else ask for them."""
    if decl["status"] == "inspection":
        return "clear"
    if decl["channel"] == "red":
        return "inspect"
    return "clear" if has_documents else "request_documents"


class ClaimBoard:
    """Claims on (declaration id, ETag), so two simulated users never act on the same state of a declaration.

    Every user of a locust process shares one board; gevent switches only on I/O, so `claim` is atomic. A new
    state has a new ETag, so a declaration can be claimed again once someone has acted on it.
    """

    def __init__(self) -> None:
        """An empty board."""
        self._taken: set[tuple[str, str]] = set()

    def claim(self, declarations: Iterable[dict[str, Any]], *, statuses: Iterable[str]) -> dict[str, Any] | None:
        """The first declaration in one of `statuses` whose current state nobody has claimed yet (now claimed)."""
        wanted = set(statuses)
        for decl in declarations:
            key = (decl["id"], decl["etag"])
            if decl["status"] in wanted and key not in self._taken:
                self._taken.add(key)
                return decl
        return None


BOARD = ClaimBoard()
