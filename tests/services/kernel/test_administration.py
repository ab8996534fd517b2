"""Administration profiles (services/kernel/administration.py): each side's trader id scheme checked against real
published ids and an independent implementation of the check digit, currency, console language, gate code, ledger
origin and national tariff; the default profile changes nothing; an unknown profile stops the process in one line."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from services.declarations import codes
from services.declarations.tariff import parse_csv
from services.kernel.administration import DEFAULT, PROFILES, administration, check_mst, check_uscc, profile
from services.kernel.migrate import upgrade
from services.kernel.settings import KernelSettings
from services.provenance.settings import ProvenanceSettings, provenance_settings

SMARTGATE = str(Path(sys.executable).parent / "smartgate")

# Enterprise tax codes as the companies publish them (invoices, annual reports, the national business register).
MST_PUBLISHED = {
    "0100107518": "Vietnam Airlines JSC",
    "0100109106": "Viettel Group",
    "0300588569": "Vietnam Dairy Products JSC (Vinamilk)",
    "0101248141": "FPT Corporation",
    "0100233488": "python-stdnum's documented example",
    "0314409058-002": "a branch (13 digits: parent's 10 + 002), python-stdnum's example",
    "0314409058002": "the same branch written as 13 digits, without the dash",
}
# Unified social credit codes as shown on the companies' business licences (国家企业信用信息公示系统).
USCC_PUBLISHED = {
    "914403001922038216": "Huawei Technologies Co., Ltd.",
    "91440300708461136T": "Shenzhen Tencent Computer Systems Co., Ltd.",
    "91330100716105852F": "Alibaba (China) Co., Ltd.",
    "91110108551385082Q": "Beijing Xiaomi Technology Co., Ltd.",
    "91110000600037341L": "python-stdnum's documented example",
}

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def mst_check_digit(first_nine: str) -> str:
    """Circular 105/2020/TT-BTC structure; the tenth digit: 10 - (Σ dᵢ·wᵢ mod 11), weights 31 29 23 19 17 13 7 5 3."""
    weights = (31, 29, 23, 19, 17, 13, 7, 5, 3)
    return str(10 - sum(int(d) * w for d, w in zip(first_nine, weights, strict=True)) % 11)


def uscc_check_character(first_seventeen: str) -> str:
    """GB 32100-2015: weights 3^i mod 31, C18 = 31 - (Σ mod 31), 31 → 0, as a character of the code's alphabet."""
    total = sum(USCC_ALPHABET.index(c) * pow(3, i, 31) for i, c in enumerate(first_seventeen))
    return USCC_ALPHABET[(31 - total % 31) % 31]


@pytest.mark.parametrize("value", sorted(MST_PUBLISHED))
def test_published_msts_are_valid_and_agree_with_the_rule(value: str) -> None:
    assert check_mst(value) is None
    digits = value.replace("-", "")
    assert mst_check_digit(digits[:9]) == digits[9]
    assert profile("vn-kimthanh").check_trader_id(value) is None
    assert codes.check_vn_tax_id(value) is None  # the declarations' check is the same


@pytest.mark.parametrize("value", sorted(USCC_PUBLISHED))
def test_published_usccs_are_valid_and_agree_with_gb_32100(value: str) -> None:
    assert check_uscc(value) is None
    assert uscc_check_character(value[:17]) == value[17]
    assert profile("cn-hekou").check_trader_id(value) is None
    assert codes.check_cn_tax_id(value) is None


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("0100109107", "vn_mst.check_digit"),  # Viettel with the last digit changed
        ("0300588596", "vn_mst.check_digit"),  # Vinamilk with two digits swapped
        ("010010910", "vn_mst.format"),  # 9 digits
        ("01001091061", "vn_mst.format"),  # 11 digits
        ("0100109106-01", "vn_mst.format"),  # a branch suffix is three digits
        ("079203001234", "vn_mst.format"),  # 12 digits: a personal id number, not an enterprise's MST
        ("01001O9106", "vn_mst.format"),  # letter O for a zero
        ("", "vn_mst.format"),
    ],
)
def test_invalid_msts_are_refused_with_a_stable_code(value: str, code: str) -> None:
    assert check_mst(value) == code


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("914403001922038217", "cn_uscc.check_character"),  # Huawei with the check character changed
        ("91440300708461163T", "cn_uscc.check_character"),  # Tencent with two characters swapped
        ("91110000600037341", "cn_uscc.format"),  # 17 characters
        ("91110000600O37341L", "cn_uscc.format"),  # O is not in the alphabet
        ("91110000600037341l", "cn_uscc.format"),  # lower case
        ("0100109106", "cn_uscc.format"),  # a Vietnamese MST is not a USCC
    ],
)
def test_invalid_usccs_are_refused_with_a_stable_code(value: str, code: str) -> None:
    assert check_uscc(value) == code


