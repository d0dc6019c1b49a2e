"""Console users, their roles per account and their signed-in sessions (issue #18).

Passwords are kept as argon2id hashes (memory-hard: a stolen table is slow to crack); sessions as
the SHA-256 of a 256-bit random token (like API keys: a fast hash suffices for random secrets),
so signing out or expiring revokes a session on the server, whatever the browser keeps.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from adflywheel.core.errors import ConflictError, InvalidInputError, NotFoundError
from adflywheel.store.models import Account, ConsoleSession, User, UserGrant


class Role(StrEnum):
    """What a user may do on an account, each including the ones before it: a viewer looks, an
    approver also approves, dismisses, rolls back and runs cycles, an admin also changes the
    account's settings (mode, guardrails, power switches)."""

    VIEWER = "viewer"
    APPROVER = "approver"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANKS[self]

    def allows(self, needed: Role) -> bool:
        """True when this role may do what ``needed`` may."""
        return self.rank >= needed.rank


_RANKS = {Role.VIEWER: 0, Role.APPROVER: 1, Role.ADMIN: 2}

# Actions record ``user:<email>`` in 100-character actor columns (budget_changes, audit_events).
MAX_EMAIL_LENGTH = 95
MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024  # argon2 would hash a megabyte; a login form need not

# argon2-cffi's defaults are RFC 9106's second recommendation (argon2id, 64 MiB, 3 passes).
_hasher = PasswordHasher()


@cache
def _dummy_hash() -> str:
    """Verified against when the email is unknown, so an unknown email costs as long as a known
    one (no timing oracle for which emails have users). Made on first use, not at import."""
    return _hasher.hash(secrets.token_urlsafe(16))


class UserExistsError(ConflictError, ValueError):
    """The email has a user already."""


class UnknownUserError(NotFoundError):
    """No user has that email."""


def normalize_email(email: str) -> str:
    """Emails compare case-insensitively and without surrounding spaces."""
    text = email.strip().lower()
    local, at, domain = text.partition("@")
    if not at or not local or not domain or any(c.isspace() for c in text):
        raise InvalidInputError(f"{email.strip()!r} is not an email address")
    if len(text) > MAX_EMAIL_LENGTH:
        raise InvalidInputError(f"an email of at most {MAX_EMAIL_LENGTH} characters, please")
    return text


def check_password(password: str) -> None:
    """Refuses a password too short to resist guessing (or absurdly long)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInputError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidInputError(f"a password has at most {MAX_PASSWORD_LENGTH} characters")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def generate_password() -> str:
    """A password for a user added without one: 128 random bits, URL-safe text."""
    return secrets.token_urlsafe(16)


def create_user(session: Session, email: str, password: str, now: datetime) -> User:
    address = normalize_email(email)
    check_password(password)
    if session.scalar(select(User.id).where(User.email == address)) is not None:
        raise UserExistsError(f"a user with email {address!r} exists already")
    user = User(email=address, password_hash=hash_password(password), created_at=now)
    session.add(user)
    session.flush()
    return user


def user_by_email(session: Session, email: str) -> User | None:
    try:
        address = normalize_email(email)
    except InvalidInputError:
        return None
    return session.scalar(select(User).where(User.email == address))


def _existing(session: Session, email: str) -> User:
    user = user_by_email(session, email)
    if user is None:
        raise UnknownUserError(f"no user has email {email.strip()!r}")
    return user


def remove_user(session: Session, email: str) -> None:
    """Deletes the user, its grants and its sessions (signed in browsers are out at once)."""
    user = _existing(session, email)
    session.execute(delete(ConsoleSession).where(ConsoleSession.user_id == user.id))
    session.execute(delete(UserGrant).where(UserGrant.user_id == user.id))
    session.delete(user)
    session.flush()


def set_password(session: Session, email: str, password: str, now: datetime) -> None:
    """A new password; every session of the user is revoked."""
    check_password(password)
    user = _existing(session, email)
    user.password_hash = hash_password(password)
    revoke_user_sessions(session, user.id, now)


def grant(session: Session, email: str, account_id: int, role: Role | None, now: datetime) -> None:
    """Gives the user ``role`` on the account (replacing any it had); None takes it away."""
    user = _existing(session, email)
    if session.get(Account, account_id) is None:
        raise NotFoundError(f"no account with id {account_id}")
    existing = session.scalar(
        select(UserGrant).where(UserGrant.user_id == user.id, UserGrant.account_id == account_id)
    )
    if role is None:
        if existing is not None:
            session.delete(existing)
    elif existing is None:
        session.add(UserGrant(user_id=user.id, account_id=account_id, role=role, created_at=now))
    else:
        existing.role = role
    session.flush()


@dataclass(frozen=True, slots=True)
class GrantInfo:
    """One account a user may see, with what it needs to show it (currency, time zone)."""

    account_id: int
    account_name: str
    role: Role
    currency: str
    timezone: str


def grants_of(session: Session, user_id: int) -> list[GrantInfo]:
    """The user's accounts, by name."""
    rows = session.execute(
        select(UserGrant.role, Account)
        .join(Account, Account.id == UserGrant.account_id)
        .where(UserGrant.user_id == user_id)
        .order_by(Account.name, Account.id)
    ).all()
    return [
        GrantInfo(account.id, account.name, Role(role), account.currency, account.timezone)
        for role, account in rows
    ]


