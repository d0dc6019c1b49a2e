"""Alembic environment: runs on the engine the caller hands over (no alembic.ini, no globals)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

from adflywheel.store.models import Base

engine = context.config.attributes.get("engine")
if not isinstance(engine, Engine):
    raise RuntimeError("run migrations through `adflywheel db upgrade`, which passes the engine")

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
