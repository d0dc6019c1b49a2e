"""Liveness and readiness: the database answers and its schema is the one we know."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import text

from adflywheel import __version__
from adflywheel.api.deps import ServicesDep
from adflywheel.api.schemas.health import HealthOut
from adflywheel.store.accounts import authenticate

router = APIRouter(tags=["health"])


_bearer = HTTPBearer(auto_error=False)


@router.get("/health", response_model_exclude_none=True)
def health(
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> HealthOut:
    """``{"status": "ok"}`` when the database answers; the details only with a valid key."""
    with services.engine.connect() as connection:
        connection.execute(text("SELECT 1"))
    if credentials is None:
        return HealthOut(status="ok")
    with services.factory() as session:
        if authenticate(session, credentials.credentials) is None:
            return HealthOut(status="ok")
    return HealthOut(
        status="ok",
        version=__version__,
        schema_revision=services.schema_revision,
        database=services.engine.dialect.name,
        now=services.clock.now().isoformat(),
    )
