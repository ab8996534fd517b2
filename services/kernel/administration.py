"""Which side of the border this deployment is: the customs administration profile (`SMARTGATE_ADMINISTRATION`).

One codebase runs either side of the Kim Thành – Hà Khẩu crossing. A profile fixes what differs between the two
administrations: the trader id scheme (Vietnam's MST, China's unified social credit code), the currency duties are
assessed in, the national tariff file the database is seeded with, the console's default language, the gate code and
the ledger's origin line. Everything else reads the own side from here:

    from services.kernel.administration import administration
    administration(runtime.settings).code        # "vn-kimthanh" | "cn-hekou"

Explicit settings still win over the profile's defaults (`SMARTGATE_GATE_CODE`, `SMARTGATE_LEDGER_ORIGIN`).

Trader ids (checked with python-stdnum, whose rules match the published ones; tests/services/kernel/
test_administration.py checks them against an independent implementation and real published ids):

- **MST** (mã số thuế, Vietnam; Circular 105/2020/TT-BTC, Art. 5): 10 digits — two of province, seven of sequence,
  and a check digit, `10 - (Σ dᵢ·wᵢ mod 11)` with weights 31 29 23 19 17 13 7 5 3 over the first nine — or 13 for a
  dependent unit (branch): the parent's 10 and a three-digit suffix 001-999, usually written `0100233488-001`.
  Since 1 July 2025 an individual's tax id is the 12-digit personal identification number (Circular 86/2024/TT-BTC);
  a trader at the border files as an enterprise, so 12-digit ids are not accepted as trader ids here.
- **USCC** (统一社会信用代码, China; GB 32100-2015): 18 characters over `0-9 A-H J-N P-R T U W-Y` (no I O S V Z):
  registering authority, entity type, six-digit region code, the nine-character organisation code (GB 11714) and a
  check character: weights `3^i mod 31` (1 3 9 27 19 26 16 17 20 29 25 13 8 24 10 30 28), `31 - (Σ mod 31)`, 31 → 0,
  as the character of that value in the alphabet above.

UN/LOCODE: no entry for the Kim Thành road border gate or for the Hekou road port could be confirmed against the
UNECE table when this was written (no offline copy of the code list), so `locode` is empty on both profiles and the
gate codes are the platform's own (KIMTHANH, the existing Vietnamese one; HEKOU). Fill `locode` from the UNECE
table (https://unece.org/trade/uncefact/unlocode, countries VN and CN) before exchanging it with a third party.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from stdnum.cn import uscc
from stdnum.exceptions import InvalidChecksum, ValidationError
from stdnum.vn import mst

DEFAULT = "vn-kimthanh"
_DATA = Path(__file__).resolve().parents[1] / "declarations" / "data"


def check_mst(value: str) -> str | None:
    """None if `value` is a valid Vietnamese MST (10 digits, or 10-3 / 13 digits for a branch), else an error code."""
    if not re.fullmatch(r"\d{10}(-?\d{3})?", value):
        return "vn_mst.format"
    try:
        mst.validate(value)
    except InvalidChecksum:
        return "vn_mst.check_digit"
    except ValidationError:
        return "vn_mst.format"
    return None


def check_uscc(value: str) -> str | None:
    """None if `value` is a valid unified social credit code (GB 32100-2015), else an error code."""
    if not re.fullmatch(r"[0-9A-HJ-NPQRTUWXY]{18}", value):
        return "cn_uscc.format"
    try:
        uscc.validate(value)
    except InvalidChecksum:
        return "cn_uscc.check_character"
    except ValidationError:
        return "cn_uscc.format"
    return None


TRADER_ID_CHECKS: dict[str, Callable[[str], str | None]] = {"mst": check_mst, "uscc": check_uscc}
TRADER_ID_NAMES = {"mst": "Vietnamese MST", "uscc": "unified social credit code"}


@dataclass(frozen=True)
class Administration:
    """One customs administration's profile: what differs between the two sides of the crossing."""

    code: Literal["vn-kimthanh", "cn-hekou"]
    country: Literal["VN", "CN"]
    name: str
    gate_code: str
    gate_name: str
    currency: Literal["VND", "CNY"]
    default_locale: Literal["vi", "zh_Hans"]
    trader_id_scheme: Literal["mst", "uscc"]
    tariff_file: Path
    ledger_origin: str
    # The witness this side runs for the partner's log is named after it (a schema-less URL, C2SP style).
    witness_name: str
    timezone: str
    locode: str | None = None

    def check_trader_id(self, value: str) -> str | None:
        """None if `value` is a valid trader id of this side's scheme, else a stable error code."""
        return TRADER_ID_CHECKS[self.trader_id_scheme](value)

    @property
    def trader_id_name(self) -> str:
        return TRADER_ID_NAMES[self.trader_id_scheme]

    @property
    def partner(self) -> Administration:
        """The administration across the border."""
        return PROFILES["cn-hekou" if self.code == "vn-kimthanh" else "vn-kimthanh"]


PROFILES: dict[str, Administration] = {
    "vn-kimthanh": Administration(
        code="vn-kimthanh",
        country="VN",
        name="Lào Cai Customs – Kim Thành road border gate",
        gate_code="KIMTHANH",
        gate_name="Cửa khẩu quốc tế đường bộ số II Kim Thành",
        currency="VND",
        default_locale="vi",
        trader_id_scheme="mst",
        tariff_file=_DATA / "tariff_seed.csv",
        ledger_origin="kimthanh.smartgate/ledger",
        witness_name="witness.kimthanh.smartgate",
        timezone="Asia/Ho_Chi_Minh",
    ),
    "cn-hekou": Administration(
        code="cn-hekou",
        country="CN",
        name="Hekou Customs – Hekou (Bắc Sơn) road port",
        gate_code="HEKOU",
        gate_name="河口公路口岸 (北山)",
        currency="CNY",
        default_locale="zh_Hans",
        trader_id_scheme="uscc",
        tariff_file=_DATA / "tariff_cn_sample.csv",
        ledger_origin="hekou.smartgate/ledger",
        witness_name="witness.hekou.smartgate",
        timezone="Asia/Shanghai",
    ),
}


def profile(code: str) -> Administration:
    """The profile named `code`; ValueError (one line, naming the known ones) for any other."""
    found = PROFILES.get(code)
    if found is None:
        raise ValueError(f"unknown administration {code!r}; known: {', '.join(sorted(PROFILES))}")
    return found


def administration(settings: Any = None) -> Administration:
    """The own side: the profile of `settings.administration` (the process's settings when None)."""
    if settings is None:
        from services.kernel.settings import get_settings

        settings = get_settings()
    return profile(getattr(settings, "administration", DEFAULT) or DEFAULT)
