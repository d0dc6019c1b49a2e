"""Issue #16: ``import-csv`` tells each campaign's budget structure from the export's budget
columns (campaign budget columns: CBO; ad set budget columns: ad set budgets; neither: unknown),
and ``accounts list`` shows it per campaign."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.factories.cli import cli

pytestmark = [pytest.mark.db, pytest.mark.slow]

FIXTURES = Path(__file__).parents[1] / "fixtures"


@pytest.fixture
def data_env(tmp_path: Path) -> dict[str, str]:
    env = {"ADFLYWHEEL_DATA_DIR": str(tmp_path / "data"), "ADFLYWHEEL_DATABASE_URL": ""}
    cli("db", "upgrade", env=env)
    return env


def imported(env: dict[str, str], fixture: str, account: str) -> dict[str, object]:
    done = cli("import-csv", str(FIXTURES / fixture), "--account", account, "--create", env=env)
    value = json.loads(done.stdout.strip().splitlines()[-1])
    assert isinstance(value, dict)
    value["stderr"] = done.stderr
    return value


def structures(report: dict[str, object]) -> dict[str, str]:
    campaigns = report["campaigns"]
    assert isinstance(campaigns, list)
    return {c["campaign_id"]: c["structure"] for c in campaigns}


def test_ad_set_budget_columns_give_ad_set_budgets_and_accounts_list_shows_them(
    data_env: dict[str, str],
) -> None:
    abo = imported(data_env, "ads_manager_ad_set_budgets.csv", "abo")
    assert structures(abo) == {
        "120220000000000001": "ad_set_budgets",
        "120220000000000002": "ad_set_budgets_multi_ad",
        "120220000000000003": "ad_set_budgets",  # lifetime ad set budgets are ad set budgets
    }
    assert "structure_note" not in abo
    listed = cli("accounts", "list", env=data_env).stdout.splitlines()
    (account,) = [json.loads(line) for line in listed]
    assert {c["campaign_id"]: c["structure"] for c in account["campaigns"]} == structures(abo)


def test_campaign_budget_columns_give_campaign_budgets(data_env: dict[str, str]) -> None:
    cbo = imported(data_env, "ads_manager_campaign_budgets.csv", "cbo")
    assert structures(cbo) == {
        "120230000000000001": "campaign_budget",  # a daily campaign budget
        "120230000000000002": "campaign_budget",  # a lifetime one
    }
    assert "structure_note" not in cbo


def test_without_budget_columns_the_structure_is_unknown(data_env: dict[str, str]) -> None:
    unknown = imported(data_env, "ads_manager_no_budgets.csv", "bare")
    assert structures(unknown) == {"120240000000000001": "unknown"}
    assert "no budget columns" in str(unknown["structure_note"])
    assert "unknown" in str(unknown["stderr"])