@dataclass(frozen=True, slots=True)
class UserInfo:
    """What may be shown of a user: never its hash."""

    email: str
    created_at: datetime
    disabled_at: datetime | None
    grants: tuple[GrantInfo, ...]


def list_users(session: Session) -> list[UserInfo]:
    users = session.scalars(select(User).order_by(User.email)).all()
    return [
        UserInfo(u.email, u.created_at, u.disabled_at, tuple(grants_of(session, u.id)))
        for u in users
    ]


def authenticate_user(session: Session, email: str, password: str) -> User | None:
    """The enabled user with that email and password, else None. Takes as long for an unknown
    email as for a wrong password. Rehashes a hash made with older parameters."""
    user = user_by_email(session, email) if len(password) <= MAX_PASSWORD_LENGTH else None
    if user is None:
        _verify(_dummy_hash(), password[:MAX_PASSWORD_LENGTH])
        return None
    if not _verify(user.password_hash, password) or user.disabled_at is not None:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class NewSession:
    """A session just started: ``token`` goes in the cookie and is never stored or shown."""

    token: str
    csrf_token: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class SignedIn:
    """Who a valid session token belongs to."""

    user_id: int
    email: str
    csrf_token: str
    expires_at: datetime


def start_session(session: Session, user: User, now: datetime, lifetime: timedelta) -> NewSession:
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    expires = now + lifetime
    session.add(
        ConsoleSession(
            token_hash=hash_token(token),
            user_id=user.id,
            csrf_token=csrf,
            created_at=now,
            expires_at=expires,
        )
    )
    session.flush()
    return NewSession(token=token, csrf_token=csrf, expires_at=expires)


def session_user(session: Session, token: str, now: datetime) -> SignedIn | None:
    """The user of an unexpired, unrevoked session of an enabled user, else None."""
    row = session.execute(
        select(ConsoleSession, User)
        .join(User, User.id == ConsoleSession.user_id)
        .where(
            ConsoleSession.token_hash == hash_token(token),
            ConsoleSession.revoked_at.is_(None),
            User.disabled_at.is_(None),
        )
    ).first()
    if row is None:
        return None
    console_session, user = row
    if console_session.expires_at <= now:
        return None
    return SignedIn(user.id, user.email, console_session.csrf_token, console_session.expires_at)


def end_session(session: Session, token: str, now: datetime) -> None:
    """Revokes the session (sign-out); an unknown token is no error."""
    session.execute(
        update(ConsoleSession)
        .where(ConsoleSession.token_hash == hash_token(token), ConsoleSession.revoked_at.is_(None))
        .values(revoked_at=now)
    )


def revoke_user_sessions(session: Session, user_id: int, now: datetime) -> None:
    session.execute(
        update(ConsoleSession)
        .where(ConsoleSession.user_id == user_id, ConsoleSession.revoked_at.is_(None))
        .values(revoked_at=now)
    )


def purge_sessions(session: Session, now: datetime) -> int:
    """Deletes sessions that expired or were revoked: they authenticate nothing any more."""
    result = session.execute(
        delete(ConsoleSession).where(
            (ConsoleSession.expires_at <= now) | ConsoleSession.revoked_at.is_not(None)
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)
