"""``adflywheel budgets|promotions|alerts|audit`` and the audited ``accounts mode|guardrails|
power`` (issue #18): the same services as the API and the console, a refusal as exit 2 with why
(synthetic data: the simulated market stands in for Meta)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from typer.testing import CliRunner, Result

from adflywheel.cli import budgets, promotions
from adflywheel.cli.app import app
from adflywheel.core.clock import SystemClock, floor_hour
from adflywheel.services.alerts import AlertSink
from adflywheel.services.bandit.budgets import Proposal, apply_budgets
from adflywheel.sim.market import MarketConfig
from adflywheel.store.catalog import sync_catalog
from adflywheel.store.engine import make_session_factory, transaction
from adflywheel.store.models import AdSet, BudgetChange
from tests.factories.market import simulated_account

pytestmark = pytest.mark.db


@pytest.fixture
def cli(engine: Engine, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    # Ten minutes into an hour, whatever the wall clock says: a recommendation is valid during
    # its hour, and a test run across an hour's end must not see it expire.
    pinned = floor_hour(datetime.now(UTC)) + timedelta(minutes=10)
    monkeypatch.setattr(SystemClock, "now", lambda self: pinned)
    monkeypatch.setenv("ADFLYWHEEL_DATABASE_URL", database_url)
    monkeypatch.setenv("ADFLYWHEEL_DATA_DIR", str(tmp_path / "data"))
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(app, list(args))

    return invoke


@pytest.fixture
def market_account(cli: Any, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, int]:
    """Account ``sim`` in recommend mode on a simulated platform, its catalogue synced now, and
    the CLI finding that platform as the account's connected one."""
    config = MarketConfig(seed=5, n_accounts=1, campaigns_per_account=1, variants_per_campaign=3)
    now = SystemClock().now()
    market, account_id = simulated_account(engine, config, now=now - timedelta(days=3),
                                           guardrails=None)  # fmt: skip
    platform = market.platform(market.accounts()[0])
    with transaction(make_session_factory(engine)) as session:
        sync_catalog(
            session,
            account_id,
            platform.list_campaigns(),
            platform.list_ad_sets(),
            platform.list_ads(),
            now - timedelta(days=3),
        )
    for module in (budgets, promotions):
        monkeypatch.setattr(module, "platform_of", lambda ctx, factory, account: platform)
    return platform, account_id


def _recommend(engine: Engine, platform: Any, account_id: int) -> dict[str, int]:
    s0, s1, _ = sorted(a.external_id for a in platform.list_ad_sets())
    live = {a.external_id: a.daily_budget_minor for a in platform.list_ad_sets()}
    now = SystemClock().now()
    factory = make_session_factory(engine)
    apply_budgets(
        factory,
        None,
        account_id,
        Proposal({s0: live[s0] - 300, s1: live[s1] + 300}, "thompson", {}),
        actor="cycle/thompson",
        cycle_hour=floor_hour(now),
        now=now,
        recommend=True,
    )
    with factory() as session:
        rows = session.execute(
            select(AdSet.external_id, BudgetChange.id).join(
                AdSet, AdSet.id == BudgetChange.ad_set_id
            )
        ).all()
    return dict(rows)


def test_budgets_log_approve_dismiss_rollback(
    cli: Any, engine: Engine, market_account: tuple[Any, int]
) -> None:
    platform, account_id = market_account
    ids = _recommend(engine, platform, account_id)
    s0, s1 = sorted(ids)
    listed = cli("budgets", "log", "--account", "sim", "--mode", "recommended", "--json")
    assert listed.exit_code == 0, listed.output
    rows = [json.loads(line) for line in listed.output.splitlines()]
    assert {r["change_id"] for r in rows} == set(ids.values())
    table = cli("budgets", "log", "--account", "sim")
    assert table.exit_code == 0 and "recommended" in table.output

    done = cli("budgets", "approve", "--account", "sim", str(ids[s0]), "--actor", "cli:ana")
    assert done.exit_code == 0, done.output
    answer = json.loads(done.output)
    assert answer["mode"] == "applied" and answer["decided_by"] == "cli:ana"
    assert {a.external_id: a.daily_budget_minor for a in platform.list_ad_sets()}[s0] == (
        answer["new_budget_minor"]
    )
    gone = cli("budgets", "dismiss", "--account", "sim", str(ids[s1]))
    assert gone.exit_code == 0 and json.loads(gone.output)["mode"] == "dismissed"
    assert json.loads(gone.output)["decided_by"].startswith("cli")
    refused = cli("budgets", "approve", "--account", "sim", str(ids[s1]))
    assert refused.exit_code == 2 and "dismissed" in refused.output

    undo = cli("budgets", "rollback", "--account", "sim", str(ids[s0]))
    assert undo.exit_code == 0, undo.output
    assert json.loads(undo.output)["reason"] == "budget:rollback"
    assert cli("budgets", "approve", "--account", "nobody", "1").exit_code == 2
    assert cli("budgets", "log", "--account", "sim", "--since", "yesterday").exit_code == 2


