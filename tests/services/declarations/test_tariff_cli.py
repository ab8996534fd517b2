"""`smartgate tariff load` and `smartgate tariff rate`: whole-file validation, one-line errors, real writes."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli import app
from services.declarations.models import ExchangeRate, TariffLine, TraderProfile
from services.declarations.review import CLEAN_CLEARANCES_TO_PROMOTE, _compliance_feedback
from services.declarations.tariff import CSV_COLUMNS
from services.kernel.database import unit_of_work

SEED = Path(__file__).resolve().parents[3] / "services" / "declarations" / "data" / "tariff_seed.csv"
HEADER = ",".join(CSV_COLUMNS)


@pytest.fixture
def cli(settings, monkeypatch):
    monkeypatch.setenv("SMARTGATE_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("SMARTGATE_SECRET_KEY", settings.secret_key)
    monkeypatch.setenv("SMARTGATE_ENVIRONMENT", "test")
    return CliRunner()


def test_seed_schedule_is_loaded_by_the_migration_with_sources(runtime):
    with unit_of_work(runtime.read_sessions) as session:
        lines = session.query(TariffLine).all()
        assert len(lines) >= 60
        durian = session.get(TariffLine, "08106000")
        assert durian.sources["mfn"].startswith("Decree 26/2023")
        assert durian.sources["acfta"].startswith("Decree 118/2022")
        assert {line.status for line in lines} <= {"verified", "unverified"}


def test_load_inserts_and_replaces(cli, runtime, tmp_path):
    path = tmp_path / "schedule.csv"
    path.write_text(
        f"{HEADER}\n"
        "08106000,Durians,25,0,5,0,D26,D118,VAT,D26,unverified,lowered\n"
        "99011234,Test line,7.5,,10,2,D26,,VAT,D26,unverified,\n",
        encoding="utf-8",
    )
    result = cli.invoke(app, ["tariff", "load", str(path)])
    assert result.exit_code == 0, result.output
    assert '"inserted": 1' in result.output
    assert '"updated": 1' in result.output
    with unit_of_work(runtime.read_sessions) as session:
        assert str(session.get(TariffLine, "08106000").mfn_rate) in ("25", "25.000")
        assert session.get(TariffLine, "99011234").acfta_rate is None


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("hs_code,description\n08106000,x\n", "missing column"),
        (f"{HEADER}\n0810600,Durians,25,0,5,0,a,b,c,d,verified,\n", "line 2: hs_code"),
        (f"{HEADER}\n08106000,Durians,abc,0,5,0,a,b,c,d,verified,\n", "line 2: mfn_rate"),
        (f"{HEADER}\n08106000,Durians,25,0,5,0,a,b,c,d,maybe,\n", "status"),
        (f"{HEADER}\n08106000,D,25,0,5,0,a,b,c,d,verified,\n08106000,D,25,0,5,0,a,b,c,d,verified,\n", "twice"),
        (f"{HEADER}\n", "no tariff lines"),
    ],
)
def test_bad_files_are_refused_whole_with_one_line(cli, runtime, tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content, encoding="utf-8")
    with unit_of_work(runtime.read_sessions) as session:
        before = session.query(TariffLine).count()
    result = cli.invoke(app, ["tariff", "load", str(path)])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output
    with unit_of_work(runtime.read_sessions) as session:
        assert session.query(TariffLine).count() == before


def test_missing_file_is_a_clear_error(cli, tmp_path):
    result = cli.invoke(app, ["tariff", "load", str(tmp_path / "nope.csv")])
    assert result.exit_code == 2
    assert "no such file" in result.output


def test_rate_is_posted_and_bad_input_refused(cli, runtime):
    ok = cli.invoke(app, ["tariff", "rate", "CNY", "3561.25", "--day", "2026-11-27"])
    assert ok.exit_code == 0, ok.output
    with unit_of_work(runtime.read_sessions) as session:
        assert session.query(ExchangeRate).filter_by(currency="CNY").one().vnd_per_unit == 3561.25
    assert cli.invoke(app, ["tariff", "rate", "ABC", "1"]).exit_code == 2
    assert cli.invoke(app, ["tariff", "rate", "USD", "-5"]).exit_code == 2
    assert cli.invoke(app, ["tariff", "rate", "USD", "1", "--day", "27/11/2026"]).exit_code == 2


def test_clean_clearances_promote_and_a_violation_demotes(runtime, keys):
    keys.make("trader", "Promoted Co")
    from services.declarations.models import Declaration
    from services.kernel.auth import Organisation

    with unit_of_work(runtime.sessions) as session:
        org = session.query(Organisation).filter_by(name="Promoted Co").one()
        decl = Declaration(organisation_id=org.id)
        for _ in range(CLEAN_CLEARANCES_TO_PROMOTE):
            _compliance_feedback(session, decl, violation=False)
        assert session.get(TraderProfile, org.id).compliance_class == "A"
        _compliance_feedback(session, decl, violation=True)
        profile = session.get(TraderProfile, org.id)
        assert (profile.compliance_class, profile.violations, profile.clean_since_change) == ("B", 1, 0)
