"""One simulated account (synthetic data) in the store, for the compound learner's tests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from adflywheel.core.settings import Settings
from adflywheel.services.compound.registry import promote
from adflywheel.services.compound.training import TrainOptions, train_challenger_and_gate
from adflywheel.sim.market import MarketConfig, SimulatedMarket
from adflywheel.store.accounts import create_account
from adflywheel.store.actuals import upsert_actuals
from adflywheel.store.catalog import sync_catalog
from adflywheel.store.engine import make_session_factory, transaction
from tests.factories.clock import T0

HOURS = 96


@dataclass
class World:
    factory: sessionmaker[Session]
    account_id: int
    end: datetime
    market: SimulatedMarket
    late_ad: str | None = None


def build_world(
    engine: Engine, *, hours: int = HOURS, seed: int = 3, late_launch: datetime | None = None
) -> World:
    """One simulated account (2 campaigns × 6 ads) that ran ``hours`` hours at uniform budgets,
    ending at the test clock's ``T0``. With ``late_launch``, the last ad has no delivery before
    that hour (it launched then)."""
    market = SimulatedMarket(
        MarketConfig(
            seed=seed, n_accounts=1, campaigns_per_account=2, variants_per_campaign=6,
            campaign_daily_budget_minor=60_000, start=T0 - timedelta(hours=hours),
        )
    )  # fmt: skip
    start = market.current_hour
    market.run(hours)
    platform = market.platform(market.accounts()[0])
    factory = make_session_factory(engine)
    late_ad = platform.list_ads()[-1].external_id if late_launch is not None else None
    insights = [
        r
        for r in platform.fetch_insights(start, market.current_hour)
        if late_launch is None or r.ad_id != late_ad or r.hour_start >= late_launch
    ]
    with transaction(factory) as session:
        account = create_account(session, "sim-compound", start, platform="simulated")
        account.category = platform.account().category
        sync_catalog(
            session, account.id, platform.list_campaigns(), platform.list_ad_sets(),
            platform.list_ads(), start,
        )  # fmt: skip
        upsert_actuals(
            session, account.id, insights, source="simulated", now=market.current_hour,
        )  # fmt: skip
        account_id = account.id
    return World(factory, account_id, market.current_hour, market, late_ad)


def a_champion(world: World, settings: Settings, at: datetime) -> int:
    """Train a model on the data before ``at`` and make it the champion (by hand if the gate
    refused it): a deterministic account with a model."""
    decision = train_challenger_and_gate(
        world.factory, settings, world.account_id, at, "test",
        options=TrainOptions(holdout_hours=24, valid_hours=24),
    )  # fmt: skip
    assert decision.version_id is not None, decision.reason
    if not decision.promoted:
        with transaction(world.factory) as session:
            promote(session, decision.version_id, "test", "a champion for the test", now=at)
    return decision.version_id
