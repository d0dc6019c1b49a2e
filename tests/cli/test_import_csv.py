"""``import-csv``'s account and time zone (issue #16): an unknown account is an error unless
``--create`` (then it gets the new-account guardrails and a key, printed once); a ``--timezone``
disagreeing with the account is an error unless ``--set-timezone``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.factories.cli import cli

pytestmark = [pytest.mark.db, pytest.mark.slow]

HOURLY = str(Path(__file__).parents[1] / "fixtures" / "ads_manager_hourly.csv")


@pytest.fixture
def data_env(tmp_path: Path) -> dict[str, str]:
    env = {"ADFLYWHEEL_DATA_DIR": str(tmp_path / "data"), "ADFLYWHEEL_DATABASE_URL": ""}
    cli("db", "upgrade", env=env)
    return env


def last_json(stdout: str) -> dict[str, object]:
    value = json.loads(stdout.strip().splitlines()[-1])
    assert isinstance(value, dict)
    return value


def test_an_unknown_account_is_an_error_and_nothing_is_written(data_env: dict[str, str]) -> None:
    typo = cli("import-csv", HOURLY, "--account", "shpo", env=data_env, check=False)
    assert typo.returncode == 2
    assert "no account named 'shpo'" in typo.stderr and "--create" in typo.stderr
    assert typo.stdout == ""
    # Nothing was created: the name is still free for `accounts create`.
    assert cli("accounts", "create", "shpo", env=data_env).stdout.strip().startswith("afw_")


def test_create_makes_the_account_with_defaults_and_prints_its_key_once(
    data_env: dict[str, str],
) -> None:
    env = {**data_env, "ADFLYWHEEL_NEW_APPROVAL_OVER_MINOR": "1234"}
    first = cli("import-csv", HOURLY, "--account", "shop", "--create", env=env)
    report = last_json(first.stdout)
    assert report["created"] is True and report["account"] == "shop"
    assert report.keys() >= {"hourly", "daily", "timezone", "api_key"}
    key = report["api_key"]
    assert isinstance(key, str) and key.startswith("afw_")
    assert "created" in first.stderr and "API key" in first.stderr
    # The deployment's new-account guardrails were stored.
    guardrails = last_json(cli("accounts", "guardrails", "shop", env=env).stdout)
    assert guardrails["approval_threshold_minor"] == 1234 and guardrails["mode"] == "recommend"
    # Again: the account exists now, nothing is created and no key is printed.
    again = last_json(cli("import-csv", HOURLY, "--account", "shop", "--create", env=env).stdout)
    assert again["created"] is False and "api_key" not in again
    refused = cli("accounts", "create", "shop", env=env, check=False)
    assert refused.returncode == 2 and "exists already" in refused.stderr


def test_a_timezone_disagreeing_with_the_account_is_an_error_unless_set(
    data_env: dict[str, str],
) -> None:
    cli("import-csv", HOURLY, "--account", "shop", "--create", env=data_env)
    other = ("--timezone", "America/New_York")
    refused = cli("import-csv", HOURLY, "--account", "shop", *other, env=data_env, check=False)
    assert refused.returncode == 2 and refused.stdout == ""
    assert "America/New_York" in refused.stderr and "UTC" in refused.stderr
    assert "--set-timezone" in refused.stderr
    # The account's own zone is the default and agreeing with it is fine.
    same = last_json(cli("import-csv", HOURLY, "--account", "shop", env=data_env).stdout)
    assert same["timezone"] == "UTC"
    assert last_json(
        cli("import-csv", HOURLY, "--account", "shop", "--timezone", "UTC", env=data_env).stdout
    )["hourly"]
    changed = cli("import-csv", HOURLY, "--account", "shop", *other, "--set-timezone", env=data_env)
    assert "time zone changed from UTC to America/New_York" in changed.stderr
    report = last_json(changed.stdout)
    assert report["timezone"] == "America/New_York" and report["timezone_changed_from"] == "UTC"
    # From now on the account's zone is New York.
    after = last_json(cli("import-csv", HOURLY, "--account", "shop", env=data_env).stdout)
    assert after["timezone"] == "America/New_York" and "timezone_changed_from" not in after
