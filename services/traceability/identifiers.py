"""GS1 identifiers: EPC URIs and GS1 Digital Link URIs to one canonical form, with check digits verified.

Parsing and check digits come from `biip` (a maintained GS1 library: GTIN, GLN, SSCC, Application Identifiers,
Digital Link URIs). EPC URIs (`urn:epc:id:sgtin:…`, TDS 2.0) are not part of biip: they are rewritten here into
element strings (the URN carries the company prefix and reference, the check digit is computed) and then go through
biip like any Digital Link URI.

The canonical form is the *constrained* GS1 Digital Link URI of CBV 2.0's event hash rules: domain `id.gs1.org`, no
query string, only the most specific key and its key qualifier (e.g. `/01/{gtin}/21/{serial}`, not the lot as well).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import quote, unquote, urlsplit

from biip import ParseError
from biip.checksums import gs1_standard_check_digit
from biip.gln import Gln
from biip.gs1_digital_link_uris import GS1DigitalLinkURI
from biip.gtin import Gtin
from biip.sscc import Sscc

ID_GS1 = "https://id.gs1.org"

# Primary keys and the qualifiers kept by the constrained canonical form, most specific first.
_KEEP: dict[str, tuple[tuple[str, ...], ...]] = {
    "00": ((),),
    "01": (("21",), ("10",), ("235",), ()),
    "253": ((),),
    "255": ((),),
    "401": ((),),
    "402": ((),),
    "414": (("254",), ()),
    "417": ((),),
    "8003": ((),),
    "8004": ((),),
    "8006": (("21",), ("10",), ()),
    "8010": (("8011",), ()),
    "8017": ((),),
    "8018": ((),),
}


class IdentifierError(ValueError):
    """Not a valid GS1 identifier (syntax or check digit)."""


@dataclass(frozen=True, slots=True)
class Parsed:
    """A GS1 key with its qualifiers, as (AI, value) pairs in URI order."""

    pairs: tuple[tuple[str, str], ...]

    @property
    def uri(self) -> str:
        """The constrained canonical GS1 Digital Link URI."""
        return ID_GS1 + "".join(f"/{ai}/{quote(value, safe='')}" for ai, value in self.pairs)


def _digits(text: str, what: str) -> str:
    if not text.isdigit():
        raise IdentifierError(f"{what}: {text!r} is not numeric")
    return text


def _with_check(body: str) -> str:
    return body + str(gs1_standard_check_digit(body))


def _epc_parts(uri: str, scheme: str, count: int) -> list[str]:
    parts = uri.split(":", 4)[4].split(".")
    if len(parts) != count:
        raise IdentifierError(f"{uri!r}: an EPC {scheme} URI has {count} dot-separated parts")
    return parts


def _epc_uri(uri: str) -> Parsed:  # noqa: C901 - one branch per EPC scheme of TDS 2.0 that CBV uses
    """`urn:epc:id|class|idpat:SCHEME:…` → the key pairs."""
    match = re.fullmatch(r"urn:epc:(id|class|idpat):([a-z0-9]+):(.+)", uri)
    if not match:
        raise IdentifierError(f"{uri!r} is not an EPC URI")
    kind, scheme = match.group(1), match.group(2)
    if kind == "idpat":
        if scheme != "sgtin":
            raise IdentifierError(f"{uri!r}: only sgtin patterns are supported")
        cp, iir, serial = _epc_parts(uri, scheme, 3)
        if serial != "*":
            raise IdentifierError(f"{uri!r}: the pattern's serial must be '*'")
        return Parsed((("01", _gtin(cp, iir)),))
    if kind == "class":
        if scheme != "lgtin":
            raise IdentifierError(f"{uri!r}: only lgtin classes are supported")
        cp, iir, lot = _epc_parts(uri, scheme, 3)
        return Parsed((("01", _gtin(cp, iir)), ("10", unquote(lot))))
    if scheme == "sgtin":
        cp, iir, serial = _epc_parts(uri, scheme, 3)
        return Parsed((("01", _gtin(cp, iir)), ("21", unquote(serial))))
    if scheme == "sscc":
        cp, ref = _epc_parts(uri, scheme, 2)
        _digits(cp + ref, uri)
        if len(cp) + len(ref) != 17:
            raise IdentifierError(f"{uri!r}: company prefix and serial reference make 17 digits")
        return Parsed((("00", _with_check(ref[0] + cp + ref[1:])),))
    if scheme in ("sgln", "pgln"):
        parts = _epc_parts(uri, scheme, 3 if scheme == "sgln" else 2)
        cp, ref = parts[0], parts[1]
        if len(_digits(cp + ref, uri)) != 12:
            raise IdentifierError(f"{uri!r}: company prefix and location reference make 12 digits")
        gln = _with_check(cp + ref)
        if scheme == "pgln":
            return Parsed((("417", gln),))
        ext = unquote(parts[2])
        return Parsed((("414", gln),) if ext == "0" else (("414", gln), ("254", ext)))
    if scheme == "grai":
        cp, ref, serial = _epc_parts(uri, scheme, 3)
        if len(_digits(cp + ref, uri)) != 12:
            raise IdentifierError(f"{uri!r}: company prefix and asset type make 12 digits")
        return Parsed((("8003", "0" + _with_check(cp + ref) + unquote(serial)),))
    if scheme == "giai":
        cp, ref = _epc_parts(uri, scheme, 2)
        return Parsed((("8004", _digits(cp, uri) + unquote(ref)),))
    if scheme == "gdti":
        cp, ref, serial = _epc_parts(uri, scheme, 3)
        if len(_digits(cp + ref, uri)) != 12:
            raise IdentifierError(f"{uri!r}: company prefix and document type make 12 digits")
        return Parsed((("253", _with_check(cp + ref) + unquote(serial)),))
    raise IdentifierError(f"{uri!r}: EPC scheme {scheme!r} is not supported")


def _gtin(cp: str, iir: str) -> str:
    """GTIN-14 from an EPC's company prefix and indicator + item reference."""
    if len(_digits(cp + iir, "GTIN")) != 13 or not iir:
        raise IdentifierError(f"GTIN: company prefix {cp!r} and item reference {iir!r} must make 13 digits")
    return _with_check(iir[0] + cp + iir[1:])