def test_each_side_checks_its_own_scheme_only() -> None:
    vn, cn = profile("vn-kimthanh"), profile("cn-hekou")
    assert vn.check_trader_id("914403001922038216") == "vn_mst.format"
    assert cn.check_trader_id("0100109106") == "cn_uscc.format"


def test_the_two_profiles() -> None:
    vn, cn = PROFILES["vn-kimthanh"], PROFILES["cn-hekou"]
    assert (vn.country, vn.currency, vn.default_locale, vn.trader_id_scheme) == ("VN", "VND", "vi", "mst")
    assert (cn.country, cn.currency, cn.default_locale, cn.trader_id_scheme) == ("CN", "CNY", "zh_Hans", "uscc")
    assert (vn.gate_code, cn.gate_code) == ("KIMTHANH", "HEKOU")
    assert (vn.ledger_origin, cn.ledger_origin) == ("kimthanh.smartgate/ledger", "hekou.smartgate/ledger")
    assert vn.partner is cn
    assert cn.partner is vn
    assert vn.witness_name != cn.witness_name
    for each in (vn, cn):
        assert parse_csv(each.tariff_file.read_text(encoding="utf-8")), each.tariff_file


def test_the_chinese_tariff_is_a_labelled_sample_with_sources() -> None:
    rows = parse_csv(profile("cn-hekou").tariff_file.read_text(encoding="utf-8"))
    by_code = {row["hs_code"]: row for row in rows}
    # China's own subdivisions: lychees are 0810.90.10 there (AHTN: 0810.90.20), durians 0810.60.00 in both.
    assert "Lychee" in by_code["08109010"]["description"]
    assert "08106000" in by_code
    for row in rows:
        assert row["status"] == "unverified"
        assert row["notes"].startswith("SAMPLE")
        assert all(row["sources"].values()), row["hs_code"]
        assert row["vat_rate"] == 9  # China's VAT on agricultural products since April 2019


def test_the_default_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SMARTGATE_ADMINISTRATION", "SMARTGATE_GATE_CODE", "SMARTGATE_LEDGER_ORIGIN"):
        monkeypatch.delenv(name, raising=False)
    settings = KernelSettings()
    assert settings.administration == DEFAULT == "vn-kimthanh"
    assert administration(settings).code == "vn-kimthanh"
    assert settings.gate_code == "KIMTHANH"
    assert provenance_settings(settings).ledger_origin == "kimthanh.smartgate/ledger"


def test_the_chinese_side_takes_its_profile_unless_told_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMARTGATE_ADMINISTRATION", "cn-hekou")
    monkeypatch.delenv("SMARTGATE_GATE_CODE", raising=False)
    monkeypatch.delenv("SMARTGATE_LEDGER_ORIGIN", raising=False)
    settings = KernelSettings()
    assert (settings.gate_code, administration(settings).currency) == ("HEKOU", "CNY")
    assert provenance_settings(settings).ledger_origin == "hekou.smartgate/ledger"
    monkeypatch.setenv("SMARTGATE_GATE_CODE", "BACSON")
    monkeypatch.setenv("SMARTGATE_LEDGER_ORIGIN", "example.cn/log")
    assert KernelSettings().gate_code == "BACSON"
    assert ProvenanceSettings().ledger_origin == "example.cn/log"


