"""Which ad platform an account reads and writes: the registry of connection kinds.

A connection kind is an ad platform an account can be connected to (today: Meta). Its entry
knows the account's stored connection (its own table, e.g. ``meta_connections``) and how to
build the live platform from it and the settings. The API, the CLI, the cycle's executor and the
fetch job get a resolver from ``connected_platforms`` and never name a platform, so a new ad
platform is its package, its connection table and one entry in ``CONNECTION_KINDS``.

The simulated market and CSV exports are not connection kinds: their accounts
(``accounts.platform`` "simulated" or "csv") have no stored connection, and whoever runs them
(the harness, the tests, ``import-csv``) hands the platform over itself. Until an account has a
connection, writes fail with a clear ``PlatformError`` (dry runs still work).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from sqlalchemy.orm import Session, sessionmaker

from adflywheel.core.settings import Settings
from adflywheel.platforms.base import AdPlatform, PlatformError
from adflywheel.platforms.meta.connection import MetaConnectionKind

PlatformResolver = Callable[[int], AdPlatform]

C = TypeVar("C")


class ConnectionKind(Protocol[C]):
    """One kind of connected ad platform."""

    # The kind's name: what connecting sets as ``accounts.platform``, and the platform's ``name``.
    name: str

    def connection(self, session: Session, account_id: int) -> C | None:
        """The account's stored connection, or None when it has none of this kind. Compared with
        ``==`` to tell whether a platform built earlier is still the account's."""
        ...

    def build(self, settings: Settings, connection: C) -> AdPlatform:
        """The live platform of a connection; ``PlatformError`` when it cannot be built (no
        token configured)."""
        ...


# Every connection kind, asked in this order (an account connected to two kinds gets the first).
CONNECTION_KINDS: tuple[ConnectionKind[Any], ...] = (MetaConnectionKind(),)


def no_platform(account_id: int) -> AdPlatform:
    raise PlatformError(
        f"account {account_id} has no connected ad platform that can write budgets; "
        "use dry_run=true to see the proposal"
    )


def connected_platforms(
    settings: Settings,
    factory: sessionmaker[Session],
    *,
    fallback: PlatformResolver = no_platform,
    kinds: Sequence[ConnectionKind[Any]] = CONNECTION_KINDS,
) -> PlatformResolver:
    """A resolver: an account with a stored connection gets its kind's platform, any other
    account ``fallback``'s answer. A built platform is kept per account while its connection is
    unchanged (Meta's throttle governor remembers the account's usage between calls)."""
    cache: dict[int, tuple[str, Any, AdPlatform]] = {}
    lock = threading.Lock()

    def resolve(account_id: int) -> AdPlatform:
        found: tuple[ConnectionKind[Any], Any] | None = None
        with factory() as session:
            for kind in kinds:
                connection = kind.connection(session, account_id)
                if connection is not None:
                    found = (kind, connection)
                    break
        if found is None:
            return fallback(account_id)
        kind, connection = found
        with lock:
            cached = cache.get(account_id)
            if cached is not None and cached[:2] == (kind.name, connection):
                return cached[2]
            platform = kind.build(settings, connection)
            cache[account_id] = (kind.name, connection, platform)
            return platform

    return resolve