def test_promotions_list_and_dismiss(
    cli: Any, engine: Engine, market_account: tuple[Any, int]
) -> None:
    _, account_id = market_account
    with transaction(make_session_factory(engine)) as session:
        ad_set = session.scalars(select(AdSet).where(AdSet.account_id == account_id)).first()
        assert ad_set is not None
        action = BudgetChange(
            account_id=account_id,
            ad_set_id=ad_set.id,
            old_budget_minor=3_000,
            new_budget_minor=3_600,
            reason="promoter:promote",
            evidence={"variant_id": "ad-1"},
            mode="pending_approval",
            actor="promoter",
            idempotency_key="cli-awaiting",
            created_at=SystemClock().now(),
        )
        session.add(action)
        session.flush()
        action_id = action.id
    pending = cli("promotions", "list", "--account", "sim", "--pending", "--json")
    assert pending.exit_code == 0, pending.output
    assert [json.loads(line)["action_id"] for line in pending.output.splitlines()] == [action_id]
    gone = cli("promotions", "dismiss", "--account", "sim", str(action_id), "--actor", "cli:bo")
    assert gone.exit_code == 0, gone.output
    assert json.loads(gone.output)["evidence"]["dismissed_by"] == "cli:bo"
    assert cli("promotions", "list", "--account", "sim", "--pending", "--json").output == ""
    table = cli("promotions", "list", "--account", "sim")
    assert table.exit_code == 0 and "dismissed" in table.output
    again = cli("promotions", "approve", "--account", "sim", str(action_id))
    assert again.exit_code == 2 and "not awaiting approval" in again.output


def test_alerts_and_the_settings_audit(
    cli: Any, engine: Engine, market_account: tuple[Any, int]
) -> None:
    _, account_id = market_account
    sink = AlertSink(make_session_factory(engine), SystemClock())
    sink.emit("drift", "calibration drifted", account_id=account_id)
    alerts = cli("alerts", "list", "--account", "sim", "--json")
    assert alerts.exit_code == 0, alerts.output
    assert json.loads(alerts.output)["message"] == "calibration drifted"
    assert "calibration drifted" in cli("alerts", "list", "--account", "sim").output

    assert cli("accounts", "mode", "sim", "autopilot").exit_code == 2  # no ceiling yet
    assert cli("accounts", "guardrails", "sim", "--account-ceiling", "90000").exit_code == 0
    assert cli("accounts", "mode", "sim", "autopilot").exit_code == 0
    power = cli("accounts", "power", "sim", "2,7")
    assert power.exit_code == 0, power.output
    assert json.loads(power.output)["power_level"] == 2
    assert cli("accounts", "power", "sim", "2,9").exit_code == 2
    audit = cli("audit", "list", "--account", "sim", "--json")
    assert audit.exit_code == 0, audit.output
    events = [json.loads(line) for line in audit.output.splitlines()]
    assert [e["what"] for e in events] == ["power", "mode", "guardrails"]
    assert all(e["actor"].startswith("cli") for e in events)
    assert events[2]["new"] == {"max_account_budget_minor": 90_000}
    assert "autopilot" in cli("audit", "list", "--account", "sim").output
    assert cli("audit", "list", "--account", "sim", "--what", "nope").exit_code == 2
