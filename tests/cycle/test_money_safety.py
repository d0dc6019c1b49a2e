"""Money safety by default: recommend first, bounded spend, edits Meta tolerates, hands off what
the advertiser touched (synthetic data: the simulated market stands in for Meta)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import Engine, select

from adflywheel.core.clock import ManualClock
from adflywheel.core.domain import AccountMode
from adflywheel.core.settings import Settings
from adflywheel.cycle.context import CycleDeps, CycleOptions
from adflywheel.cycle.runner import run_cycle
from adflywheel.loops.promoter import FreezeWindow, Guardrails
from adflywheel.services.promoter.settings import PromoterSettings, load_settings, store_settings
from adflywheel.sim.market import MarketConfig, SimulatedMarket
from adflywheel.store.engine import make_session_factory, transaction
from adflywheel.store.models import BudgetChange
from tests.factories.clock import T0
from tests.factories.market import simulated_account

pytestmark = pytest.mark.db
HOUR = timedelta(hours=1)


class Spy:
    """The simulated platform, with every budget write it receives counted."""

    def __init__(self, market: SimulatedMarket) -> None:
        self.inner = market.platform(market.accounts()[0])
        self.writes: list[tuple[str, int]] = []
        self.totals: list[int] = []  # the account's daily total after each write

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def set_ad_set_budget(self, ad_set_id: str, daily_budget_minor: int) -> None:
        self.writes.append((ad_set_id, daily_budget_minor))
        self.inner.set_ad_set_budget(ad_set_id, daily_budget_minor)
        self.totals.append(sum(a.daily_budget_minor or 0 for a in self.inner.list_ad_sets()))


def _world(engine: Engine) -> tuple[SimulatedMarket, ManualClock, int, Spy]:
    config = MarketConfig(seed=5, n_accounts=1, campaigns_per_account=2, variants_per_campaign=4)
    market, account_id = simulated_account(engine, config, guardrails=None)
    return market, ManualClock(market.current_hour), account_id, Spy(market)


def _run(engine: Engine, market: SimulatedMarket, clock: ManualClock, spy: Spy, account_id: int,
         hours: int) -> list[dict]:  # fmt: skip
    factory = make_session_factory(engine)
    reports = []
    for _ in range(hours):
        market.step()
        clock.advance(HOUR)
        deps = CycleDeps(factory, clock, spy, settings=Settings(loops=(2, 7)))  # type: ignore[arg-type]
        reports.append(run_cycle(account_id, deps, CycleOptions(loops=frozenset({2, 7}))).as_dict())
    return reports


def _set(engine: Engine, account_id: int, **fields: object) -> None:
    factory = make_session_factory(engine)
    with transaction(factory) as session:
        current = load_settings(session, account_id)
        g = replace(current.guardrails, **fields)  # type: ignore[arg-type]
        store_settings(session, account_id, PromoterSettings(current.test, g), now=T0, actor="t")


def test_a_new_account_recommends_and_writes_nothing(engine: Engine) -> None:
    market, clock, account_id, spy = _world(engine)
    start = market.budgets().copy()
    reports = _run(engine, market, clock, spy, account_id, 40)
    assert spy.writes == []
    assert (market.budgets() == start).all()
    recommended = sum(r["budget_changes"]["recommended"] for r in reports)
    assert recommended > 0  # decisions were made and recorded, just not written
    assert all(r["budget_changes"]["applied"] == 0 for r in reports)
    assert all(r["promotions"]["applied"] == 0 and r["winners_promoted"] == 0 for r in reports)
    with make_session_factory(engine)() as session:
        modes = set(session.scalars(select(BudgetChange.mode)))
    # the reallocation's recommendations (approvable within their hour), the promoter's dry runs
    assert modes <= {"recommended", "expired", "dry_run"}
    assert "recommended" in modes or "expired" in modes


def test_autopilot_needs_a_ceiling() -> None:
    with pytest.raises(ValueError, match="account-wide daily ceiling"):
        Guardrails(mode=AccountMode.AUTOPILOT)
    assert Guardrails(mode=AccountMode.AUTOPILOT, max_account_budget_minor=1).mode == "autopilot"


def test_on_autopilot_every_edit_obeys_the_rules_and_no_total_grows(engine: Engine) -> None:
    market, clock, account_id, spy = _world(engine)
    start_total = int(market.budgets().sum())
    start_campaigns = market.campaign_budget_totals().copy()
    _set(engine, account_id, mode=AccountMode.AUTOPILOT, max_account_budget_minor=start_total)
    _run(engine, market, clock, spy, account_id, 96)
    assert spy.writes, "autopilot writes"
    assert int(market.budgets().sum()) <= start_total
    assert max(spy.totals) <= start_total  # not even between two writes of one decision
    # Campaign totals are kept (promotions are funded inside their campaign).
    assert (market.campaign_budget_totals() == start_campaigns).all()
    with make_session_factory(engine)() as session:
        edits = session.scalars(
            select(BudgetChange)
            .where(BudgetChange.mode == "applied")
            .order_by(BudgetChange.created_at, BudgetChange.id)
        ).all()
    last: dict[int, object] = {}
    for e in edits:
        assert e.old_budget_minor is not None
        step = abs(e.new_budget_minor - e.old_budget_minor) / e.old_budget_minor
        assert step <= 0.2 + 1e-9, (e.old_budget_minor, e.new_budget_minor)
        if e.reason != "promoter:fund":  # a funding decrease is part of its promotion
            assert step >= 0.05 - 1e-9, "no edit inside the dead band"
        previous = last.get(e.ad_set_id)
        if previous is not None and e.reason != "promoter:fund":
            assert e.created_at - previous >= timedelta(hours=24)  # type: ignore[operator]
        last[e.ad_set_id] = e.created_at


def test_a_change_made_by_hand_becomes_the_baseline_and_is_left_alone(engine: Engine) -> None:
    market, clock, account_id, spy = _world(engine)
    _set(
        engine,
        account_id,
        mode=AccountMode.AUTOPILOT,
        max_account_budget_minor=10**9,
        max_edit_step=None,
        edit_dead_band=0.0,
        min_hours_between_edits=0.0,
        min_hours_between_increases=0.0,
    )
    _run(engine, market, clock, spy, account_id, 30)  # evidence, and a few edits of ours
    touched = market.ad_set_ids[0]
    spy.inner.set_ad_set_budget(touched, 12_345)  # the advertiser, in Ads Manager
    spy.writes.clear()
    reports = _run(engine, market, clock, spy, account_id, 48)
    assert reports[0]["loops"]["sync_catalog"]["budgets_changed_by_hand"] == [
        {"ad_set_id": touched, "old": pytest.approx(reports[0]["loops"]["sync_catalog"][
            "budgets_changed_by_hand"][0]["old"]), "new": 12_345}
    ]  # fmt: skip
    assert all(ad_set != touched for ad_set, _ in spy.writes)
    with make_session_factory(engine)() as session:
        observed = session.scalars(select(BudgetChange).where(BudgetChange.actor == "external"))
        assert [o.new_budget_minor for o in observed] == [12_345]


def test_nothing_is_written_in_a_freeze_window_or_an_excluded_campaign(engine: Engine) -> None:
    market, clock, account_id, spy = _world(engine)
    start = clock.now()
    campaign = market.campaign_ids[0]
    _set(
        engine,
        account_id,
        mode=AccountMode.AUTOPILOT,
        max_account_budget_minor=10**9,
        freeze_windows=(FreezeWindow(start, start + timedelta(hours=30)),),
        excluded_campaigns=(campaign,),
    )
    reports = _run(engine, market, clock, spy, account_id, 29)  # hours 1-29 of the window
    assert spy.writes == []
    assert (
        reports[-1]["loops"]["reallocate_budgets"]["skipped"] == "a freeze window covers this hour"
    )
    more = _run(engine, market, clock, spy, account_id, 30)
    left = more[-1]["loops"]["reallocate_budgets"]["campaigns_left_alone"]
    assert left == [{"external_id": campaign, "why": "excluded by the account"}]
    own = {a for a, _ in spy.writes}
    assert own and not {a for a in own if a.startswith(f"{campaign}_")}