def test_an_unknown_profile_stops_the_process_with_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "SMARTGATE_ADMINISTRATION": "vn-laocai", "SMARTGATE_VAR_DIR": str(tmp_path)}
    done = subprocess.run([SMARTGATE, "migrate"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "unknown administration 'vn-laocai'" in lines[0]
    assert "cn-hekou, vn-kimthanh" in lines[0]
    with pytest.raises(ValueError, match="unknown administration"):
        KernelSettings(administration="cn")


@pytest.fixture
def fresh_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database (not the migrated template): the national tariff is seeded by the migration."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    from tests.conftest import _admin_engine, pg_server_url
    from tests.processes import require

    pg = pg_server_url()
    require(None if pg else "PostgreSQL: set SMARTGATE_TEST_DATABASE_URL (.ci/run does)")
    assert pg is not None
    name = f"sg_admin_{uuid.uuid4().hex[:10]}"
    admin = _admin_engine(pg)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(pg).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.mark.parametrize(
    "fresh_database", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
def test_the_migration_seeds_the_sides_national_tariff(fresh_database: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMARTGATE_ADMINISTRATION", "cn-hekou")
    upgrade(fresh_database)
    engine = create_engine(fresh_database)
    try:
        with engine.connect() as conn:
            rows: dict[str, Any] = dict(conn.execute(text("SELECT hs_code, status FROM tariff_lines")).all())
    finally:
        engine.dispose()
    assert set(rows) == {r["hs_code"] for r in parse_csv(profile("cn-hekou").tariff_file.read_text("utf-8"))}
    assert set(rows.values()) == {"unverified"}


@pytest.mark.parametrize(("profile_code", "html_lang"), [("vn-kimthanh", "vi"), ("cn-hekou", "zh-Hans")])
def test_the_console_speaks_the_sides_language_by_default(
    settings: KernelSettings, profile_code: str, html_lang: str
) -> None:
    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.console.i18n import COOKIE
    from services.kernel.runtime import Runtime

    side = settings.model_copy(update={"administration": profile_code})
    runtime = Runtime.build(side)
    try:
        with TestClient(create_app(side, runtime=runtime)) as client:
            assert f'<html lang="{html_lang}">' in client.get("/console/login").text
            client.cookies.set(COOKIE, "en")
            assert '<html lang="en">' in client.get("/console/login").text  # the officer's choice still wins
    finally:
        runtime.close()


@pytest.mark.parametrize(("profile_code", "gate"), [("vn-kimthanh", "KIMTHANH"), ("cn-hekou", "HEKOU")])
def test_a_declaration_naming_no_gate_crosses_the_sides_own(
    settings: KernelSettings, declaration_body: dict[str, Any], profile_code: str, gate: str
) -> None:
    from fastapi.testclient import TestClient

    from api.app import create_app
    from services.kernel.runtime import Runtime
    from tests.conftest import Keys

    side = KernelSettings(**{**settings.model_dump(exclude={"gate_code"}), "administration": profile_code})
    runtime = Runtime.build(side)
    try:
        trader = Keys(runtime).make("trader", "Lao Cai Fruit Export JSC")
        with TestClient(create_app(side, runtime=runtime)) as client:
            unnamed = {k: v for k, v in declaration_body.items() if k != "border_gate"}
            filed = client.post("/api/v1/declarations", json=unnamed, headers={**trader, "Idempotency-Key": "a1"})
            assert filed.status_code == 201, filed.text
            assert filed.json()["border_gate"] == gate
            named = {**declaration_body, "border_gate": "LAOCAI"}
            filed = client.post("/api/v1/declarations", json=named, headers={**trader, "Idempotency-Key": "a2"})
            assert filed.json()["border_gate"] == "LAOCAI"  # what the trader names stays
    finally:
        runtime.close()
