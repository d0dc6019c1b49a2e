"""What every request gets: the services, a session, and who is calling."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from adflywheel.core.clock import Clock
from adflywheel.core.settings import Settings
from adflywheel.platforms.registry import PlatformResolver
from adflywheel.services.observability import logs
from adflywheel.store.accounts import Caller, authenticate


@dataclass(frozen=True, slots=True)
class Services:
    settings: Settings
    engine: Engine
    factory: sessionmaker[Session]
    clock: Clock
    schema_revision: str
    platforms: PlatformResolver


def get_services(request: Request) -> Services:
    services = request.app.state.services
    assert isinstance(services, Services)
    return services


def get_session(services: Annotated[Services, Depends(get_services)]) -> Iterator[Session]:
    """A session whose work commits when the handler returns and rolls back if it raises."""
    with services.factory() as session, session.begin():
        yield session


_bearer = HTTPBearer(auto_error=False)


def get_caller(
    services: Annotated[Services, Depends(get_services)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    unauthorized = HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        detail="send an account API key as 'Authorization: Bearer <key>'",
        headers={"WWW-Authenticate": "Bearer"},
    )
    if credentials is None:
        raise unauthorized
    with services.factory() as session:
        caller = authenticate(session, credentials.credentials)
    if caller is None:
        raise unauthorized
    logs.note(account_id=caller.account_id)  # the request's log lines name the account
    return caller


ServicesDep = Annotated[Services, Depends(get_services)]
SessionDep = Annotated[Session, Depends(get_session)]
CallerDep = Annotated[Caller, Depends(get_caller)]
