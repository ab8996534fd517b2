"""Code lists and identifier checks a declaration is validated against (ISO, UN/ECE, ICC, VNACCS, national tax ids)."""

from __future__ import annotations

import re
from functools import lru_cache

from stdnum import iso6346
from stdnum.exceptions import InvalidChecksum, ValidationError

from services.kernel.administration import check_mst, check_uscc

# Incoterms 2020 (ICC).
INCOTERMS_2020 = frozenset({"EXW", "FCA", "CPT", "CIP", "DAP", "DPU", "DDP", "FAS", "FOB", "CFR", "CIF"})

# UN/ECE Recommendation 20 units seen on goods lines at a land border (a subset of the full list).
UNECE_REC20_UNITS = frozenset(
    {
        "KGM", "TNE", "GRM", "LTR", "MTQ", "MTK", "MTR", "H87", "C62", "NAR", "NPR", "PR", "SET", "DZN",
        "XBX", "XCT", "XBG", "XPK", "XPX", "XCR", "XBE", "XBA", "XCS", "XSA", "XPA", "KWH", "LPA",
    }
)  # fmt: skip

# VNACCS type-of-declaration codes (Decision 1357/QĐ-TCHQ and its amendments), by direction.
IMPORT_PROCEDURES = frozenset(
    {
        "A11", "A12", "A21", "A31", "A41", "A42", "A43", "A44", "E11", "E13", "E15", "E21", "E23", "E31",
        "E33", "E41", "G11", "G12", "G13", "G14", "G51", "C11", "C21", "H11",
    }
)  # fmt: skip
EXPORT_PROCEDURES = frozenset(
    {
        "B11", "B12", "B13", "E42", "E52", "E54", "E62", "E82", "G21", "G22", "G23", "G24", "G61", "C12",
        "C22", "H21",
    }
)  # fmt: skip

HS_CODE = re.compile(r"^\d{8}$")
PLATE = re.compile(r"^[0-9A-Z\u4e00-\u9fff][0-9A-Z.\- \u4e00-\u9fff]{3,14}$")
SIZE_TYPE = re.compile(r"^[0-9A-Z]{2}[A-Z][0-9A-Z]$")


@lru_cache
def countries() -> frozenset[str]:
    """ISO 3166-1 alpha-2 codes."""
    import pycountry

    return frozenset(c.alpha_2 for c in pycountry.countries)


@lru_cache
def currencies() -> frozenset[str]:
    """ISO 4217 alphabetic codes."""
    import pycountry

    return frozenset(c.alpha_3 for c in pycountry.currencies)


def check_container_number(value: str) -> str | None:
    """None if `value` is a valid ISO 6346 container number, else a stable error code."""
    compact = value.replace(" ", "").upper()
    if not re.fullmatch(r"[A-Z]{3}[UJZ]\d{7}", compact):
        return "iso6346.format"
    try:
        iso6346.validate(compact)
    except InvalidChecksum:
        return "iso6346.check_digit"
    except ValidationError:
        return "iso6346.format"
    return None


# The national trader id checks live with the administration profiles (a party of either country is checked by its
# own country's scheme, whichever side files).
check_vn_tax_id = check_mst
check_cn_tax_id = check_uscc
