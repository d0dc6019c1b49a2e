"""Where each setting comes from, strongest first: the code, the environment, the TOML file,
the defaults (pydantic-settings' order; issue #20 item 3: the environment used to beat the code)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from adflywheel.core.settings import Settings, load_settings


@pytest.fixture(autouse=True)
def _no_outside_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ADFLYWHEEL_PORT", "ADFLYWHEEL_BANDIT_SEED", "ADFLYWHEEL_CONFIG"):
        monkeypatch.delenv(name, raising=False)


def _toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "settings.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_code_beats_the_environment_and_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _toml(tmp_path, "port = 7001\n")
    monkeypatch.setenv("ADFLYWHEEL_PORT", "7002")
    assert load_settings(config, port=7003).port == 7003
    assert Settings(port=7003).port == 7003


def test_the_environment_beats_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = _toml(tmp_path, "port = 7001\nbandit_seed = 11\n")
    monkeypatch.setenv("ADFLYWHEEL_PORT", "7002")
    settings = load_settings(config)
    assert (settings.port, settings.bandit_seed) == (7002, 11)


def test_the_file_beats_the_defaults_in_either_form(tmp_path: Path) -> None:
    flat = _toml(tmp_path, "port = 7001\n")
    assert load_settings(flat).port == 7001
    table = _toml(tmp_path, "[tool]\nx = 1\n\n[adflywheel]\nport = 7004\nloops = [2, 1]\n")
    settings = load_settings(table)
    assert (settings.port, settings.loops) == (7004, (1, 2))
    assert Settings().port == 8000  # no file named: the default


def test_adflywheel_config_names_the_file_for_any_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ADFLYWHEEL_CONFIG", str(_toml(tmp_path, "port = 7005\n")))
    assert Settings().port == 7005
    assert load_settings().port == 7005
    other = tmp_path / "other.toml"
    other.write_text("port = 7006\n", encoding="utf-8")
    assert load_settings(other).port == 7006  # --config beats ADFLYWHEEL_CONFIG


def test_an_unknown_setting_in_the_file_or_the_code_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="prot") as caught:
        load_settings(_toml(tmp_path, "prot = 7001\n"))
    assert "Extra inputs are not permitted" in str(caught.value)
    with pytest.raises(ValidationError, match="prot"):
        Settings(prot=1)  # type: ignore[call-arg]


@pytest.mark.parametrize("where", ["env", "file", "code"])
def test_an_invalid_value_from_any_source_names_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    config = _toml(tmp_path, 'port = "seventy"\n' if where == "file" else "")
    if where == "env":
        monkeypatch.setenv("ADFLYWHEEL_PORT", "70000")
    values = {"port": -1} if where == "code" else {}
    with pytest.raises(ValidationError, match="port"):
        load_settings(config, **values)


def test_a_missing_settings_file_is_an_error_not_silently_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ADFLYWHEEL_CONFIG", str(tmp_path / "absent.toml"))
    with pytest.raises(FileNotFoundError, match=r"absent\.toml.*ADFLYWHEEL_CONFIG"):
        Settings()
