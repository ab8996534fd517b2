"""Telling a database outage from a bug, on real driver errors of both backends, and logging it briefly."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from services.kernel.dbfaults import COMMIT_UNKNOWN, UNAVAILABLE, FailureLog, outage_code


def _error_of(url: str, statement: str = "SELECT 1") -> Exception:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(text(statement))
    except Exception as exc:  # noqa: BLE001 - the error is what the test wants
        return exc
    finally:
        engine.dispose()
    raise AssertionError(f"{statement!r} on {url} did not fail")


def _unreachable(database_url: str, tmp_path: Path) -> str:
    if database_url.startswith("sqlite"):
        return f"sqlite:///{tmp_path / 'no-such-dir' / 'gone.db'}"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"postgresql+psycopg://postgres@127.0.0.1:{port}/gone"  # nothing listens there: refused


def test_an_unreachable_database_is_an_outage_and_a_missing_table_is_not(database_url: str, tmp_path: Path) -> None:
    assert outage_code(_error_of(_unreachable(database_url, tmp_path))) == UNAVAILABLE
    assert outage_code(_error_of(database_url, "SELECT * FROM no_such_table")) is None
    assert outage_code(ValueError("not a database error")) is None


def test_a_lost_commit_is_reported_unknown() -> None:
    from services.kernel.pgconnection import CommitOutcomeUnknown

    assert outage_code(CommitOutcomeUnknown("connection lost during COMMIT")) == COMMIT_UNKNOWN


def test_an_outage_is_logged_once_and_its_end_once_a_bug_every_time(
    database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log = FailureLog(logging.getLogger("tests.dbfaults"), "test pass")
    down = _error_of(_unreachable(database_url, tmp_path))
    bug = _error_of(database_url, "SELECT * FROM no_such_table")
    with caplog.at_level(logging.INFO, logger="tests.dbfaults"):
        for _ in range(3):
            log.failed(down)
        log.succeeded()
        log.succeeded()
        log.failed(bug)
        log.failed(bug)
    lines = [(r.levelname, r.getMessage(), r.exc_info is not None) for r in caplog.records]
    assert lines == [
        ("WARNING", "test pass: database unavailable; will retry", False),
        ("INFO", "test pass: database available again", False),
        ("ERROR", "test pass failed", True),
        ("ERROR", "test pass failed", True),
    ]
