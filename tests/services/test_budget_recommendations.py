"""A person's actions on the reallocation's recommendations (issue #18): approve exactly one
change within its hour, the edit rules and the guardrails; dismiss; roll back an applied change;
idempotence; another account's change is unknown (synthetic data: the simulated market stands
in for Meta)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from adflywheel.core.clock import ManualClock, floor_hour
from adflywheel.core.errors import ConflictError, NotFoundError, UpstreamError
from adflywheel.loops.bandit import Bounds
from adflywheel.loops.bandit.approval import approval_problem
from adflywheel.platforms.base import AdPlatform, PlatformError
from adflywheel.services.bandit.approvals import approve_change, rollback_change
from adflywheel.services.bandit.budgets import Proposal, apply_budgets
from adflywheel.services.bandit.recommendations import (
    RecommendationExpiredError,
    budget_change_log,
    dismiss_change,
    pending_recommendations,
)
from adflywheel.services.promoter.settings import PromoterSettings, load_settings, store_settings
from adflywheel.sim.market import MarketConfig
from adflywheel.store.catalog import sync_catalog
from adflywheel.store.engine import make_session_factory, transaction
from adflywheel.store.models import BudgetChange
from tests.factories.clock import T0
from tests.factories.helpers import new_account
from tests.factories.market import simulated_account

HOUR = timedelta(hours=1)
# Inside the hour that starts at T0 (12:00 UTC): the recommendations are made at 12:05.
MADE = T0 + timedelta(minutes=5)


class Spy:
    """The simulated platform with its budget writes counted; it can refuse them."""

    def __init__(self, inner: AdPlatform) -> None:
        self.inner = inner
        self.writes: list[tuple[str, int]] = []
        self.refuse = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def set_ad_set_budget(self, ad_set_id: str, daily_budget_minor: int) -> None:
        if self.refuse:
            raise PlatformError("rate limited")
        self.inner.set_ad_set_budget(ad_set_id, daily_budget_minor)
        self.writes.append((ad_set_id, daily_budget_minor))


@dataclass
class World:
    factory: sessionmaker[Session]
    clock: ManualClock
    platform: Spy
    account_id: int
    ad_sets: list[str]
    start: dict[str, int]

    def live(self) -> dict[str, int]:
        return {a.external_id: int(a.daily_budget_minor or 0) for a in self.platform.list_ad_sets()}

    def recommend(self) -> dict[str, int]:
        """This hour's split, recorded as recommendations: the first ad set gives 334 to the
        second (both 10%, inside the edit rules); returns the change ids by ad set."""
        s0, s1, _ = self.ad_sets
        proposal = Proposal(
            {s0: self.start[s0] - 334, s1: self.start[s1] + 334},
            "thompson",
            {"variants": {s0: {"p_best": 0.04}, s1: {"p_best": 0.93}}},
        )
        apply_budgets(
            self.factory,
            None,
            self.account_id,
            proposal,
            actor="cycle/thompson",
            cycle_hour=floor_hour(MADE),
            now=MADE,
            recommend=True,
        )
        ids = {change["ad_set_id"]: change["change_id"] for change in self.log()}
        assert len(ids) == 2
        return ids

    def log(self, **kw: Any) -> list[dict[str, Any]]:
        with self.factory() as session:
            return budget_change_log(session, self.account_id, now=self.clock.now(), **kw)

    def approve(self, change_id: int, account_id: int | None = None) -> dict[str, Any]:
        return approve_change(
            self.factory,
            self.platform,  # type: ignore[arg-type]
            account_id or self.account_id,
            change_id,
            now=self.clock.now(),
            actor="user:ana@example.com",
        )

    def rollback(self, change_id: int, account_id: int | None = None) -> dict[str, Any]:
        return rollback_change(
            self.factory,
            self.platform,  # type: ignore[arg-type]
            account_id or self.account_id,
            change_id,
            now=self.clock.now(),
            actor="user:ana@example.com",
        )

    def guardrails(self, **fields: Any) -> None:
        with transaction(self.factory) as session:
            current = load_settings(session, self.account_id)
            g = replace(current.guardrails, **fields)
            store_settings(
                session, self.account_id, PromoterSettings(current.test, g), now=T0, actor="t"
            )

    def mode_of(self, change_id: int) -> str:
        with self.factory() as session:
            record = session.get(BudgetChange, change_id)
            assert record is not None
            return record.mode


@pytest.fixture
def world(engine: Engine) -> World:
    config = MarketConfig(seed=5, n_accounts=1, campaigns_per_account=1, variants_per_campaign=3)
    market, account_id = simulated_account(engine, config, now=T0 - 48 * HOUR, guardrails=None)
    platform = Spy(market.platform(market.accounts()[0]))
    factory = make_session_factory(engine)
    with transaction(factory) as session:
        sync_catalog(
            session,
            account_id,
            platform.list_campaigns(),
            platform.list_ad_sets(),
            platform.list_ads(),
            T0 - 48 * HOUR,
        )
    w = World(factory, ManualClock(MADE + timedelta(minutes=10)), platform, account_id, [], {})
    w.start = w.live()
    w.ad_sets = sorted(w.start)
    return w


def test_recommendations_are_recorded_listed_with_evidence_and_write_nothing(world: World) -> None:
    ids = world.recommend()
    assert world.platform.writes == []
    s1 = world.ad_sets[1]
    with world.factory() as session:
        pending = pending_recommendations(session, world.account_id, now=world.clock.now())
    assert {p["change_id"] for p in pending} == set(ids.values())
    raise_ = next(p for p in pending if p["ad_set_id"] == s1)
    assert raise_["mode"] == "recommended" and raise_["can_approve"]
    assert raise_["delta_minor"] == 334 and raise_["ad_set_evidence"] == {"p_best": 0.93}
    assert raise_["expires_at"] == (floor_hour(MADE) + HOUR).isoformat()
    assert raise_["campaign_id"] and raise_["actor"] == "cycle/thompson"
    assert [c["ad_set_id"] for c in world.log(campaign_external_id="nope")] == []
    assert len(world.log(reason="thompson", mode="recommended")) == 2
    assert world.log(mode="applied") == []


def test_approve_applies_exactly_that_change_once(world: World) -> None:
    ids = world.recommend()
    s0, s1, _ = world.ad_sets
    done = world.approve(ids[s0])
    assert done["mode"] == "applied" and done["already"] is False
    assert world.platform.writes == [(s0, world.start[s0] - 334)]
    assert world.live() == {**world.start, s0: world.start[s0] - 334}
    assert done["actor"] == "user:ana@example.com" and done["decided_by"] == "user:ana@example.com"
    assert done["recommended_by"] == "cycle/thompson" and not done["can_approve"]
    again = world.approve(ids[s0])
    assert again["already"] is True and again["mode"] == "applied"
    assert len(world.platform.writes) == 1  # never twice
    assert world.mode_of(ids[s1]) == "recommended"  # the other change is untouched


def test_a_raise_waits_for_the_decrease_that_funds_it(world: World) -> None:
    ids = world.recommend()
    s0, s1, _ = world.ad_sets
    with pytest.raises(ConflictError, match="approve the decreases"):
        world.approve(ids[s1])
    assert world.platform.writes == []
    world.approve(ids[s0])
    assert world.approve(ids[s1])["mode"] == "applied"
    assert sum(world.live().values()) == sum(world.start.values())  # the campaign's total kept


def test_with_campaign_growth_a_raise_may_go_alone_within_the_ceilings(world: World) -> None:
    ids = world.recommend()
    s1 = world.ad_sets[1]
    world.guardrails(campaign_growth=True, max_variant_budget_minor=world.start[s1] + 100)
    with pytest.raises(ConflictError, match="ceiling"):
        world.approve(ids[s1])
    world.guardrails(campaign_growth=True, max_variant_budget_minor=None)
    assert world.approve(ids[s1])["mode"] == "applied"


def test_after_its_hour_a_recommendation_is_refused_and_marked_expired(world: World) -> None:
    ids = world.recommend()
    s0, s1, _ = world.ad_sets
    world.clock.advance(HOUR)  # 13:15: the 12:00 hour is over
    assert {c["mode"] for c in world.log()} == {"expired"}  # read as expired at once
    with pytest.raises(RecommendationExpiredError, match="expired") as refused:
        world.approve(ids[s0])
    assert isinstance(refused.value, ConflictError)  # a 409
    assert world.mode_of(ids[s0]) == "expired" and world.mode_of(ids[s1]) == "expired"
    assert world.platform.writes == []
    with pytest.raises(RecommendationExpiredError):
        dismiss_change(world.factory, world.account_id, ids[s1], now=world.clock.now(), actor="x")
    with world.factory() as session:
        assert pending_recommendations(session, world.account_id, now=world.clock.now()) == []


def test_another_account_cannot_see_or_act_on_the_change(world: World, engine: Engine) -> None:
    ids = world.recommend()
    rival, _ = new_account(engine, "rival", T0)
    change = ids[world.ad_sets[0]]
    for act in (
        lambda: world.approve(change, rival),
        lambda: world.rollback(change, rival),
        lambda: dismiss_change(world.factory, rival, change, now=world.clock.now(), actor="x"),
    ):
        with pytest.raises(NotFoundError):
            act()
    with world.factory() as session:
        assert budget_change_log(session, rival, now=world.clock.now()) == []
    assert world.mode_of(change) == "recommended" and world.platform.writes == []


def test_the_kill_switch_and_a_freeze_stop_an_approval(world: World) -> None:
    ids = world.recommend()
    s0 = world.ad_sets[0]
    world.guardrails(kill_switch=True)
    with pytest.raises(ConflictError, match="kill switch"):
        world.approve(ids[s0])
    world.guardrails(kill_switch=False, excluded_campaigns=(world.log()[0]["campaign_id"],))
    with pytest.raises(ConflictError, match="excluded"):
        world.approve(ids[s0])
    assert world.platform.writes == [] and world.mode_of(ids[s0]) == "recommended"


def test_a_budget_that_moved_since_is_not_overwritten(world: World) -> None:
    ids = world.recommend()
    s0 = world.ad_sets[0]
    world.platform.inner.set_ad_set_budget(s0, 5_000)  # the advertiser, in Ads Manager
    with transaction(world.factory) as session:
        sync_catalog(session, world.account_id, [], world.platform.list_ad_sets(), [], MADE)
    with pytest.raises(ConflictError, match="moved since"):
        world.approve(ids[s0])
    assert world.live()[s0] == 5_000


def test_a_refused_write_leaves_it_approvable(world: World) -> None:
    ids = world.recommend()
    s0 = world.ad_sets[0]
    world.platform.refuse = True
    with pytest.raises(UpstreamError, match="refused"):
        world.approve(ids[s0])
    assert world.mode_of(ids[s0]) == "recommended"
    world.platform.refuse = False
    assert world.approve(ids[s0])["mode"] == "applied"


def test_dismiss_records_who_and_is_idempotent(world: World) -> None:
    ids = world.recommend()
    s0 = world.ad_sets[0]
    now = world.clock.now()
    first = dismiss_change(world.factory, world.account_id, ids[s0], now=now, actor="user:bo@x.io")
    assert first["mode"] == "dismissed" and first["already"] is False
    assert first["decided_by"] == "user:bo@x.io" and first["actor"] == "user:bo@x.io"
    again = dismiss_change(world.factory, world.account_id, ids[s0], now=now, actor="user:bo@x.io")
    assert again["already"] is True
    with pytest.raises(ConflictError, match="dismissed"):
        world.approve(ids[s0])
    assert world.platform.writes == []
    assert [c["mode"] for c in world.log(mode="dismissed")] == ["dismissed"]


def test_rollback_restores_the_old_budget_as_its_own_change_once(world: World) -> None:
    ids = world.recommend()
    s0 = world.ad_sets[0]
    with pytest.raises(ConflictError, match="nothing was applied"):
        world.rollback(ids[s0])
    world.approve(ids[s0])
    world.clock.advance(3 * HOUR)  # a rollback is not bound to the recommendation's hour
    undo = world.rollback(ids[s0])
    assert undo["reason"] == "budget:rollback" and undo["mode"] == "applied"
    assert undo["evidence"]["rollback_of"] == ids[s0] and undo["already"] is False
    assert undo["old_budget_minor"] == world.start[s0] - 334
    assert undo["new_budget_minor"] == world.start[s0] == world.live()[s0]
    assert world.mode_of(ids[s0]) == "rolled_back"
    again = world.rollback(ids[s0])
    assert again["already"] is True and again["change_id"] == undo["change_id"]
    assert len(world.platform.writes) == 2
    with pytest.raises(ConflictError, match="not the service's reallocation"):
        world.rollback(undo["change_id"])


def test_rollback_respects_the_ceilings_and_the_kill_switch_when_it_raises(world: World) -> None:
    ids = world.recommend()
    s0 = world.ad_sets[0]
    world.approve(ids[s0])  # a decrease: undoing it raises the budget back
    world.guardrails(kill_switch=True)
    with pytest.raises(ConflictError, match="kill switch"):
        world.rollback(ids[s0])
    world.guardrails(kill_switch=False, max_variant_budget_minor=world.start[s0] - 100)
    with pytest.raises(ConflictError, match="variant_ceiling"):
        world.rollback(ids[s0])
    world.guardrails(max_variant_budget_minor=None)
    assert world.rollback(ids[s0])["new_budget_minor"] == world.start[s0]


def test_a_rollback_that_lowers_a_budget_goes_under_the_kill_switch(world: World) -> None:
    ids = world.recommend()
    s0, s1, _ = world.ad_sets
    world.approve(ids[s0])
    world.approve(ids[s1])
    world.guardrails(kill_switch=True)
    assert world.rollback(ids[s1])["new_budget_minor"] == world.start[s1]


def test_without_a_platform_an_approval_is_a_conflict(world: World) -> None:
    ids = world.recommend()
    with pytest.raises(ConflictError, match="no ad platform"):
        approve_change(
            world.factory,
            None,
            world.account_id,
            ids[world.ad_sets[0]],
            now=world.clock.now(),
            actor="x",
        )


def test_the_cycle_expires_last_hours_recommendations(world: World) -> None:
    from adflywheel.services.bandit.recommendations import expire_recommendations

    ids = world.recommend()
    with transaction(world.factory) as session:
        assert expire_recommendations(session, world.account_id, world.clock.now()) == 0
        assert expire_recommendations(session, world.account_id, MADE + HOUR) == 2
    assert {world.mode_of(i) for i in ids.values()} == {"expired"}


@pytest.mark.parametrize(
    ("kw", "why"),
    [
        ({"recorded_old": 100, "current": 120}, "moved since"),
        ({"bounds": None}, "no daily budget"),
        ({"bounds": Bounds(95, 105, "max_step")}, "outside what the edit rules allow"),
        ({"new": 110, "applied_sibling_deltas": [-5]}, "approve the decreases"),
    ],
)
def test_approval_problems_say_why(kw: dict[str, Any], why: str) -> None:
    base: dict[str, Any] = {
        "recorded_old": 100,
        "current": 100,
        "new": 90,
        "bounds": Bounds(80, 120, "free"),
        "applied_sibling_deltas": [],
        "campaign_growth": False,
    }
    problem = approval_problem(**{**base, **kw})
    assert problem is not None and why in problem


def test_approval_problems_none_when_funded_or_growing() -> None:
    common: dict[str, Any] = {"recorded_old": 100, "current": 100, "new": 110}
    bounds = Bounds(80, 120, "free")
    assert (
        approval_problem(
            **common, bounds=bounds, applied_sibling_deltas=[-10], campaign_growth=False
        )
        is None
    )
    assert (
        approval_problem(**common, bounds=bounds, applied_sibling_deltas=[], campaign_growth=True)
        is None
    )
