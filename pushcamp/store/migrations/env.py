"""Alembic environment: runs on the connection pushcamp hands over (see store.migrate)."""

from __future__ import annotations

from alembic import context

from pushcamp.store.models import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - pushcamp always passes its connection
    raise RuntimeError("run migrations through `pushcamp db upgrade`")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
