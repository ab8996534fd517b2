"""Alembic migrations of the traceability service (branch `traceability`)."""
