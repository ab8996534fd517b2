"""Alembic environment shared by all services (their version folders are joined by services.kernel.migrate)."""

from __future__ import annotations

from alembic import context

from services.kernel.database import Base, make_engine

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    """Run migrations on a live connection (the engine given by the caller, or one made from the URL)."""
    given = config.attributes.get("engine")
    engine = given or make_engine(config.get_main_option("sqlalchemy.url") or "")
    try:
        with engine.connect() as connection:
            context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
            with context.begin_transaction():
                context.run_migrations()
            connection.commit()
    finally:
        if given is None:
            # Leave no pooled connection behind (PostgreSQL refuses to copy a template that is in use).
            engine.dispose()


run_migrations_online()
