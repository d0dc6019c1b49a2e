"""Liveness and readiness: the database answers and its schema is the one we know."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import text

from adflywheel import __version__
from adflywheel.api.deps import ServicesDep
from adflywheel.api.schemas.health import HealthOut

router = APIRouter(tags=["health"])


@router.get("/health")
def health(services: ServicesDep) -> HealthOut:
    with services.engine.connect() as connection:
        connection.execute(text("SELECT 1"))
    return HealthOut(
        status="ok",
        version=__version__,
        schema_revision=services.schema_revision,
        database=services.engine.dialect.name,
        now=services.clock.now().isoformat(),
    )
