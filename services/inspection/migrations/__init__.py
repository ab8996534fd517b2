"""Alembic migrations of the inspection service (branch `inspection`)."""
