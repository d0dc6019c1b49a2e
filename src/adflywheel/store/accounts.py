"""Accounts and their API keys. A key is shown once, at creation; only its hash is kept."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from adflywheel.core.errors import ConflictError
from adflywheel.store.models import Account, ApiKey

KEY_PREFIX = "afw_"


class AccountExistsError(ConflictError, ValueError):
    """The account name is taken."""


@dataclass(frozen=True, slots=True)
class NewKey:
    account_id: int
    account_name: str
    key: str


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling: the account a key belongs to, and whether it may act for all accounts."""

    account_id: int
    account_name: str
    is_admin: bool


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_account(
    session: Session,
    name: str,
    now: datetime,
    *,
    platform: str = "manual",
    platform_account_id: str | None = None,
    currency: str = "USD",
    timezone: str = "UTC",
    category: str | None = None,
) -> Account:
    name = name.strip()
    if not name:
        raise ValueError("an account needs a name")
    if session.scalar(select(Account.id).where(Account.name == name)) is not None:
        raise AccountExistsError(f"an account named {name!r} exists already")
    account = Account(
        name=name,
        platform=platform,
        platform_account_id=platform_account_id,
        currency=currency.upper(),
        timezone=timezone,
        category=category,
        created_at=now,
    )
    session.add(account)
    session.flush()
    return account


def issue_key(session: Session, account: Account, now: datetime, *, admin: bool = False) -> NewKey:
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    session.add(
        ApiKey(
            account_id=account.id,
            key_prefix=key[:12],
            key_hash=hash_key(key),
            is_admin=admin,
            created_at=now,
        )
    )
    session.flush()
    return NewKey(account_id=account.id, account_name=account.name, key=key)


def authenticate(session: Session, key: str) -> Caller | None:
    """The caller a key belongs to, or None for an unknown or revoked key."""
    if not key.startswith(KEY_PREFIX):
        return None
    row = session.execute(
        select(ApiKey, Account)
        .join(Account, Account.id == ApiKey.account_id)
        .where(ApiKey.key_hash == hash_key(key), ApiKey.revoked_at.is_(None))
    ).first()
    if row is None:
        return None
    api_key, account = row
    return Caller(account_id=account.id, account_name=account.name, is_admin=api_key.is_admin)


def account_by_name(session: Session, name: str) -> Account | None:
    return session.scalar(select(Account).where(Account.name == name))


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """What may be shown of a key: its first characters, never the key or its hash."""

    prefix: str
    is_admin: bool
    created_at: datetime
    revoked_at: datetime | None


def account_keys(session: Session, account_id: int) -> list[KeyInfo]:
    rows = session.scalars(
        select(ApiKey).where(ApiKey.account_id == account_id).order_by(ApiKey.id)
    ).all()
    return [KeyInfo(r.key_prefix, r.is_admin, r.created_at, r.revoked_at) for r in rows]


def revoke_keys(
    session: Session, account_id: int, now: datetime, *, prefix: str | None = None
) -> int:
    """Revoke the account's active keys (only those starting with ``prefix`` when given);
    returns how many. A revoked key authenticates nothing from then on."""
    query = select(ApiKey).where(ApiKey.account_id == account_id, ApiKey.revoked_at.is_(None))
    revoked = 0
    for key in session.scalars(query):
        if prefix is None or key.key_prefix.startswith(prefix):
            key.revoked_at = now
            revoked += 1
    session.flush()
    return revoked
