"""The browser tier's world: one simulated account (synthetic data) run hour by hour through the
service's own cycle up to the current hour, so its last hour's recommendations are still valid
when the tests approve one; a second account nobody in the first's grant may see."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from adflywheel.core.clock import ManualClock
from adflywheel.core.loops import Loop
from adflywheel.core.settings import Settings
from adflywheel.cycle.context import CycleDeps, CycleOptions
from adflywheel.cycle.runner import run_cycle
from adflywheel.platforms.base import AdPlatform
from adflywheel.services.promoter.settings import PromoterSettings, load_settings, store_settings
from adflywheel.sim.harness import simulated_guardrails
from adflywheel.sim.market import MarketConfig, SimulatedMarket
from adflywheel.store.accounts import create_account
from adflywheel.store.engine import make_session_factory, transaction

HOUR = timedelta(hours=1)
# Loops the seed runs: the budget bandit, Creative DNA (thumbnails, genes), validation and the
# promoter; memory, cross-learning and the compound prior add minutes and no page needs them.
SEED_LOOPS = frozenset({Loop.BANDIT, Loop.DNA, Loop.MONITOR, Loop.PROMOTER})


@dataclass(frozen=True, slots=True)
class World:
    """What the tests need to know about the seeded database."""

    account_id: int
    account_name: str
    other_account_id: int
    other_account_name: str
    market: SimulatedMarket
    platform: AdPlatform
    # The instant the app's clock stands at: a few minutes into the last cycle's hour.
    now: datetime


def seed_world(
    engine: Engine,
    settings: Settings,
    *,
    hours: int = 36,
    recommend_hours: int = 6,
    seed: int = 5,
    now: datetime | None = None,
) -> World:
    """Run ``hours`` simulated hours ending at the current hour: on autopilot and then, for the
    last ``recommend_hours``, in recommend mode, so the budget-change log holds applied
    changes and pending recommendations of the last hour."""
    wall = (now or datetime.now(UTC)).replace(minute=0, second=0, microsecond=0)
    config = MarketConfig(
        seed=seed,
        n_accounts=1,
        campaigns_per_account=2,
        variants_per_campaign=3,
        start=wall - hours * HOUR,
    )
    market = SimulatedMarket(config)
    external = market.accounts()[0]
    platform = market.platform(external)
    info = platform.account()
    clock = ManualClock(market.current_hour)
    factory = make_session_factory(engine)
    with transaction(factory) as session:
        account = create_account(
            session,
            "Sim Outdoor Co (synthetic)",
            clock.now(),
            platform="simulated",
            platform_account_id=external,
            currency=info.currency,
            timezone=info.timezone,
            category=info.category,
        )
        total = sum(c.daily_budget_minor or 0 for c in platform.list_campaigns())
        # The simulation's legacy rules (no edit rules): the bandit proposes every hour, so the
        # last hour always holds recommendations to approve.
        guardrails = simulated_guardrails("legacy", total)
        store_settings(
            session,
            account.id,
            PromoterSettings(guardrails=guardrails),
            now=clock.now(),
            actor="seed",
        )
        other = create_account(session, "Other Agency Client (synthetic)", clock.now())
        ids = (account.id, account.name, other.id, other.name)
    options = CycleOptions(actuals_lookback_hours=6, loops=SEED_LOOPS)
    for hour in range(hours):
        if hour == hours - recommend_hours:
            _recommend(factory, ids[0], clock.now())
        market.step()
        clock.advance(HOUR)
        deps = CycleDeps(factory, clock, platform, settings=settings)
        run_cycle(ids[0], deps, options)
    return World(*ids, market=market, platform=platform, now=clock.now() + timedelta(minutes=5))


def _recommend(factory: object, account_id: int, now: datetime) -> None:
    from adflywheel.core.domain import AccountMode

    with transaction(factory) as session:  # type: ignore[arg-type]
        current = load_settings(session, account_id)
        g = replace(current.guardrails, mode=AccountMode.RECOMMEND)
        store_settings(
            session, account_id, PromoterSettings(current.test, g), now=now, actor="seed"
        )
