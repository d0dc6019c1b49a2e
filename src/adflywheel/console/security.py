"""The console's cookies and secrets: signing, the session cookie's attributes, login throttling.

The session cookie carries a random token signed with the console secret (itsdangerous,
HMAC-SHA256): a forged or altered cookie is refused before the database is asked, and the token
itself is checked against its stored hash, so sign-out and expiry revoke it server-side. The
secret is ``console_secret`` when set, else a random one made once in the data folder
(docs/console.md).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from itsdangerous import BadSignature, URLSafeSerializer
from starlette.requests import Request
from starlette.responses import Response

from adflywheel.core.settings import Settings

SESSION_COOKIE = "adflywheel_session"
LOGIN_COOKIE = "adflywheel_login"  # the sign-in form's CSRF nonce, before any session exists
FLASH_COOKIE = "adflywheel_flash"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
LOGIN_NONCE_SECONDS = 3600
SECRET_FILE = "console_secret"


def console_secret(settings: Settings) -> str:
    """The configured secret, else the data folder's (created once, readable by its owner only;
    several processes racing to create it all end up reading the one that won)."""
    if settings.console_secret is not None:
        value = settings.console_secret.get_secret_value()
        if len(value) < 32:
            raise ValueError("console_secret needs at least 32 characters")
        return value
    path = Path(settings.data_dir) / SECRET_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(descriptor, "w") as file:
            file.write(secrets.token_urlsafe(48))
    value = path.read_text().strip()
    if len(value) < 32:
        raise ValueError(f"{path} holds no usable console secret: delete it to make a new one")
    return value


class Signer:
    """Signs and checks short values (the session token, the login nonce, a flash message)."""

    def __init__(self, secret: str) -> None:
        self._serializers = {
            purpose: URLSafeSerializer(
                secret,
                salt=f"adflywheel.console.{purpose}",
                signer_kwargs={"digest_method": hashlib.sha256},
            )
            for purpose in ("session", "login", "flash")
        }

    def sign(self, purpose: str, value: object) -> str:
        return str(self._serializers[purpose].dumps(value))

    def unsign(self, purpose: str, signed: str | None) -> object | None:
        """The value, or None for a missing, forged or altered one."""
        if not signed:
            return None
        try:
            value: object = self._serializers[purpose].loads(signed)
        except (BadSignature, ValueError):
            return None
        return value

    def unsign_text(self, purpose: str, signed: str | None) -> str | None:
        value = self.unsign(purpose, signed)
        return value if isinstance(value, str) else None


def same_secret(given: str | None, expected: str) -> bool:
    """Constant-time comparison of a submitted token with the expected one."""
    if not given:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


def is_https(request: Request) -> bool:
    """Behind a TLS-terminating proxy, run uvicorn with ``--proxy-headers`` so this is true."""
    return request.url.scheme == "https"


def set_cookie(
    request: Request, response: Response, name: str, value: str, max_age: int, path: str = "/"
) -> None:
    """A cookie JavaScript cannot read, sent only to this site's own navigations and forms."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=path,
        httponly=True,
        samesite="lax",
        secure=is_https(request),
    )


def clear_cookie(request: Request, response: Response, name: str, path: str = "/") -> None:
    response.delete_cookie(name, path=path, httponly=True, samesite="lax", secure=is_https(request))


def local_path(next_url: str | None, default: str = "/") -> str:
    """``next_url`` when it is a path on this site, else ``default``: never an open redirect
    (no scheme, no host, no ``//host`` or ``/\\host`` that browsers read as another site)."""
    if not next_url or len(next_url) > 2000:
        return default
    if any(ord(c) < 32 or c == "\\" for c in next_url):
        return default
    parts = urlsplit(next_url)
    if parts.scheme or parts.netloc or not parts.path.startswith("/"):
        return default
    if next_url.startswith("//"):
        return default
    return next_url


@dataclass
class LoginThrottle:
    """At most ``limit`` failed sign-ins per email (and ``limit * 4`` per client address) in
    ``window``; a success clears the email's count. In memory, per process: it slows guessing,
    argon2 makes each guess cost, and it does not lock the real user out for long."""

    limit: int = 5
    window: timedelta = timedelta(minutes=15)
    max_keys: int = 10_000
    _failures: dict[str, deque[datetime]] = field(default_factory=dict)

    def _recent(self, key: str, now: datetime) -> deque[datetime]:
        times = self._failures.setdefault(key, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[key]
            return deque()
        return times

    def blocked(self, email: str, client: str, now: datetime) -> bool:
        return (
            len(self._recent(f"email:{email}", now)) >= self.limit
            or len(self._recent(f"client:{client}", now)) >= self.limit * 4
        )

    def failed(self, email: str, client: str, now: datetime) -> None:
        if len(self._failures) >= self.max_keys:  # many distinct emails: forget the stale ones
            for key in list(self._failures):
                self._recent(key, now)
        for key in (f"email:{email}", f"client:{client}"):
            self._failures.setdefault(key, deque()).append(now)

    def succeeded(self, email: str) -> None:
        self._failures.pop(f"email:{email}", None)


@dataclass(frozen=True)
class ConsoleState:
    """What the console keeps for the app's life (``app.state.console``)."""

    signer: Signer
    session_lifetime: timedelta
    throttle: LoginThrottle


def console_state(request: Request) -> ConsoleState:
    state = request.app.state.console
    assert isinstance(state, ConsoleState)
    return state
