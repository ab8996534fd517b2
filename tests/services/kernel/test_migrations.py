"""The migrations build the schema the models describe: no table, column or index exists in one and not the other."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData, create_engine

import ledger.storage
import services.declarations.models
import services.exchange.models
import services.inspection.models
import services.kernel.auth
import services.kernel.idempotency
import services.kernel.outbox
import services.kernel.sessions
import services.provenance.models
import services.traceability.models
import services.webhooks.models  # noqa: F401 - registers the tables on Base.metadata
from services.kernel.database import Base


def _combined() -> MetaData:
    combined = MetaData()
    for metadata in (Base.metadata, ledger.storage.metadata):
        for table in metadata.tables.values():
            table.to_metadata(combined)
    return combined


def _structural(diff: list) -> list:  # type: ignore[type-arg]
    """Differences in tables, columns and indexes (type and default renderings differ by dialect; not compared)."""
    flat = [d for group in diff for d in (group if isinstance(group, list) else [group])]
    return [d for d in flat if d[0] in {"add_table", "remove_table", "add_column", "remove_column", "add_index",
                                          "remove_index"}]  # fmt: skip


def test_migrated_schema_matches_the_models(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": False})
            diff = compare_metadata(context, _combined())
    finally:
        engine.dispose()
    differences = [d for d in _structural(diff) if not (d[0] == "remove_table" and d[1].name == "alembic_version")]
    assert differences == []
