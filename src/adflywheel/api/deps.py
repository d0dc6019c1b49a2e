"""What every request gets: the services, a session, and who is calling."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session, sessionmaker

from adflywheel.core.clock import Clock
from adflywheel.core.settings import Settings
from adflywheel.platforms.registry import PlatformResolver
from adflywheel.services.observability import logs
from adflywheel.store.accounts import Caller, authenticate, hash_key
from adflywheel.store.models import ApiKey


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


class KeyCache:
    """Who a key belongs to, remembered for ``settings.api_key_cache_ttl_s`` (a few seconds) in
    this process: every API request authenticates, and the hashed-key join was a database round
    trip per request. Safe because the entry's life is bounded: a key revoked elsewhere (the CLI,
    another worker) stops working within the TTL at the latest, and a revocation in this process
    (an ORM update of an ``ApiKey``) empties the cache at once. Only known keys are remembered
    (an unknown key is looked up every time) and the cache is bounded in size."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self.max_entries = max_entries
        self._found: dict[tuple[str, str], tuple[float, Caller]] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str], now: float) -> Caller | None:
        found = self._found.get(key)
        if found is None or found[0] <= now:
            return None
        return found[1]

    def put(self, key: tuple[str, str], caller: Caller, expires: float) -> None:
        with self._lock:
            if len(self._found) >= self.max_entries:
                self._found.clear()  # rare: bounded memory beats a precise eviction order
            self._found[key] = (expires, caller)

    def clear(self) -> None:
        with self._lock:
            self._found.clear()


KEYS = KeyCache()


@event.listens_for(ApiKey, "after_update")
@event.listens_for(ApiKey, "after_delete")
def _key_changed(*_: object) -> None:
    KEYS.clear()


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
    ttl = services.settings.api_key_cache_ttl_s
    cache_key = (str(services.engine.url), hash_key(credentials.credentials))
    now = time.monotonic()
    caller = KEYS.get(cache_key, now) if ttl > 0 else None
    if caller is None:
        with services.factory() as session:
            caller = authenticate(session, credentials.credentials)
        if caller is None:
            raise unauthorized
        if ttl > 0:
            KEYS.put(cache_key, caller, now + ttl)
    logs.note(account_id=caller.account_id)  # the request's log lines name the account
    return caller


ServicesDep = Annotated[Services, Depends(get_services)]
SessionDep = Annotated[Session, Depends(get_session)]
CallerDep = Annotated[Caller, Depends(get_caller)]
