"""GS1 identifiers: EPC URIs and Digital Link URIs to one canonical form; check digits refused when wrong."""

from __future__ import annotations

import random

import pytest

from services.traceability import identifiers
from tests.services.traceability.generate import gln, gtin, sscc


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("urn:epc:id:sgtin:0614141.107346.2017", "https://id.gs1.org/01/10614141073464/21/2017"),
        ("urn:epc:id:sscc:0614141.1234567890", "https://id.gs1.org/00/106141412345678908"),
        ("urn:epc:id:sgln:0614141.07346.1234", "https://id.gs1.org/414/0614141073467/254/1234"),
        ("urn:epc:id:sgln:0614141.07346.0", "https://id.gs1.org/414/0614141073467"),
        ("urn:epc:id:pgln:0614141.00000", "https://id.gs1.org/417/0614141000005"),
        ("urn:epc:class:lgtin:4012345.012345.998877", "https://id.gs1.org/01/04012345123456/10/998877"),
        ("urn:epc:idpat:sgtin:4012345.012345.*", "https://id.gs1.org/01/04012345123456"),
        ("https://example.com/01/09520123456788/10/LOT1/21/s2?x=1", "https://id.gs1.org/01/09520123456788/21/s2"),
        ("https://id.gs1.org/01/4012345123456", "https://id.gs1.org/01/04012345123456"),
        ("urn:uuid:6d9c2a58-3c2b-4a55-9e1e-1a2b3c4d5e6f", None),
    ],
)
def test_canonical_forms(uri: str, expected: str | None) -> None:
    assert identifiers.canonical(uri) == expected


@pytest.mark.parametrize(
    "uri",
    ["https://id.gs1.org/01/09520123456789", "urn:epc:id:sgtin:0614141.10734.2017", "https://id.gs1.org/00/12345"],
)
def test_bad_keys_are_refused(uri: str) -> None:
    with pytest.raises(identifiers.IdentifierError):
        identifiers.canonical(uri)


def test_the_fast_path_answers_as_biip_does() -> None:
    rng = random.Random(9)
    uris = []
    for _ in range(300):
        serial, batch = rng.randint(1, 9999), rng.randint(1, 99)
        uris += [f"https://id.gs1.org/01/{gtin(rng)}/21/S{serial}", f"https://id.gs1.org/00/{sscc(rng)}",
                 f"https://id.gs1.org/414/{gln(rng)}", f"https://id.gs1.org/01/{gtin(rng)}/10/L{batch}"]  # fmt: skip
    wrong = [u[:-1] + str((int(u[-1]) + 1) % 10) for u in uris if u[-1].isdigit() and "/21/" not in u]
    for uri in uris + wrong:
        plain = identifiers._plain(uri)
        try:
            expected: str | None = identifiers._digital_link(uri).uri
        except identifiers.IdentifierError:
            expected = None
        assert plain in (None, expected), uri
        assert (plain is None) == (expected is None), uri


def test_gtin_gln_sscc_check_digits() -> None:
    assert identifiers.gtin("9520123456788") == "09520123456788"
    assert identifiers.gln("8930001000001") == "8930001000001"
    assert identifiers.sscc("089300010000000179") == "089300010000000179"
    for check, bad in ((identifiers.gtin, "9520123456789"), (identifiers.gln, "8930001000002"),
                       (identifiers.sscc, "089300010000000170")):  # fmt: skip
        with pytest.raises(identifiers.IdentifierError):
            check(bad)
