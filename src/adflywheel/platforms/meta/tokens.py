"""Per-account Meta tokens at rest, and what Graph says of a token's life.

An agency serves many businesses, each with its own system-user token. Such a token is stored
in ``meta_connections`` only as Fernet ciphertext (AES-128-CBC with HMAC-SHA256): the keys come
from ``ADFLYWHEEL_TOKEN_ENCRYPTION_KEYS`` (comma separated), never from the database. The first
key encrypts, every key decrypts (``MultiFernet``), so a key is rotated by putting a new one
first, re-encrypting (``adflywheel accounts rotate-token-key``) and then dropping the old one.
Without keys nothing is stored: there is no plain-text fallback.

Listings name a token by its fingerprint (the first 12 hex digits of its SHA-256), which tells
two tokens apart without revealing either.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from pydantic import SecretStr

from adflywheel.platforms.base import PlatformError, TokenStatus
from adflywheel.platforms.meta.parse import MetaDataError

KEYS_SETTING = "ADFLYWHEEL_TOKEN_ENCRYPTION_KEYS"
NEW_KEY_HINT = (
    'make a key with: python -c "from cryptography.fernet import Fernet; '
    'print(Fernet.generate_key().decode())"'
)


class TokenKeyError(PlatformError):
    """No usable encryption key, or a stored token no configured key decrypts."""


def fingerprint(token: str) -> str:
    """A short, one-way name for a token: enough to tell tokens apart, useless to an attacker."""
    return hashlib.sha256(token.encode()).hexdigest()[:12]


class TokenCipher:
    """Encrypts with the first key, decrypts with any; never shows a key or a token."""

    def __init__(self, keys: SecretStr | str | None) -> None:
        text = keys.get_secret_value() if isinstance(keys, SecretStr) else (keys or "")
        parts = [k.strip() for k in text.split(",") if k.strip()]
        if not parts:
            raise TokenKeyError(
                f"no token encryption key: set {KEYS_SETTING} to store per-account Meta tokens "
                f"(they are never stored in plain text); {NEW_KEY_HINT}"
            )
        fernets = []
        for number, key in enumerate(parts, start=1):
            try:
                fernets.append(Fernet(key))
            except (ValueError, TypeError):
                raise TokenKeyError(
                    f"{KEYS_SETTING}: key {number} of {len(parts)} is not a Fernet key "
                    f"(32 url-safe base64-encoded bytes); {NEW_KEY_HINT}"
                ) from None
        self._fernet = MultiFernet(fernets)
        self.key_count = len(fernets)

    def __repr__(self) -> str:
        return f"TokenCipher({self.key_count} key(s))"

    def encrypt(self, token: str) -> str:
        if not token:
            raise ValueError("an empty token cannot be stored")
        return self._fernet.encrypt(token.encode()).decode("ascii")

    def decrypt(self, ciphertext: str, *, owner: str | None = None) -> str:
        """The token; ``owner`` (e.g. "of account 7") names it in the error."""
        try:
            return self._fernet.decrypt(ciphertext.encode("ascii")).decode()
        except (InvalidToken, UnicodeError, ValueError):
            whose = f" {owner}" if owner else ""
            raise TokenKeyError(
                f"the stored Meta token{whose} cannot be decrypted with any key of "
                f"{KEYS_SETTING} (was the key that encrypted it removed before "
                "`adflywheel accounts rotate-token-key`?)"
            ) from None

    def rotate(self, ciphertext: str, *, owner: str | None = None) -> str:
        """The same token encrypted with the first key (decryptable by any key)."""
        try:
            return self._fernet.rotate(ciphertext.encode("ascii")).decode("ascii")
        except (InvalidToken, UnicodeError, ValueError):
            self.decrypt(ciphertext, owner=owner)  # raises the clear error
            raise


def parse_debug_token(body: Mapping[str, Any]) -> TokenStatus:
    """``{"data": {"is_valid": bool, "expires_at": unix seconds, 0 = never}}`` → status."""
    data = body.get("data")
    if not isinstance(data, Mapping):
        raise MetaDataError("debug_token: no data object in the answer")
    valid, expires = data.get("is_valid"), data.get("expires_at", 0)
    if not isinstance(valid, bool):
        raise MetaDataError("debug_token: is_valid is not a boolean")
    if isinstance(expires, bool) or not isinstance(expires, int) or expires < 0:
        raise MetaDataError("debug_token: expires_at is not a non-negative integer")
    when = dt.datetime.fromtimestamp(expires, dt.UTC) if expires else None
    return TokenStatus(valid=valid, expires_at=when)
