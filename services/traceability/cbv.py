"""CBV 2.0 standard vocabularies: the bare words of EPCIS JSON-LD, their URN and GS1 web URI forms.

The word lists are read from the EPCIS 2.0 JSON schema (one source): a bizStep, disposition, business transaction
type, source/destination type or error reason is a bare CBV word, its `urn:epcglobal:cbv:` URN or its
`https://ref.gs1.org/cbv/` web URI, or any other URI (a user vocabulary).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Literal

SCHEMA_PATH = Path(__file__).resolve().parent / "schema" / "epcis-json-schema.json"
WEB = "https://ref.gs1.org/cbv/"

Vocabulary = Literal["bizStep", "disposition", "bizTransaction-type", "source-dest-type", "error-reason"]
# vocabulary -> (web URI term prefix, URN prefix)
PREFIXES: dict[str, tuple[str, str]] = {
    "bizStep": ("BizStep-", "urn:epcglobal:cbv:bizstep:"),
    "disposition": ("Disp-", "urn:epcglobal:cbv:disp:"),
    "bizTransaction-type": ("BTT-", "urn:epcglobal:cbv:btt:"),
    "source-dest-type": ("SDT-", "urn:epcglobal:cbv:sdt:"),
    "error-reason": ("ER-", "urn:epcglobal:cbv:er:"),
}


@cache
def schema() -> dict[str, object]:
    """The EPCIS 2.0 JSON schema (parsed once)."""
    loaded: dict[str, object] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return loaded


@cache
def words(vocabulary: str) -> frozenset[str]:
    """The CBV 2.0 terms of one vocabulary, as bare words."""
    definitions = schema()["definitions"]
    assert isinstance(definitions, dict)
    for option in definitions[vocabulary]["anyOf"]:
        if "enum" in option:
            return frozenset(option["enum"])
    raise KeyError(vocabulary)


def word_of(vocabulary: str, value: str) -> str | None:
    """The bare CBV word that `value` names (a word, URN or web URI of the vocabulary), or None for a user URI.

    Raises ValueError for a value in the CBV's namespace that is not a CBV term (`urn:epcglobal:cbv:bizstep:foo`)."""
    web, urn = PREFIXES[vocabulary]
    for prefix in (WEB + web, urn):
        if value.startswith(prefix):
            word = value[len(prefix) :]
            if word not in words(vocabulary):
                raise ValueError(f"{value!r} is not a CBV 2.0 {vocabulary} term")
            return word
    if value in words(vocabulary):
        return value
    if value.startswith(("urn:epcglobal:cbv:", WEB)):
        raise ValueError(f"{value!r} is not a CBV 2.0 {vocabulary} term")
    return None


def web_uri(vocabulary: str, value: str) -> str:
    """The canonical form of a vocabulary value: the GS1 web URI of a CBV term, any other URI unchanged."""
    word = word_of(vocabulary, value)
    return value if word is None else WEB + PREFIXES[vocabulary][0] + word


def short(vocabulary: str, value: str) -> str:
    """The stored/queried form: the bare word of a CBV term, any other URI unchanged."""
    word = word_of(vocabulary, value)
    return value if word is None else word
