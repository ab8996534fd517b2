"""What the catalog tests share: re-extracting a domain from the code, and reading its .po files."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent
TRANSLATED = ("vi", "zh_Hans")
PLACEHOLDER = re.compile(r"%\((\w+)\)[sdr]")

# Where each domain's texts are written, and where its catalogs live (docs/i18n.md).
DOMAINS: dict[str, dict[str, Any]] = {
    "problems": {"locale": ROOT / "services/kernel/locale", "sources": [ROOT / "services", ROOT / "api"]},
    "console": {"locale": ROOT / "api/console/locale", "sources": [ROOT / "api/console"]},
    "trace": {"locale": ROOT / "services/traceability/locale", "sources": [ROOT / "services/traceability"]},
}


def extracted(domain: str) -> set[Any]:
    """The msgids `make messages` would write into the domain's .pot now."""
    spec = DOMAINS[domain]
    with (spec["locale"] / "babel.cfg").open() as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    ids: set[Any] = set()
    for source in spec["sources"]:
        for _file, _line, message, _comments, _context in extract_from_dir(source, method_map, options_map):
            ids.add(message)
    return ids


def template(domain: str) -> Catalog:
    with (DOMAINS[domain]["locale"] / f"{domain}.pot").open("rb") as handle:
        return read_po(handle)


def translations(domain: str, language: str) -> Catalog:
    path = DOMAINS[domain]["locale"] / language / "LC_MESSAGES" / f"{domain}.po"
    with path.open("rb") as handle:
        return read_po(handle, locale=language)


def placeholders(text: str) -> set[str]:
    return set(PLACEHOLDER.findall(text))