def _digital_link(uri: str) -> Parsed:
    """Any GS1 Digital Link URI (any domain) → the key pairs of its constrained canonical form."""
    try:
        link = GS1DigitalLinkURI.parse(uri)
    except ParseError as exc:
        raise IdentifierError(f"{uri!r}: {exc}") from exc
    found: dict[str, str] = {}
    for element in link.element_strings:
        if element.gtin_error or element.sscc_error or element.gln_error:
            raise IdentifierError(f"{uri!r}: {element.gtin_error or element.sscc_error or element.gln_error}")
        value = element.value
        if element.ai.ai in ("01", "02") and element.gtin is not None:
            value = element.gtin.as_gtin_14()
        found[element.ai.ai] = value
    for key, choices in _KEEP.items():
        if key in found:
            for qualifiers in choices:
                if all(q in found for q in qualifiers):
                    return Parsed(((key, found[key]), *((q, found[q]) for q in qualifiers)))
    raise IdentifierError(f"{uri!r}: no GS1 primary key")


# Already canonical and plain (digits, and serials/lots of letters and digits): checked here without the general
# parser (a third of capture's cost); anything else goes through biip. A test holds the two to the same answers.
_PLAIN = re.compile(
    r"https://id\.gs1\.org/(?:(00)/(\d{18})|(01)/(\d{14})(?:/(21|10)/([A-Za-z0-9]{1,20}))?"
    r"|(414)/(\d{13})(?:/(254)/([A-Za-z0-9]{1,20}))?|(417)/(\d{13}))"
)


def _plain(uri: str) -> str | None:
    match = _PLAIN.fullmatch(uri)
    if match is None:
        return None
    groups = [g for g in match.groups() if g is not None]
    key = groups[1]
    if key[-1] != str(gs1_standard_check_digit(key[:-1])):
        return None  # biip words the error
    if groups[0] == "414" and len(groups) == 4 and groups[3] == "0":
        return None
    return uri


@lru_cache(maxsize=65_536)
def canonical(uri: str) -> str | None:
    """The constrained canonical GS1 Digital Link URI of an EPC URI or Digital Link URI; None for a URI that is
    neither (a private identifier, kept as it is). Raises IdentifierError for a malformed GS1 identifier.

    Cached: validation, the event hash and the EPC index each ask for the same URIs, and Digital Link parsing is the
    larger part of the hash's cost."""
    if uri.startswith(("urn:epc:id:", "urn:epc:class:", "urn:epc:idpat:")):
        return _epc_uri(uri).uri
    if (plain := _plain(uri)) is not None:
        return plain
    parts = urlsplit(uri)
    if parts.scheme in ("http", "https") and re.search(
        r"/(00|01|253|255|401|402|414|417|8003|8004|8006|8010|8017|8018)/", parts.path
    ):
        return _digital_link(uri).uri
    return None


def normalise(uri: str) -> str:
    """`canonical(uri)`, or the URI itself when it is not a GS1 identifier."""
    return canonical(uri) or uri


def gtin(value: str) -> str:
    """A GTIN (8, 12, 13 or 14 digits) with a valid check digit, as GTIN-14."""
    try:
        return Gtin.parse(value).as_gtin_14()
    except ParseError as exc:
        raise IdentifierError(str(exc)) from exc


def gln(value: str) -> str:
    """A 13-digit GLN with a valid check digit."""
    try:
        return Gln.parse(value).value
    except ParseError as exc:
        raise IdentifierError(str(exc)) from exc


def sscc(value: str) -> str:
    """An 18-digit SSCC with a valid check digit."""
    try:
        return Sscc.parse(value).value
    except ParseError as exc:
        raise IdentifierError(str(exc)) from exc
