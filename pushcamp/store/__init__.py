"""Persistence: SQLAlchemy 2.0 models, queries and Alembic migrations, for SQLite (the
embedded default, WAL) and PostgreSQL."""

from pushcamp.store.db import Database, dependency_errors

__all__ = ["Database", "dependency_errors"]
