"""The console secret: configured, or made once in the data folder and reused."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from pydantic import SecretStr

from adflywheel.console.security import SECRET_FILE, Signer, console_secret
from adflywheel.core.settings import Settings


def test_without_a_setting_the_secret_is_made_once_private_and_reused(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    first = console_secret(settings)
    path = tmp_path / "data" / SECRET_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) >= 32
    assert console_secret(settings) == first  # a restart keeps sessions valid


def test_a_configured_secret_wins_and_must_be_long(tmp_path: Path) -> None:
    secret = "s" * 40
    settings = Settings(data_dir=tmp_path, console_secret=SecretStr(secret))
    assert console_secret(settings) == secret
    assert not (tmp_path / SECRET_FILE).exists()
    with pytest.raises(ValueError, match="32"):
        console_secret(Settings(data_dir=tmp_path, console_secret=SecretStr("short")))


def test_signatures_depend_on_the_secret_and_the_purpose() -> None:
    signer, other = Signer("a" * 40), Signer("b" * 40)
    signed = signer.sign("session", "token")
    assert signer.unsign_text("session", signed) == "token"
    assert other.unsign_text("session", signed) is None
    assert signer.unsign_text("flash", signed) is None  # a flash cookie is no session
    assert signer.unsign_text("session", signed + "x") is None
    assert signer.unsign_text("session", None) is None
