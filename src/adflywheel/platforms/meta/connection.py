"""Meta as a connection kind of the platform registry: an account's row in ``meta_connections``
becomes a ``MetaPlatform``; connecting an account writes that row.

The row holds the ad account and, optionally, the name of the environment variable with the
account's token, or the account's own token encrypted (``tokens.py``; it wins over both
variables). A plain token is read from the environment, or decrypted, only when the client is
built, so a database dump leaks no credentials (docs/meta.md, docs/security.md). The connection
the registry compares and keeps carries the ciphertext, never the token: a changed token (or a
re-encryption) rebuilds the platform.
"""

from __future__ import annotations

import os

from sqlalchemy.orm import Session, sessionmaker

from adflywheel.core.clock import Clock
from adflywheel.core.settings import Settings
from adflywheel.platforms.base import PlatformError
from adflywheel.platforms.meta.client import GraphClient
from adflywheel.platforms.meta.platform import MetaPlatform, ad_account_path
from adflywheel.platforms.meta.tokens import TokenCipher
from adflywheel.store.engine import transaction
from adflywheel.store.fetching import connect_meta, meta_connection
from adflywheel.store.models import Account

# The stored connection: the ad account (act_<digits>), the token's variable if any, and the
# account's own token as ciphertext if any (never the plain token).
MetaSpec = tuple[str, str | None, str | None]


class MetaConnectionKind:
    """The registry entry: which accounts are connected to Meta, and their clients."""

    name = "meta"

    def connection(self, session: Session, account_id: int) -> MetaSpec | None:
        row = meta_connection(session, account_id)
        if row is None:
            return None
        return (row.ad_account_id, row.token_env, row.token_ciphertext)

    def build(self, settings: Settings, connection: MetaSpec) -> MetaPlatform:
        ad_account_id, token_env, ciphertext = connection
        token = (
            TokenCipher(settings.token_encryption_keys).decrypt(
                ciphertext, owner=f"for {ad_account_id}"
            )
            if ciphertext
            else None
        )
        return MetaPlatform(
            meta_client(settings, token_env, token=token),
            ad_account_path(ad_account_id),
            token_warn_days=settings.meta_token_warn_days,
        )


def meta_client(
    settings: Settings, token_env: str | None = None, *, token: str | None = None
) -> GraphClient:
    """A Graph client from settings; the token given (an account's own, decrypted), else from
    ``token_env``, else the deployment's token."""
    if token is None and token_env:
        token = os.environ.get(token_env)
    if token is None and settings.meta_access_token is not None:
        token = settings.meta_access_token.get_secret_value()
    if not token:
        where = f"${token_env}" if token_env else "ADFLYWHEEL_META_ACCESS_TOKEN"
        raise PlatformError(f"no Meta access token: set {where}")
    secret = settings.meta_app_secret.get_secret_value() if settings.meta_app_secret else None
    return GraphClient(
        token,
        base_url=settings.meta_graph_url,
        api_version=settings.meta_api_version,
        app_secret=secret,
    )


def connect_meta_account(
    factory: sessionmaker[Session],
    account_id: int,
    platform: MetaPlatform,
    clock: Clock,
    *,
    token_env: str | None = None,
) -> dict[str, str]:
    """Bind an account to a Meta ad account after reading it (token and id proven to work);
    the account takes the ad account's currency and time zone."""
    remote = platform.account()
    with transaction(factory) as session:
        account = session.get(Account, account_id)
        if account is None:
            raise ValueError(f"account {account_id} does not exist")
        connect_meta(session, account_id, platform.path, clock.now(), token_env)
        account.platform, account.platform_account_id = MetaConnectionKind.name, platform.path
        account.currency, account.timezone = remote.currency, remote.timezone
    return {
        "ad_account_id": platform.path,
        "currency": remote.currency,
        "timezone": remote.timezone,
        "name": remote.name,
    }
