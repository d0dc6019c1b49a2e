"""Per-account Meta tokens at rest (issue #17): Fernet with keys from the environment, rotation,
and what Graph's ``debug_token`` says of a token. Pure: no database, no network."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography.fernet import Fernet

from adflywheel.platforms.base import PlatformError, TokenStatus
from adflywheel.platforms.meta.parse import MetaDataError
from adflywheel.platforms.meta.tokens import (
    TokenCipher,
    TokenKeyError,
    fingerprint,
    parse_debug_token,
)
from adflywheel.services.monitor.token_check import token_warning

TOKEN = "agency-shop-token-Zq81xW"
NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)


def _key() -> str:
    return Fernet.generate_key().decode()


def test_the_ciphertext_holds_no_trace_of_the_token() -> None:
    cipher = TokenCipher(_key())
    first, second = cipher.encrypt(TOKEN), cipher.encrypt(TOKEN)
    assert TOKEN not in first and first != second  # random IV: equal tokens look different
    assert cipher.decrypt(first) == cipher.decrypt(second) == TOKEN
    assert fingerprint(TOKEN) not in first and TOKEN not in fingerprint(TOKEN)
    assert len(fingerprint(TOKEN)) == 12 and fingerprint(TOKEN) != fingerprint(TOKEN + "x")
    assert "key" in repr(cipher) and TOKEN not in repr(cipher)


@pytest.mark.parametrize("keys", [None, "", " , "])
def test_without_a_key_nothing_can_be_stored(keys: str | None) -> None:
    with pytest.raises(TokenKeyError, match="ADFLYWHEEL_TOKEN_ENCRYPTION_KEYS") as caught:
        TokenCipher(keys)
    assert "plain text" in str(caught.value)
    assert isinstance(caught.value, PlatformError)  # the registry and CLI report it, no crash


def test_a_malformed_key_is_named_by_position_not_shown() -> None:
    good, bad = _key(), "not-a-fernet-key-but-secret-ish"
    with pytest.raises(TokenKeyError, match="key 2 of 2 is not a Fernet key") as caught:
        TokenCipher(f"{good},{bad}")
    assert bad not in str(caught.value) and good not in str(caught.value)


def test_the_wrong_key_is_a_clear_error() -> None:
    stored = TokenCipher(_key()).encrypt(TOKEN)
    with pytest.raises(TokenKeyError, match="of account 7 cannot be decrypted") as caught:
        TokenCipher(_key()).decrypt(stored, owner="of account 7")
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    with pytest.raises(TokenKeyError):
        TokenCipher(_key()).decrypt("garbage that is not a fernet token")


def test_rotation_re_encrypts_with_the_first_key_so_the_old_one_can_go() -> None:
    old, new = _key(), _key()
    stored = TokenCipher(old).encrypt(TOKEN)
    both = TokenCipher(f"{new}, {old}")
    assert both.key_count == 2 and both.decrypt(stored) == TOKEN  # any key decrypts
    with pytest.raises(TokenKeyError):
        TokenCipher(new).decrypt(stored)  # not yet rotated: the new key alone cannot
    rotated = both.rotate(stored)
    assert TokenCipher(new).decrypt(rotated) == TOKEN  # the old key may now be removed
    with pytest.raises(TokenKeyError):
        TokenCipher(old).decrypt(rotated)
    with pytest.raises(TokenKeyError):
        TokenCipher(new).rotate(stored, owner="of account 3")


def test_debug_token_answers_are_read_exactly() -> None:
    never = parse_debug_token({"data": {"is_valid": True, "expires_at": 0}})
    assert never == TokenStatus(valid=True, expires_at=None)
    assert parse_debug_token({"data": {"is_valid": True}}).expires_at is None
    soon = parse_debug_token({"data": {"is_valid": False, "expires_at": 1_800_000_000}})
    assert soon.valid is False
    assert soon.expires_at == dt.datetime(2027, 1, 15, 8, 0, tzinfo=dt.UTC)
    for bad in (
        {},
        {"data": []},
        {"data": {"expires_at": 0}},
        {"data": {"is_valid": "true", "expires_at": 0}},
        {"data": {"is_valid": True, "expires_at": "soon"}},
        {"data": {"is_valid": True, "expires_at": -1}},
        {"data": {"is_valid": True, "expires_at": True}},
    ):
        with pytest.raises(MetaDataError):
            parse_debug_token(bad)


@pytest.mark.parametrize(
    ("status", "warned"),
    [
        (TokenStatus(True, NOW + dt.timedelta(days=6)), True),
        (TokenStatus(True, NOW + dt.timedelta(days=7)), True),
        (TokenStatus(True, NOW + dt.timedelta(days=7, seconds=1)), False),
        (TokenStatus(True, NOW + dt.timedelta(days=30)), False),
        (TokenStatus(True, None), False),
        (TokenStatus(True, NOW - dt.timedelta(hours=1)), True),
        (TokenStatus(False, None), True),
    ],
)
def test_a_token_is_warned_about_within_the_warning_days(status: TokenStatus, warned: bool) -> None:
    assert (token_warning(status, NOW, 7) is not None) is warned
