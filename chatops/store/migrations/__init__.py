"""Alembic migrations of the chatops store (run them with ``Store.migrate()``)."""
