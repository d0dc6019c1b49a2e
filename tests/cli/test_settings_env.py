"""List settings from the environment: JSON, comma lists and the loop words (issue #16)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from adflywheel.core.settings import Settings


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[2]", (2,)),
        ("[1, 2]", (1, 2)),
        ("2", (2,)),
        ("1,2", (1, 2)),
        (" 3, 1 ,2 ", (1, 2, 3)),
        ("all", (1, 2, 3, 4, 5, 6, 7)),
        ("ALL", (1, 2, 3, 4, 5, 6, 7)),
        ("none", ()),
        ("[]", ()),
    ],
)
def test_loops_accept_json_comma_lists_and_words(
    monkeypatch: pytest.MonkeyPatch, text: str, expected: tuple[int, ...]
) -> None:
    monkeypatch.setenv("ADFLYWHEEL_LOOPS", text)
    assert Settings().loops == expected


@pytest.mark.parametrize(
    ("text", "says"), [("1,x", "numbers like '1,2,3'"), ("9", "unknown loops"), ("[1,", "JSON")]
)
def test_junk_loops_are_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, text: str, says: str
) -> None:
    monkeypatch.setenv("ADFLYWHEEL_LOOPS", text)
    with pytest.raises(ValidationError, match="loops") as caught:
        Settings()
    assert says in str(caught.value)


def test_loops_given_in_code_or_toml_still_work() -> None:
    assert Settings(loops=[3, 1]).loops == (1, 3)
    assert Settings(loops="2,4").loops == (2, 4)


def test_values_the_code_passes_beat_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ADFLYWHEEL_DATA_DIR", str(tmp_path / "real"))
    monkeypatch.setenv("ADFLYWHEEL_REDIS_URL", "redis://elsewhere:6379/0")
    settings = Settings(data_dir=tmp_path / "scratch", redis_url=None)
    assert settings.data_dir == tmp_path / "scratch" and settings.redis_url is None
    assert Settings().data_dir == tmp_path / "real"  # the environment still beats the defaults
