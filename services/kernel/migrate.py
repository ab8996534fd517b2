"""Alembic, driven from code: every service keeps its migrations in `services/<name>/migrations/versions`."""

from __future__ import annotations

import os
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

SERVICES_DIR = Path(__file__).resolve().parent.parent


def version_locations() -> list[Path]:
    """The migration folders of every service present in this installation (kernel first)."""
    found = sorted(p for p in SERVICES_DIR.glob("*/migrations/versions") if p.is_dir())
    return sorted(found, key=lambda p: p.parent.parent.name != "kernel")


def alembic_config(url: str) -> Config:
    """An Alembic config for `url` spanning all services' version folders."""
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).resolve().parent / "migrations"))
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option("version_locations", os.pathsep.join(str(p) for p in version_locations()))
    cfg.set_main_option("file_template", "%%(year)d-%%(month).2d-%%(day).2d-%%(hour).2d%%(minute).2d_%%(slug)s")
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, *, engine: Engine | None = None, revision: str = "heads") -> None:
    """Bring the database at `url` to the newest revision of every service."""
    cfg = alembic_config(url)
    if engine is not None:
        cfg.attributes["engine"] = engine
    command.upgrade(cfg, revision)


def is_up_to_date(url: str) -> bool:
    """Whether the database at `url` has every service's newest migration (a dependency's head counts as covered)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from sqlalchemy.exc import SQLAlchemyError

    from services.kernel.database import make_engine

    script = ScriptDirectory.from_config(alembic_config(url))
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_heads()
    except SQLAlchemyError:
        return False
    finally:
        engine.dispose()
    if not current:
        return False
    covered = {rev.revision for rev in script.iterate_revisions(tuple(current), "base")}
    return set(script.get_heads()) <= covered
